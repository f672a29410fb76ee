/* bin_reader_main.c: test driver for the C .bin reader (pqlr_binfmt.c) over both flash hooks.
 *
 *   bin_reader FILE...
 * For each file, once through pqlr_flash_file_read and once through pqlr_flash_mmap_read over a
 * heap copy of exactly the file's size (so ASan sees any read past it), prints
 *   <file> <mode> open <status> entries <n>
 *   tile <k> <layer> <tile> <ch_begin> <ch_end> <offset> <size> <status> <crc32 of bytes read>
 */
#include <stdio.h>
#include <stdlib.h>

#include "pqlr_binfmt.h"
#include "pqlr_flash.h"

static void check(const char *name, const char *mode)
{
    static uint8_t work[37];      /* odd size: CRCs are streamed in odd chunks */
    pqlr_bin_info info;
    pqlr_bin_tile e;
    uint32_t k;
    pqlr_status s = pqlr_bin_open(&info, work, sizeof work);
    printf("%s %s open %d entries %u\n", name, mode, (int)s, s == PQLR_OK ? (unsigned)info.index_count : 0u);
    if (s != PQLR_OK)
        return;
    for (k = 0; k < info.index_count; k++) {
        uint8_t *buf;
        pqlr_status se = pqlr_bin_tile_entry(&info, k, &e), sr;
        if (se != PQLR_OK) {
            printf("tile %u entry %d\n", (unsigned)k, (int)se);
            continue;
        }
        buf = (uint8_t *)malloc(e.size ? e.size : 1);
        sr = pqlr_bin_read_tile(&info, k, buf, e.size);
        printf("tile %u %u %u %u %u %u %u %d %u\n", (unsigned)k, (unsigned)e.layer, (unsigned)e.tile,
               (unsigned)e.ch_begin, (unsigned)e.ch_end, (unsigned)e.offset, (unsigned)e.size, (int)sr,
               (unsigned)pqlr_crc32(0, buf, e.size));
        if (e.size > 0 && pqlr_bin_read_tile(&info, k, buf, e.size - 1) != PQLR_ERR_ARG)
            printf("tile %u short buffer accepted\n", (unsigned)k);
        free(buf);
    }
}

int main(int argc, char **argv)
{
    int i;
    for (i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        pqlr_flash_hook hook = {pqlr_flash_file_read, NULL, NULL, NULL};
        pqlr_flash_mmap region;
        uint8_t *copy;
        long n;
        if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
            return 1;
        hook.ctx = f;
        pqlr_flash_set_hook(&hook);
        check(argv[i], "file");
        copy = (uint8_t *)malloc((size_t)(n ? n : 1));
        if (copy == NULL || fseek(f, 0, SEEK_SET) != 0 || (n > 0 && fread(copy, 1, (size_t)n, f) != (size_t)n))
            return 1;
        fclose(f);
        region.base = copy;
        region.size = (uint32_t)n;
        hook.read = pqlr_flash_mmap_read;
        hook.ctx = &region;
        pqlr_flash_set_hook(&hook);
        check(argv[i], "mmap");
        free(copy);
    }
    pqlr_flash_set_hook(NULL);
    return pqlr_flash_read(0, &i, 1) == PQLR_ERR_FLASH ? 0 : 3;
}
