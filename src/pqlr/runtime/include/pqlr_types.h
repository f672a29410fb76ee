/* pqlr_types.h: types, status codes and the requantization rule shared by every PQLR kernel.
 *
 * Mirrors src/pqlr/primitives.py (the numeric oracle). Rounding is round-half-up:
 *     pqlr_requantize(acc, m, n) = (acc * m + 2^(n-1)) >> n     (64-bit product, arithmetic shift)
 * with m in [2^30, 2^31) (or 0) and n in [1, 62].
 *
 * Sub-byte weights are packed per output-channel row, each row padded to whole bytes,
 * least significant bits first:
 *     int4: element 2i in bits 0-3, 2i+1 in bits 4-7   e.g. row {1, -2, 7} -> {0xE1, 0x07}
 *     int2: element 4i+j in bits 2j..2j+1             e.g. row {1, -2, 0, -1} -> {0xC9}
 *     1 bit: element 8i+j in bit j, 1 = +1, 0 = -1    e.g. row {+1, -1, -1, +1} -> {0x09}
 * No malloc, no floating point.
 */
#ifndef PQLR_TYPES_H
#define PQLR_TYPES_H

#include <stdint.h>
#include <stddef.h>

#ifndef PROGMEM
#define PROGMEM
#endif

typedef enum {
    PQLR_OK = 0,
    PQLR_ERR_ARG = -1,      /* a NULL pointer or an impossible shape/parameter */
    PQLR_ERR_FLASH = -2,    /* the flash read hook failed */
    PQLR_ERR_FORMAT = -3,   /* a model file or tile failed its checks (magic, bounds, CRC) */
} pqlr_status;

static inline int32_t pqlr_requantize(int32_t acc, int32_t m, int32_t n)
{
    int64_t p = (int64_t)acc * (int64_t)m;
    return (int32_t)((p + ((int64_t)1 << (n - 1))) >> n);
}

static inline int32_t pqlr_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

#endif /* PQLR_TYPES_H */
