/* pqlr_flash_file_read.c: flash read hook over a FILE * (host builds and tests; pqlr_flash.h).
 * Left out with -DPQLR_NO_STDIO on targets without stdio. */
#include "pqlr_flash.h"

#ifndef PQLR_NO_STDIO
#include <stdio.h>

pqlr_status pqlr_flash_file_read(void *ctx, uint32_t offset, void *dst, uint32_t len)
{
    FILE *f = (FILE *)ctx;
    if (f == NULL || (dst == NULL && len > 0))
        return PQLR_ERR_ARG;
    if (fseek(f, (long)offset, SEEK_SET) != 0)
        return PQLR_ERR_FLASH;
    if (len > 0 && fread(dst, 1, len, f) != len)
        return PQLR_ERR_FLASH;
    return PQLR_OK;
}
#endif /* PQLR_NO_STDIO */
