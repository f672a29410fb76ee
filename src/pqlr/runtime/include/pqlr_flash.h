/* pqlr_flash.h: how the runtime reads weight tiles (and the .bin) from flash.
 *
 * Generated code calls pqlr_flash_read(offset, dst, len) for every tile; `offset` is a byte offset
 * into the model file (.bin) as stored in flash. Two ways to provide it:
 *   1. Register a hook once at start-up (no code change in the runtime):
 *        static pqlr_flash_mmap region = { partition_base, partition_size };
 *        pqlr_flash_hook h = { pqlr_flash_mmap_read, NULL, NULL, &region };
 *        pqlr_flash_set_hook(&h);
 *      Defaults shipped: pqlr_flash_mmap_read (memory-mapped flash / a const array, ctx =
 *      pqlr_flash_mmap *) and pqlr_flash_file_read (host tests, ctx = FILE *).
 *      ESP-IDF example: a read hook calling esp_partition_read(part, offset, dst, len).
 *   2. Compile the runtime with -DPQLR_FLASH_USER_READ and define pqlr_flash_read,
 *      pqlr_flash_prefetch and pqlr_flash_wait yourself.
 *
 * Double buffering: generated code calls pqlr_flash_prefetch(next tile -> other buffer) before it
 * computes on the current tile, then pqlr_flash_wait() before it uses the prefetched one. A DMA
 * driver starts the transfer in prefetch and blocks in wait; without a prefetch hook, prefetch is a
 * plain synchronous read and wait returns its status.
 *
 * All functions return PQLR_OK, PQLR_ERR_ARG (NULL pointer) or PQLR_ERR_FLASH (no hook, read out
 * of range, I/O error). No malloc.
 */
#ifndef PQLR_FLASH_H
#define PQLR_FLASH_H

#include "pqlr_types.h"

typedef pqlr_status (*pqlr_flash_read_fn)(void *ctx, uint32_t offset, void *dst, uint32_t len);
typedef pqlr_status (*pqlr_flash_wait_fn)(void *ctx);

typedef struct {
    pqlr_flash_read_fn read;        /* required: synchronous read */
    pqlr_flash_read_fn prefetch;    /* optional: start an asynchronous read (NULL: read at once) */
    pqlr_flash_wait_fn wait;        /* optional: finish the last prefetch */
    void *ctx;                      /* passed to every call */
} pqlr_flash_hook;

/* Install `hook` (copied); NULL removes it (reads then fail with PQLR_ERR_FLASH). */
void pqlr_flash_set_hook(const pqlr_flash_hook *hook);

pqlr_status pqlr_flash_read(uint32_t offset, void *dst, uint32_t len);
pqlr_status pqlr_flash_prefetch(uint32_t offset, void *dst, uint32_t len);
pqlr_status pqlr_flash_wait(void);

/* Memory-mapped flash or a const array: reads [offset, offset + len) of base[0 .. size). */
typedef struct {
    const uint8_t *base;
    uint32_t size;
} pqlr_flash_mmap;

pqlr_status pqlr_flash_mmap_read(void *ctx, uint32_t offset, void *dst, uint32_t len);

/* Host: ctx is a FILE * opened "rb"; offset is from the start of the file. */
pqlr_status pqlr_flash_file_read(void *ctx, uint32_t offset, void *dst, uint32_t len);

#endif /* PQLR_FLASH_H */
