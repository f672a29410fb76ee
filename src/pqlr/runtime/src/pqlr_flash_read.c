/* pqlr_flash_read.c: dispatch of pqlr_flash_read / _prefetch / _wait to the installed hook
 * (pqlr_flash.h). Compiled out with -DPQLR_FLASH_USER_READ, when the application defines them. */
#include "pqlr_flash.h"

#ifndef PQLR_FLASH_USER_READ

static pqlr_flash_hook pqlr_flash_hook_;   /* zero: no hook installed */
static pqlr_status pqlr_flash_pending_ = PQLR_OK;

void pqlr_flash_set_hook(const pqlr_flash_hook *hook)
{
    static const pqlr_flash_hook none = {0, 0, 0, 0};
    pqlr_flash_hook_ = hook ? *hook : none;
    pqlr_flash_pending_ = PQLR_OK;
}

pqlr_status pqlr_flash_read(uint32_t offset, void *dst, uint32_t len)
{
    if (dst == NULL && len > 0)
        return PQLR_ERR_ARG;
    if (pqlr_flash_hook_.read == NULL)
        return PQLR_ERR_FLASH;
    return pqlr_flash_hook_.read(pqlr_flash_hook_.ctx, offset, dst, len);
}

pqlr_status pqlr_flash_prefetch(uint32_t offset, void *dst, uint32_t len)
{
    if (pqlr_flash_hook_.prefetch != NULL)
        return pqlr_flash_hook_.prefetch(pqlr_flash_hook_.ctx, offset, dst, len);
    pqlr_flash_pending_ = pqlr_flash_read(offset, dst, len);
    return PQLR_OK;
}

pqlr_status pqlr_flash_wait(void)
{
    pqlr_status s;
    if (pqlr_flash_hook_.prefetch != NULL)
        return pqlr_flash_hook_.wait ? pqlr_flash_hook_.wait(pqlr_flash_hook_.ctx) : PQLR_OK;
    s = pqlr_flash_pending_;
    pqlr_flash_pending_ = PQLR_OK;
    return s;
}

#endif /* PQLR_FLASH_USER_READ */
