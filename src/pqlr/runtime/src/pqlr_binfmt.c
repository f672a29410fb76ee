/* pqlr_binfmt.c: the .bin reader (pqlr_binfmt.h): header and section checks, tile index, tiles. */
#include "pqlr_binfmt.h"
#include "pqlr_flash.h"

uint32_t pqlr_crc32(uint32_t crc, const uint8_t *data, uint32_t len)
{
    uint32_t i;
    int b;
    crc = ~crc;
    for (i = 0; i < len; i++) {
        crc ^= data[i];
        for (b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint32_t get_u16(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8);
}

/* [off, off + size) inside [lo, file_size), 4-aligned start; no overflow (all uint32). */
static int section_ok(uint32_t off, uint32_t size, uint32_t lo, uint32_t file_size)
{
    return (off % 4u) == 0 && off >= lo && off <= file_size && size <= file_size - off;
}

/* CRC32 of [off, off + size) read through the flash hook in work_len chunks. */
static pqlr_status section_crc(uint32_t off, uint32_t size, uint8_t *work, uint32_t work_len,
                               uint32_t *crc)
{
    uint32_t c = 0;
    while (size > 0) {
        uint32_t n = size < work_len ? size : work_len;
        pqlr_status s = pqlr_flash_read(off, work, n);
        if (s != PQLR_OK)
            return s;
        c = pqlr_crc32(c, work, n);
        off += n;
        size -= n;
    }
    *crc = c;
    return PQLR_OK;
}

pqlr_status pqlr_bin_open(pqlr_bin_info *info, uint8_t *work, uint32_t work_len)
{
    uint8_t h[PQLR_BIN_HEADER_BYTES];
    uint32_t crc, want[3], offs[3], sizes[3];
    pqlr_status s;
    int k;
    if (info == NULL || work == NULL || work_len == 0)
        return PQLR_ERR_ARG;
    s = pqlr_flash_read(0, h, sizeof h);
    if (s != PQLR_OK)
        return s;
    if (h[0] != 'P' || h[1] != 'Q' || h[2] != 'L' || h[3] != 'R')
        return PQLR_ERR_FORMAT;
    if (pqlr_crc32(0, h, 60) != get_u32(h + 60))
        return PQLR_ERR_FORMAT;
    info->version = get_u16(h + 4);
    info->flags = get_u16(h + 6);
    info->file_size = get_u32(h + 8);
    info->schedule_offset = get_u32(h + 12);
    info->schedule_size = get_u32(h + 16);
    info->index_offset = get_u32(h + 24);
    info->index_size = get_u32(h + 28);
    info->index_count = get_u32(h + 32);
    info->tiles_offset = get_u32(h + 40);
    info->tiles_size = get_u32(h + 44);
    info->n_tiles = get_u32(h + 52);
    info->tile_buffer_bytes = get_u32(h + 56);
    if (info->version != PQLR_BIN_VERSION || info->file_size < PQLR_BIN_HEADER_BYTES)
        return PQLR_ERR_FORMAT;
    if (info->index_count > info->index_size / PQLR_BIN_ENTRY_BYTES ||
        info->index_size != info->index_count * PQLR_BIN_ENTRY_BYTES)
        return PQLR_ERR_FORMAT;
    s = pqlr_flash_read(info->file_size - 1u, work, 1);   /* probe: flash holds the whole file */
    if (s != PQLR_OK)
        return s;
    offs[0] = info->schedule_offset; sizes[0] = info->schedule_size; want[0] = get_u32(h + 20);
    offs[1] = info->index_offset;    sizes[1] = info->index_size;    want[1] = get_u32(h + 36);
    offs[2] = info->tiles_offset;    sizes[2] = info->tiles_size;    want[2] = get_u32(h + 48);
    for (k = 0; k < 3; k++) {
        if (!section_ok(offs[k], sizes[k], PQLR_BIN_HEADER_BYTES, info->file_size))
            return PQLR_ERR_FORMAT;
        s = section_crc(offs[k], sizes[k], work, work_len, &crc);
        if (s != PQLR_OK)
            return s;
        if (crc != want[k])
            return PQLR_ERR_FORMAT;
    }
    return PQLR_OK;
}

pqlr_status pqlr_bin_tile_entry(const pqlr_bin_info *info, uint32_t k, pqlr_bin_tile *entry)
{
    uint8_t e[PQLR_BIN_ENTRY_BYTES];
    pqlr_status s;
    if (info == NULL || entry == NULL)
        return PQLR_ERR_ARG;
    if (k >= info->index_count)
        return PQLR_ERR_ARG;
    s = pqlr_flash_read(info->index_offset + k * PQLR_BIN_ENTRY_BYTES, e, sizeof e);
    if (s != PQLR_OK)
        return s;
    entry->layer = get_u16(e);
    entry->tile = get_u16(e + 2);
    entry->ch_begin = get_u32(e + 4);
    entry->ch_end = get_u32(e + 8);
    entry->offset = get_u32(e + 12);
    entry->size = get_u32(e + 16);
    entry->crc = get_u32(e + 20);
    if (entry->ch_begin >= entry->ch_end || entry->tile >= info->n_tiles ||
        entry->offset < info->tiles_offset ||
        entry->offset - info->tiles_offset > info->tiles_size ||
        entry->size > info->tiles_size - (entry->offset - info->tiles_offset))
        return PQLR_ERR_FORMAT;
    return PQLR_OK;
}

pqlr_status pqlr_bin_read_tile(const pqlr_bin_info *info, uint32_t k, void *dst, uint32_t dst_len)
{
    pqlr_bin_tile t;
    pqlr_status s;
    if (dst == NULL)
        return PQLR_ERR_ARG;
    s = pqlr_bin_tile_entry(info, k, &t);
    if (s != PQLR_OK)
        return s;
    if (t.size > dst_len)
        return PQLR_ERR_ARG;
    s = pqlr_flash_read(t.offset, dst, t.size);
    if (s != PQLR_OK)
        return s;
    return pqlr_crc32(0, (const uint8_t *)dst, t.size) == t.crc ? PQLR_OK : PQLR_ERR_FORMAT;
}
