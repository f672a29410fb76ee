/* verify_main.c: the verify harness. Runs a model (model.h + its sources) on many inputs in one
 * emulator start and reports outputs, instruction-count events and stack/arena high-water marks.
 *
 * Input file  "pqlr_in.bin":  u32 n, then n samples of PQLR_INPUT_BYTES bytes.
 * Output file "pqlr_out.bin": header u32[8] = {magic "PQLR", version, in_bytes, out_bytes,
 *   arena_bytes, num_layers, n, max_events}, then n + 1 records (record 0 is the calibration run:
 *   two marks with nothing between, measuring the marks' own cost):
 *     u32[5] {status, n_events, stack_peak_bytes, arena_peak_bytes, flags}
 *     u32[n_events] event codes (0 begin, 1 end, 2 + 2i / 3 + 2i layer i begin / end)
 *     u64[n_events] counter values at each event (0 where the emulator counts from outside)
 *     PQLR_OUTPUT_BYTES output bytes, zero-padded to a multiple of 4.
 * All little-endian. Before each run the stack (below the caller's sp) and the arena are painted
 * with a pattern (0xA5 / 0x5A alternating by sample); the peaks are the extent of changed bytes.
 * A byte the model happens to write with the pattern value is invisible for that sample only.
 */
#include "model.h"
#include "pqlr_platform.h"
#include "pqlr_profile.h"

#define HARNESS_MAGIC 0x524C5150u /* "PQLR" */
#define HARNESS_VERSION 1u
#define GUARD_BYTES 16u
#ifndef PQLR_MAX_EVENTS
#define PQLR_MAX_EVENTS (8u + 8u * (uint32_t)(PQLR_NUM_LAYERS))
#endif
#define FLAG_EVENTS_OVERFLOW 1u
#define FLAG_ARENA_GUARD 2u
#define FLAG_OUTPUT_GUARD 4u
#define FLAG_STACK_FULL 8u
#define FLAG_SHORT_INPUT 16u

#define ROUND4(n) (((n) + 3u) & ~3u)

static int8_t g_input[ROUND4(PQLR_INPUT_BYTES)] __attribute__((aligned(8)));
static int8_t g_output[ROUND4(PQLR_OUTPUT_BYTES) + GUARD_BYTES] __attribute__((aligned(8)));
static uint8_t g_arena[ROUND4(PQLR_ARENA_BYTES) + GUARD_BYTES] __attribute__((aligned(8)));
static uint32_t g_codes[PQLR_MAX_EVENTS];
static uint64_t g_counts[PQLR_MAX_EVENTS];
static uint32_t g_n_events;

void pqlr_profile_mark(uint32_t code)
{
    uint64_t c = pqlr_counter_read();
    if (g_n_events < PQLR_MAX_EVENTS) {
        g_codes[g_n_events] = code;
        g_counts[g_n_events] = c;
    }
    g_n_events++;
}

/* Fill [lo, hi) with pat; both ends 4-byte aligned (the regions painted all are). */
static void paint(uint8_t *lo, uint8_t *hi, uint8_t pat)
{
    uint32_t word = 0x01010101u * pat;
    for (uint32_t *p = (uint32_t *)(void *)lo; p < (uint32_t *)(void *)hi; p++)
        *p = word;
}

/* First changed byte in [lo, hi) scanning upwards (hi if none). */
static uint8_t *first_touched(uint8_t *lo, uint8_t *hi, uint8_t pat)
{
    uint32_t word = 0x01010101u * pat;
    uint32_t *w = (uint32_t *)(void *)lo;
    while ((uint8_t *)w < hi && *w == word)
        w++;
    uint8_t *p = (uint8_t *)w;
    while (p < hi && *p == pat)
        p++;
    return p;
}

/* Highest changed index + 1 in buf[0:n] (0 if untouched). */
static uint32_t touched_extent(const uint8_t *buf, uint32_t n, uint8_t pat)
{
    while (n > 0 && buf[n - 1] == pat)
        n--;
    return n;
}

static int guard_intact(const uint8_t *guard, uint8_t pat)
{
    for (uint32_t i = 0; i < GUARD_BYTES; i++)
        if (guard[i] != pat)
            return 0;
    return 1;
}

static uint8_t *stack_pointer(void)
{
    uint8_t *sp = 0;
#if defined(__riscv)
    __asm__ volatile("mv %0, sp" : "=r"(sp));
#elif defined(__arm__)
    __asm__ volatile("mov %0, sp" : "=r"(sp));
#endif
    return sp;
}

/* One run: paint, invoke (or nothing for calibration), measure. rec = u32[5] as in the header. */
static __attribute__((noinline)) void run_one(uint8_t pat, int calibrate, uint32_t rec[5])
{
    uint8_t *bottom = pqlr_stack_bottom();
    uint8_t *sp0 = (uint8_t *)((uintptr_t)stack_pointer() & ~(uintptr_t)3);
    uint32_t flags = 0;
    int32_t status = 0;

    paint(g_arena, g_arena + sizeof g_arena, pat);
    paint((uint8_t *)g_output, (uint8_t *)g_output + sizeof g_output, pat);
    if (bottom)
        paint(bottom, sp0, pat); /* no stack below sp is in use: no red zone on rv32 / Thumb */

    g_n_events = 0;
    pqlr_profile_mark(0);
    if (!calibrate)
        status = (int32_t)pqlr_invoke(g_input, g_output, g_arena);
    pqlr_profile_mark(1);

    uint32_t stack_peak = 0;
    if (bottom) {
        uint8_t *p = first_touched(bottom, sp0, pat);
        stack_peak = (uint32_t)(sp0 - p);
        if (p == bottom)
            flags |= FLAG_STACK_FULL;
    }
    if (g_n_events > PQLR_MAX_EVENTS)
        flags |= FLAG_EVENTS_OVERFLOW;
    if (!guard_intact(g_arena + ROUND4(PQLR_ARENA_BYTES), pat))
        flags |= FLAG_ARENA_GUARD;
    if (!guard_intact((uint8_t *)g_output + ROUND4(PQLR_OUTPUT_BYTES), pat))
        flags |= FLAG_OUTPUT_GUARD;
    rec[0] = (uint32_t)status;
    rec[1] = g_n_events;
    rec[2] = stack_peak;
    rec[3] = touched_extent(g_arena, ROUND4(PQLR_ARENA_BYTES), pat);
    rec[4] = flags;
}

static void write_record(int out, uint32_t rec[5])
{
    uint32_t n = rec[1] < PQLR_MAX_EVENTS ? rec[1] : PQLR_MAX_EVENTS;
    rec[1] = n;
    pqlr_file_write(out, rec, 5 * sizeof(uint32_t));
    pqlr_file_write(out, g_codes, n * sizeof(uint32_t));
    pqlr_file_write(out, g_counts, n * sizeof(uint64_t));
    for (uint32_t i = PQLR_OUTPUT_BYTES; i < ROUND4(PQLR_OUTPUT_BYTES); i++)
        g_output[i] = 0;
    pqlr_file_write(out, g_output, ROUND4(PQLR_OUTPUT_BYTES));
}

static void put_hex(char *dst, uint32_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 4)
        dst[i] = "0123456789abcdef"[v & 15u];
}

/* Called from the startup code on a CPU trap / fault (cause = mcause or IPSR, pc = faulting pc). */
void pqlr_trap(uint32_t cause, uint32_t pc)
{
    char msg[] = "pqlr: trap cause=0x........ pc=0x........\n";
    put_hex(msg + 19, cause);
    put_hex(msg + 33, pc);
    pqlr_console(msg);
    pqlr_exit(3);
}

int main(void)
{
    uint32_t n = 0, rec[5];
    int in = pqlr_file_open("pqlr_in.bin", 0);
    int out = pqlr_file_open("pqlr_out.bin", 1);
    if (in < 0 || out < 0) {
        pqlr_console("pqlr: cannot open pqlr_in.bin / pqlr_out.bin\n");
        pqlr_exit(1);
    }
    if (pqlr_file_read(in, &n, sizeof n) != sizeof n)
        pqlr_exit(1);
    uint32_t header[8] = {HARNESS_MAGIC, HARNESS_VERSION, PQLR_INPUT_BYTES, PQLR_OUTPUT_BYTES,
                          PQLR_ARENA_BYTES, PQLR_NUM_LAYERS, n, PQLR_MAX_EVENTS};
    pqlr_file_write(out, header, sizeof header);

    run_one(0xA5, 1, rec);
    write_record(out, rec);
    for (uint32_t s = 0; s < n; s++) {
        uint32_t got = (uint32_t)pqlr_file_read(in, g_input, PQLR_INPUT_BYTES);
        run_one((s & 1u) ? 0x5A : 0xA5, 0, rec);
        if (got != PQLR_INPUT_BYTES)
            rec[4] |= FLAG_SHORT_INPUT;
        write_record(out, rec);
    }
    pqlr_file_close(out);
    pqlr_file_close(in);
    pqlr_exit(0);
}
