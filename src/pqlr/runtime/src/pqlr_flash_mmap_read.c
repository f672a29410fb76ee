/* pqlr_flash_mmap_read.c: flash read hook for memory-mapped flash or a const array (pqlr_flash.h). */
#include <string.h>

#include "pqlr_flash.h"

pqlr_status pqlr_flash_mmap_read(void *ctx, uint32_t offset, void *dst, uint32_t len)
{
    const pqlr_flash_mmap *m = (const pqlr_flash_mmap *)ctx;
    if (m == NULL || (dst == NULL && len > 0))
        return PQLR_ERR_ARG;
    if (m->base == NULL || offset > m->size || len > m->size - offset)
        return PQLR_ERR_FLASH;
    if (len > 0)
        memcpy(dst, m->base + offset, len);
    return PQLR_OK;
}
