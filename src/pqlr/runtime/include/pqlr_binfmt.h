/* pqlr_binfmt.h: C reader of the PQLR .bin model file (layout in docs/binfmt.md), through the
 * flash hook (pqlr_flash.h). Mirrors src/pqlr/deploy/binfmt.py.
 *
 *   pqlr_bin_open       reads the 64-byte header, checks magic, version, header CRC, that flash
 *                       holds file_size bytes (a read of the last byte), that every section lies
 *                       inside the file and after the header, and the CRC32 of each section
 *                       (streamed through a caller-owned work buffer: no malloc).
 *   pqlr_bin_tile_entry reads and bounds-checks tile index entry k.
 *   pqlr_bin_read_tile  reads the bytes of entry k into dst (dst_len must hold them) and checks
 *                       their CRC32.
 * The schedule section (JSON + parameter blob) is for host tools; generated C has the schedule
 * compiled in and only needs the tiles. Every offset and length is checked before it is used;
 * a bad file gives PQLR_ERR_FORMAT, a failed read PQLR_ERR_FLASH, a NULL pointer PQLR_ERR_ARG.
 * All integers are little-endian on flash; the reader decodes them byte by byte (any host).
 */
#ifndef PQLR_BINFMT_H
#define PQLR_BINFMT_H

#include "pqlr_types.h"

#define PQLR_BIN_VERSION 1
#define PQLR_BIN_HEADER_BYTES 64
#define PQLR_BIN_ENTRY_BYTES 24
#define PQLR_BIN_FLAG_DOUBLE_BUFFER 1u
#define PQLR_BIN_FLAG_STREAMED 2u

typedef struct {
    uint32_t version, flags, file_size;
    uint32_t schedule_offset, schedule_size;
    uint32_t index_offset, index_size, index_count;
    uint32_t tiles_offset, tiles_size;
    uint32_t n_tiles, tile_buffer_bytes;
} pqlr_bin_info;

typedef struct {
    uint32_t layer, tile;           /* node index, tile number */
    uint32_t ch_begin, ch_end;      /* output channels of that layer held by this entry */
    uint32_t offset, size, crc;     /* absolute file offset, bytes, CRC32 of those bytes */
} pqlr_bin_tile;

/* CRC32 (IEEE 802.3, as zlib.crc32): start with crc = 0, feed chunks in order. */
uint32_t pqlr_crc32(uint32_t crc, const uint8_t *data, uint32_t len);

pqlr_status pqlr_bin_open(pqlr_bin_info *info, uint8_t *work, uint32_t work_len);
pqlr_status pqlr_bin_tile_entry(const pqlr_bin_info *info, uint32_t k, pqlr_bin_tile *entry);
pqlr_status pqlr_bin_read_tile(const pqlr_bin_info *info, uint32_t k, void *dst, uint32_t dst_len);

#endif /* PQLR_BINFMT_H */
