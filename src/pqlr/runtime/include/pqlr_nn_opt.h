/* pqlr_nn_opt.h: optimized int8 CNN kernels for cores without SIMD (RV32IMAC, Cortex-M0/M3) and the
 * inner loops they share. Same parameter structs, signatures and results (bit for bit) as the
 * reference kernels of pqlr_nn.h; the name carries the suffix _opt. Chosen at build time
 * (pqlr.ir.ops_select); tests/ir/test_ops_opt.py checks them against the reference, and
 * bench/kernels_rv32.py measures their retired instructions per MAC.
 *
 * What makes them faster (a naive int8 MAC costs 7 instructions: lb, lb, sub, mul, add, add, bne):
 *   - register blocking: 4 output channels x 3 output pixels per inner loop (pqlr_dot4x3_w8), so one
 *     input byte feeds 4 MACs and one weight byte feeds 3; unrolled 4x, walking pointers (lb with
 *     immediate offsets). 2.8 instructions per MAC in the loop. A 1x1 convolution is a GEMM over
 *     (H*W) x C_in; kernels with short rows (the 10x4 first conv on one channel) first gather the
 *     windows of three pixels into a stack buffer (pqlr_conv2d_s8_opt.c).
 *   - int4 weights: two int8 products per 32-bit multiply (pqlr_dot4x4_w4, exactness argued there):
 *     two pixels share a register, one byte load + 3 shifts give two weights.
 *   - the input zero point leaves the inner loop (interior pixels, where no tap reads padding):
 *         sum (x - zp) * w = sum x * w - zp * sum w
 *     with sum w computed once per channel per call. Exact in int32: the accumulator starts at
 *     bias - zp * sum w and after j products holds bias + sum_{t<j} (x_t - zp) w_t - zp sum_{t>=j} w_t,
 *     bounded by |bias| + j * 255 * 128 + (K - j) * 128 * 128 <= |bias| + K * 255 * 128, which is
 *     the reference's own no-overflow precondition (pqlr_nn.h): no step wraps, the result is equal.
 *   - requantization without the 64-bit multiply-and-shift when shift n >= 33 (every real
 *     multiplier < 2^-2, the usual case for conv / fc layers): with hi = (acc * m) >> 32 (mulh),
 *         (acc * m + 2^(n-1)) >> n  ==  (hi + 2^(n-33)) >> (n - 32)
 *     because floor((hi * 2^32 + lo + 2^(n-1)) / 2^n) = floor((hi + 2^(n-33) + lo / 2^32) / 2^(n-32))
 *     and 0 <= lo / 2^32 < 1 never carries past an integer; |hi| <= 2^30, 2^(n-33) <= 2^29: no wrap.
 *     Smaller n take the reference's 64-bit path.
 * Other weight widths (2, 1 bit), channel remainders and edge pixels take plainer loops, still exact.
 * Convolutions: plain layers only (dilation 1; conv2d groups 1: pqlr_conv2d_plain in pqlr_nn.h);
 * a dilated or grouped layer returns PQLR_ERR_ARG, and pqlr.ir.ops_select keeps the reference
 * kernel for it. fully_connected takes any number of rows (an input of any rank).
 * No malloc, no floating point, no caller scratch (stack: up to ~2 KB, the conv gather buffers).
 * The in-place kernels (pqlr_conv2d_1x1_inplace_s8, pqlr_depthwise_conv2d_inplace_s8) have no
 * optimized variant yet. Measured figures: bench/kernels_rv32.py.
 */
#ifndef PQLR_NN_OPT_H
#define PQLR_NN_OPT_H

#include "pqlr_nn.h"
#include "pqlr_pool.h"

pqlr_status pqlr_conv2d_s8_opt(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *weights,
                               const int32_t *bias, const int32_t *multiplier, const int8_t *shift,
                               int8_t *output);
pqlr_status pqlr_depthwise_conv2d_s8_opt(const pqlr_conv2d_params *p, const int8_t *input,
                                         const int8_t *weights, const int32_t *bias,
                                         const int32_t *multiplier, const int8_t *shift,
                                         int8_t *output);
pqlr_status pqlr_fully_connected_s8_opt(const pqlr_fully_connected_params *p, const int8_t *input,
                                        const int8_t *weights, const int32_t *bias,
                                        const int32_t *multiplier, const int8_t *shift,
                                        int8_t *output);

/* The blocked inner loops are kept out of line (PQLR_NOINLINE, pqlr_nn.h): in their own function
 * the 12 accumulators and 7 pointers get registers of their own instead of competing with the
 * caller's state. */
pqlr_status pqlr_avg_pool2d_s8_opt(const pqlr_avg_pool2d_params *p, const int8_t *input, int8_t *output);

/* ------------------------------------------------------------------ requantization */

/* One channel's requantization, prepared once: y = clamp(rq(acc) + zp, lo, hi). */
typedef struct {
    int32_t m, n;           /* multiplier, shift (reference semantics) */
    int32_t round, sh;      /* n >= 33: 2^(n-33) and n - 32; sh = 0 marks the 64-bit path */
} pqlr_rq;

static inline pqlr_rq pqlr_rq_make(int32_t m, int32_t n)
{
    pqlr_rq q;
    q.m = m;
    q.n = n;
    q.round = n >= 33 ? (int32_t)1 << (n - 33) : 0;
    q.sh = n >= 33 ? n - 32 : 0;
    return q;
}

static inline int32_t pqlr_rq_apply(const pqlr_rq *q, int32_t acc, int32_t zp, int32_t lo, int32_t hi)
{
    if (q->sh) {
        const int32_t h = (int32_t)(((int64_t)acc * (int64_t)q->m) >> 32);   /* mulh */
        const int32_t v = ((h + q->round) >> q->sh) + zp;                   /* |v| < 2^30 */
        return v < lo ? lo : (v > hi ? hi : v);
    }
    return pqlr_requantize_out(acc, q->m, q->n, zp, lo, hi);
}

/* Requantize n accumulators a[0], a[step], ... of one channel into y[0], y[y_step], ... */
static inline void pqlr_rq_store(const pqlr_rq *q, const int32_t *a, int32_t step, int32_t n, int32_t zp,
                                 int32_t lo, int32_t hi, int8_t *y, int32_t y_step)
{
    if (q->sh) {                          /* the mulh path, parameters in registers */
        const int32_t m = q->m, r = q->round, sh = q->sh;
        for (; n > 0; n--, a += step, y += y_step) {
            int32_t v = ((int32_t)(((int64_t)*a * (int64_t)m) >> 32) + r) >> sh;
            v += zp;
            *y = (int8_t)(v < lo ? lo : (v > hi ? hi : v));
        }
    } else {
        for (; n > 0; n--, a += step, y += y_step)
            *y = (int8_t)pqlr_requantize_out(*a, q->m, q->n, zp, lo, hi);
    }
}

/* ------------------------------------------------------------------ weight helpers */

/* sum of weights [w0, w0 + n) of a packed row (any width). */
static inline int32_t pqlr_row_sum(const int8_t *row, int32_t w0, int32_t n, int32_t wbits)
{
    int32_t s = 0;
    if (wbits == 8) {
        for (int32_t i = 0; i < n; i++)
            s += row[w0 + i];
    } else {
        for (int32_t i = 0; i < n; i++)
            s += pqlr_weight_get(row, w0 + i, wbits);
    }
    return s;
}

/* Low / high nibble of a packed int4 byte, sign-extended (b as a signed byte). */
#define PQLR_LO4(b) ((int32_t)((uint32_t)(uint8_t)(b) << 28) >> 28)
#define PQLR_HI4(b) ((int32_t)(b) >> 4)

/* ------------------------------------------------------------------ 4 channels x 3 pixels
 * a[3 * j + i] += sum_{t < n} x_i[t] * w_j[t] for channels j < 4 (rows w + j * ws bytes apart) and
 * pixels i < 3 (inputs x0, x1, x2), raw inputs (zero point hoisted by the caller). int8 weights.
 * Inner loop: 28 loads, 48 mul, 48 add, 8 pointer/branch per 48 MACs (2.8 instructions/MAC). */
PQLR_NOINLINE static void pqlr_dot4x3_w8(const int8_t *x0, const int8_t *x1, const int8_t *x2,
                                         const int8_t *w, int32_t ws, int32_t n, int32_t *a)
{
    int32_t a00 = a[0], a01 = a[1], a02 = a[2], a10 = a[3], a11 = a[4], a12 = a[5];
    int32_t a20 = a[6], a21 = a[7], a22 = a[8], a30 = a[9], a31 = a[10], a32 = a[11];
    const int8_t *w0 = w, *w1 = w + ws, *w2 = w1 + ws, *w3 = w2 + ws;
    const int8_t *end = x0 + (n & ~3);
#define PQLR_STEP(k)                                                                             \
    do {                                                                                         \
        const int32_t u = x0[k], v = x1[k], s = x2[k];                                           \
        int32_t c = w0[k];                                                                       \
        a00 += u * c; a01 += v * c; a02 += s * c;                                                \
        c = w1[k]; a10 += u * c; a11 += v * c; a12 += s * c;                                     \
        c = w2[k]; a20 += u * c; a21 += v * c; a22 += s * c;                                     \
        c = w3[k]; a30 += u * c; a31 += v * c; a32 += s * c;                                     \
    } while (0)
    while (x0 != end) {
        PQLR_STEP(0); PQLR_STEP(1); PQLR_STEP(2); PQLR_STEP(3);
        x0 += 4; x1 += 4; x2 += 4; w0 += 4; w1 += 4; w2 += 4; w3 += 4;
    }
    for (int32_t t = n & 3; t > 0; t--) {
        PQLR_STEP(0);
        x0++; x1++; x2++; w0++; w1++; w2++; w3++;
    }
#undef PQLR_STEP
    a[0] = a00; a[1] = a01; a[2] = a02; a[3] = a10; a[4] = a11; a[5] = a12;
    a[6] = a20; a[7] = a21; a[8] = a22; a[9] = a30; a[10] = a31; a[11] = a32;
}

/* The same for int4 weights starting at nibble w0 of each row (rows ws bytes apart). */
PQLR_NOINLINE static void pqlr_dot4x3_w4(const int8_t *x0, const int8_t *x1, const int8_t *x2,
                                  const int8_t *w, int32_t ws, int32_t w0n, int32_t n, int32_t *a)
{
    int32_t a00 = a[0], a01 = a[1], a02 = a[2], a10 = a[3], a11 = a[4], a12 = a[5];
    int32_t a20 = a[6], a21 = a[7], a22 = a[8], a30 = a[9], a31 = a[10], a32 = a[11];
    const int8_t *w0 = w + (w0n >> 1), *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;
#define PQLR_MAC4(k, NIB)                                                                        \
    do {                                                                                         \
        const int32_t u = x0[k], v = x1[k], s = x2[k];                                           \
        int32_t c = NIB(w0[0]);                                                                  \
        a00 += u * c; a01 += v * c; a02 += s * c;                                                \
        c = NIB(w1[0]); a10 += u * c; a11 += v * c; a12 += s * c;                                \
        c = NIB(w2[0]); a20 += u * c; a21 += v * c; a22 += s * c;                                \
        c = NIB(w3[0]); a30 += u * c; a31 += v * c; a32 += s * c;                                \
    } while (0)
    if ((w0n & 1) && n > 0) {                   /* odd start: the high nibble of the first byte */
        PQLR_MAC4(0, PQLR_HI4);
        x0++; x1++; x2++; w0++; w1++; w2++; w3++;
        n--;
    }
    for (int32_t t = n >> 1; t > 0; t--) {       /* one byte = two weights per row */
        PQLR_MAC4(0, PQLR_LO4);
        PQLR_MAC4(1, PQLR_HI4);
        x0 += 2; x1 += 2; x2 += 2; w0++; w1++; w2++; w3++;
    }
    if (n & 1)
        PQLR_MAC4(0, PQLR_LO4);
#undef PQLR_MAC4
    a[0] = a00; a[1] = a01; a[2] = a02; a[3] = a10; a[4] = a11; a[5] = a12;
    a[6] = a20; a[7] = a21; a[8] = a22; a[9] = a30; a[10] = a31; a[11] = a32;
}

/* ------------------------------------------------------------------ int4: 4 channels x 4 pixels, SWAR
 * a[4 * j + i] += sum_{t < n} x_i[t] * w_j[t], int4 weights from nibble w0n of each row.
 * Two int8 products per 32-bit multiply: X = x_0 + x_1 * 2^16 (mod 2^32), X * w = x_0 w + x_1 w 2^16.
 * Exact: x w lies in [-1016, 1024], so after at most 30 products each half holds a sum L, H with
 * |L|, |H| <= 30720 < 2^15; L is the sign-extended low half and H = (P - L) / 2^16, where
 * H * 2^16 < 2^31 fits int32 (all packed arithmetic in uint32_t, i.e. mod 2^32).
 * Cost per byte (2 weights) and 4 channels x 4 pixels: 8 loads + 8 to pack, 4 x (load, 3 shifts,
 * 4 mul, 4 add): 64 instructions per 32 MACs. */
#define PQLR_UNPACK_SUMS(P, A0, A1)                                                              \
    do {                                                                                         \
        const int32_t lo_ = (int32_t)((P) << 16) >> 16;                                          \
        A0 += lo_;                                                                               \
        A1 += (int32_t)((P) - (uint32_t)lo_) >> 16;                                              \
    } while (0)

PQLR_NOINLINE static void pqlr_dot4x4_w4(const int8_t *x0, const int8_t *x1, const int8_t *x2,
                                         const int8_t *x3, const int8_t *w, int32_t ws, int32_t w0n,
                                         int32_t n, int32_t *a)
{
    const int8_t *w0 = w + (w0n >> 1), *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;
    if ((w0n & 1) && n > 0) {                   /* odd start: high nibbles, one plain step */
        const int32_t c[4] = {PQLR_HI4(*w0++), PQLR_HI4(*w1++), PQLR_HI4(*w2++), PQLR_HI4(*w3++)};
        for (int32_t j = 0; j < 4; j++) {
            a[4 * j] += *x0 * c[j]; a[4 * j + 1] += *x1 * c[j];
            a[4 * j + 2] += *x2 * c[j]; a[4 * j + 3] += *x3 * c[j];
        }
        x0++; x1++; x2++; x3++;
        n--;
    }
    for (int32_t bytes = n >> 1; bytes > 0;) {
        const int32_t chunk = bytes < 15 ? bytes : 15;  /* <= 30 products per half */
        uint32_t p00 = 0, p01 = 0, p10 = 0, p11 = 0, p20 = 0, p21 = 0, p30 = 0, p31 = 0;
        bytes -= chunk;
        for (int32_t t = chunk; t > 0; t--) {
            const uint32_t e0 = (uint32_t)x0[0] + ((uint32_t)x1[0] << 16);     /* pixels 0,1 step 2t */
            const uint32_t e1 = (uint32_t)x2[0] + ((uint32_t)x3[0] << 16);     /* pixels 2,3 */
            const uint32_t o0 = (uint32_t)x0[1] + ((uint32_t)x1[1] << 16);     /* step 2t + 1 */
            const uint32_t o1 = (uint32_t)x2[1] + ((uint32_t)x3[1] << 16);
            int32_t b = *w0++;
            uint32_t c = (uint32_t)PQLR_LO4(b);
            p00 += e0 * c; p01 += e1 * c;
            c = (uint32_t)PQLR_HI4(b); p00 += o0 * c; p01 += o1 * c;
            b = *w1++;
            c = (uint32_t)PQLR_LO4(b); p10 += e0 * c; p11 += e1 * c;
            c = (uint32_t)PQLR_HI4(b); p10 += o0 * c; p11 += o1 * c;
            b = *w2++;
            c = (uint32_t)PQLR_LO4(b); p20 += e0 * c; p21 += e1 * c;
            c = (uint32_t)PQLR_HI4(b); p20 += o0 * c; p21 += o1 * c;
            b = *w3++;
            c = (uint32_t)PQLR_LO4(b); p30 += e0 * c; p31 += e1 * c;
            c = (uint32_t)PQLR_HI4(b); p30 += o0 * c; p31 += o1 * c;
            x0 += 2; x1 += 2; x2 += 2; x3 += 2;
        }
        PQLR_UNPACK_SUMS(p00, a[0], a[1]); PQLR_UNPACK_SUMS(p01, a[2], a[3]);
        PQLR_UNPACK_SUMS(p10, a[4], a[5]); PQLR_UNPACK_SUMS(p11, a[6], a[7]);
        PQLR_UNPACK_SUMS(p20, a[8], a[9]); PQLR_UNPACK_SUMS(p21, a[10], a[11]);
        PQLR_UNPACK_SUMS(p30, a[12], a[13]); PQLR_UNPACK_SUMS(p31, a[14], a[15]);
    }
    if (n & 1) {                                /* odd end: the low nibble of one more byte */
        const int32_t c[4] = {PQLR_LO4(*w0), PQLR_LO4(*w1), PQLR_LO4(*w2), PQLR_LO4(*w3)};
        for (int32_t j = 0; j < 4; j++) {
            a[4 * j] += *x0 * c[j]; a[4 * j + 1] += *x1 * c[j];
            a[4 * j + 2] += *x2 * c[j]; a[4 * j + 3] += *x3 * c[j];
        }
    }
}

/* ------------------------------------------------------------------ 4 channels x 1 pixel
 * a[j] += sum_{t < n} (x[t] - zp) * w_j[t] (zero point inside: for edge pixels and short rows);
 * weights start at element w0n of each row (any width; fast loops for 8 and 4 bits). */
static inline void pqlr_dot4x1(const int8_t *x, int32_t zp, const int8_t *w, int32_t ws,
                               int32_t w0n, int32_t n, int32_t wbits, int32_t *a)
{
    int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
    if (wbits == 8) {                           /* unrolled 4x, pointers walking */
        const int8_t *w0 = w + w0n, *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;
        const int8_t *end = x + (n & ~3);
#define PQLR_STEP1(k)                                                                            \
        do {                                                                                     \
            const int32_t u = x[k] - zp;                                                         \
            a0 += u * w0[k]; a1 += u * w1[k]; a2 += u * w2[k]; a3 += u * w3[k];                 \
        } while (0)
        while (x != end) {
            PQLR_STEP1(0); PQLR_STEP1(1); PQLR_STEP1(2); PQLR_STEP1(3);
            x += 4; w0 += 4; w1 += 4; w2 += 4; w3 += 4;
        }
        for (int32_t t = n & 3; t > 0; t--) {
            PQLR_STEP1(0);
            x++; w0++; w1++; w2++; w3++;
        }
#undef PQLR_STEP1
    } else if (wbits == 4) {                    /* one byte = two weights per row */
        const int8_t *w0 = w + (w0n >> 1), *w1 = w0 + ws, *w2 = w1 + ws, *w3 = w2 + ws;
        int32_t u;
        if ((w0n & 1) && n > 0) {
            u = *x++ - zp;
            a0 += u * PQLR_HI4(*w0++); a1 += u * PQLR_HI4(*w1++);
            a2 += u * PQLR_HI4(*w2++); a3 += u * PQLR_HI4(*w3++);
            n--;
        }
        for (int32_t t = n >> 1; t > 0; t--) {
            const int32_t b0 = *w0++, b1 = *w1++, b2 = *w2++, b3 = *w3++;
            u = x[0] - zp;
            a0 += u * PQLR_LO4(b0); a1 += u * PQLR_LO4(b1); a2 += u * PQLR_LO4(b2); a3 += u * PQLR_LO4(b3);
            u = x[1] - zp;
            a0 += u * PQLR_HI4(b0); a1 += u * PQLR_HI4(b1); a2 += u * PQLR_HI4(b2); a3 += u * PQLR_HI4(b3);
            x += 2;
        }
        if (n & 1) {
            u = x[0] - zp;
            a0 += u * PQLR_LO4(*w0); a1 += u * PQLR_LO4(*w1); a2 += u * PQLR_LO4(*w2); a3 += u * PQLR_LO4(*w3);
        }
    } else {
        a0 += pqlr_dot_s8(x, zp, w, w0n, n, wbits);
        a1 += pqlr_dot_s8(x, zp, w + ws, w0n, n, wbits);
        a2 += pqlr_dot_s8(x, zp, w + 2 * ws, w0n, n, wbits);
        a3 += pqlr_dot_s8(x, zp, w + 3 * ws, w0n, n, wbits);
    }
    a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3;
}

#endif /* PQLR_NN_OPT_H */
