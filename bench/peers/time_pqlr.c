/* time_pqlr.c: host wall time (and batch outputs) of one model behind PQLR's model interface
 * (bench/peers: PQLR's generated C, or bakenn's through its shim).
 *
 *   time_pqlr INPUTS.raw REPEATS [OUTPUTS.raw]
 * INPUTS.raw holds N >= 1 inputs of PQLR_INPUT_BYTES. With OUTPUTS.raw, every input is run once
 * and the N outputs are written there. Then input 0 is run 20 times to warm caches and REPEATS
 * times, each call timed alone with CLOCK_MONOTONIC; prints "median_ns N", "min_ns N", "repeats N".
 * Only the model call is inside the timed window (no I/O, no allocation). */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model.h"

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

static uint32_t arena_words[(PQLR_ARENA_BYTES + 15) / 4 + 4];

int main(int argc, char **argv)
{
    static int8_t out[PQLR_OUTPUT_BYTES];
    int8_t *in;
    uint8_t *arena = (uint8_t *)arena_words + ((16u - ((uintptr_t)arena_words & 15u)) & 15u);  /* 16-byte aligned */
    long *ns, k, n, size, count;
    FILE *f;
    if (argc < 3 || (n = atol(argv[2])) < 1)
        return 1;
    f = fopen(argv[1], "rb");
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < PQLR_INPUT_BYTES || fseek(f, 0, SEEK_SET) != 0)
        return 1;
    count = size / PQLR_INPUT_BYTES;
    in = (int8_t *)malloc((size_t)size);
    ns = (long *)malloc((size_t)n * sizeof *ns);
    if (in == NULL || ns == NULL || fread(in, 1, (size_t)size, f) != (size_t)size)
        return 1;
    fclose(f);
    if (argc > 3) {
        FILE *fo = fopen(argv[3], "wb");
        if (fo == NULL)
            return 1;
        for (k = 0; k < count; k++) {
            if (pqlr_invoke(in + k * PQLR_INPUT_BYTES, out, arena) != PQLR_OK)
                return 2;
            if (fwrite(out, 1, sizeof out, fo) != sizeof out)
                return 1;
        }
        fclose(fo);
    }
    for (k = 0; k < 20; k++)
        if (pqlr_invoke(in, out, arena) != PQLR_OK)
            return 2;
    for (k = 0; k < n; k++) {
        long t0 = now_ns();
        pqlr_invoke(in, out, arena);
        ns[k] = now_ns() - t0;
    }
    qsort(ns, (size_t)n, sizeof *ns, cmp_long);
    printf("median_ns %ld\nmin_ns %ld\nrepeats %ld\n", ns[(n - 1) / 2], ns[0], n);
    free(ns);
    free(in);
    return 0;
}
