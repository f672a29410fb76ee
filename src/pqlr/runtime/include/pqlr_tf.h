/* pqlr_tf.h: integer transformer kernels (matmul, softmax, layernorm, lut, transpose, reshape,
 * concat) for int8 ("s8") activations and int16 ("s16", zero point 0: W1A16 models).
 * Reference kernels: plain, obvious, not performant by design.
 *
 * Mirrors src/pqlr/ir/ops_tf.py (the NumPy oracle); every kernel is bit-exact to it. Rounding is
 * round-half-up everywhere (pqlr_types.h). real = (q - zp) * scale; s8 zero points in [-128, 127], s16 0.
 * Layouts are row-major, last axis contiguous, no batch dimension (one sample per call).
 * No malloc, no floating point; none of these kernels needs scratch memory (no _get_buffer_size).
 *
 * matmul  out[h,i,j] = clamp(zp_out + requant(sum_k (a[h,i,k]-zp_a)(b[h,k,j]-zp_b), m, n))
 *         A (heads, m, k), B (heads, k, p), out (heads, m, p). |acc| <= k * 255^2, so k <= 33025.
 *         Q.K^T uses B = K transposed to (heads, d, T) with 1/sqrt(d) folded into the multiplier.
 * matmul_s16  zero points 0, int64 acc (|acc| <= k 2^30, k <= 65536), shift >= 24, requantized
 *         exactly without 64-bit overflow: acc = a1 2^24 + a0 (0 <= a0 < 2^24),
 *         y = (a1 m + ((a0 m + 2^(n-1)) >> 24)) >> (n - 24)   [= (acc m + 2^(n-1)) >> n]
 *
 * softmax over the last axis (rows of `len`), output scale 1/256, zero point -128:
 *         d_i = max(x) - x_i in [0, 255]
 *         e_i = exp_table[d_i]              exp_table[d] = round(2^16 * exp(-scale_in * d)), Q16,
 *                                           so e_i in [0, 65536] and e_max = 65536
 *         sum = sum_i e_i                   uint32, <= len * 2^16, hence len <= 32767
 *         y_i = floor((512 * e_i + sum) / (2 * sum))   = round(256 * e_i / sum) in [0, 256]
 *         out_i = min(y_i, 255) - 128
 *
 * softmax_s16: int16 in (zero point 0), out scale 1/32768, zero point 0; d = max(x) - x in [0, 65535]:
 *         u = (d * multiplier + 2^(shift-1)) >> shift   = round(d * scale_in * log2(e) * 2^16): the
 *                                                   exponent of exp(-scale_in d) = 2^-(u / 2^16)
 *         k = u >> 16, f = u & 0xFFFF, i = f >> 8, lo = f & 0xFF
 *         v = T[i] - (((T[i] - T[i+1]) * lo + 128) >> 8)    T[i] = round(2^30 2^(-i/256)), i = 0..256
 *         e = k < 31 ? (v + 2^(9+k)) >> (10+k) : 0       Q20, e(d = 0) = 2^20
 *         y = min(floor((65536 e + sum) / (2 sum)), 32767)     int64, sum = sum_i e_i
 *
 * layernorm over the last axis (rows of `channels` = C, 1 <= C <= 4096 for s8, 512 for s16):
 *         S = sum_i x_i ; d_i = C * x_i - S        (mean-centred, units scale_in / C; the input
 *                                                   zero point cancels)
 *         W = sum_i d_i^2 + C * eps                int64; eps = round(epsilon * C^2 / scale_in^2)
 *         if W == 0: z_i = 0, else
 *           F = (62 - bitlen(W)) / 2               so that W << 2F < 2^62
 *           t = isqrt(W << 2F)                     = floor(sqrt(W) * 2^F), 30-31 significant bits
 *           r = floor(2^62 / t)
 *           z_i = (d_i * r + 2^(s-1)) >> s,  s = 46 - F
 *                                                  z_i = round(2^16 * d_i / sqrt(W)), |z_i| <= 2^16,
 *                                                  i.e. the normalised value (x - mean)/std is
 *                                                  z_i * sqrt(C) / 2^16 (Q16 times sqrt(C))
 *         acc_i = gamma[i] * z_i + beta[i]         gamma int8 (s16: int16) per channel (scale s_g[i]),
 *                                                  beta int32 in the accumulator scale
 *                                                  s_g[i] * sqrt(C) / 2^16 (s16: |beta| <= 2^29,
 *                                                  acc in int64, |acc| < 2^31 + 2^29)
 *         out_i = clamp(zp_out + requant(acc_i, multiplier[i], shift[i]))
 *         with multiplier[i] / 2^shift[i] = s_g[i] * sqrt(C) / 2^16 / scale_out.
 *
 * lut     out_i = table[x_i + 128] (256 entries; GELU, tanh, sigmoid, ... built in ops_tf.py).
 * lut_s16 513 int16 knots, table[i] = f(scale_in * (128 i - 32768)); u = x + 32768, i = u >> 7,
 *         r = u & 127: out = table[i] + (((table[i+1] - table[i]) * r + 64) >> 7)  (linear interpolation)
 *
 * transpose  out = permute(in, perm), rank 1..4; out dims are in_dims[perm[0..rank-1]].
 * reshape    a plain copy of n bytes, any dtype (s16: 2 bytes per element); in == out is a no-op.
 * concat     along an axis: `outer` blocks; block o of the output is input 0's chunk o (chunk[0]
 *            elements), then input 1's chunk o, ... All inputs share the output's qparams.
 *
 * transpose_s16, concat_s16: as s8 on int16 elements.
 */
#ifndef PQLR_TF_H
#define PQLR_TF_H

#include "pqlr_types.h"
#include "pqlr_nn.h"   /* pqlr_requantize_out, pqlr_quant_ok: the shared 64-bit requantize + clamp */

#define PQLR_MATMUL_S16_MAX_K 65536
#define PQLR_SOFTMAX_MAX_LEN 32767
#define PQLR_LAYERNORM_MAX_CHANNELS 4096
#define PQLR_LAYERNORM_S16_MAX_CHANNELS 512
#define PQLR_LUT_S16_KNOTS 513
#define PQLR_TRANSPOSE_MAX_RANK 4
#define PQLR_CONCAT_MAX_INPUTS 8

typedef struct {
    int32_t heads, m, k, p;            /* A (heads, m, k) x B (heads, k, p) -> (heads, m, p) */
    int32_t a_zp, b_zp, out_zp;        /* zero points, [-128, 127] */
    int32_t multiplier, shift;         /* per-tensor requantization */
    int32_t act_min, act_max;          /* output clamp, within [-128, 127] */
} pqlr_matmul_params;

typedef struct {
    int32_t rows, len;                 /* rows of `len` elements, 1 <= len <= 32767 */
    int32_t multiplier, shift;         /* s16 only: scale_in * log2(e) * 2^16 (s8: 0, 1) */
} pqlr_softmax_params;

typedef struct {
    int32_t rows, channels;            /* rows of C = channels elements, 1 <= C <= 4096 */
    int32_t eps;                       /* epsilon in (scale_in / C)^2 units, >= 0 */
    int32_t out_zp;
    int32_t act_min, act_max;
} pqlr_layernorm_params;

typedef struct {
    int32_t size;                      /* elements */
} pqlr_lut_params;

typedef struct {
    int32_t rank;                      /* 1..4 */
    int32_t in_dims[PQLR_TRANSPOSE_MAX_RANK];
    int32_t perm[PQLR_TRANSPOSE_MAX_RANK];   /* out axis j is in axis perm[j] */
} pqlr_transpose_params;

typedef struct {
    int32_t n_inputs;                  /* 1..8 */
    int32_t outer;                     /* product of the dims before the axis */
    int32_t chunk[PQLR_CONCAT_MAX_INPUTS];   /* input i: its axis dim times the dims after it */
} pqlr_concat_params;

pqlr_status pqlr_matmul_s8(const pqlr_matmul_params *p, const int8_t *a, const int8_t *b, int8_t *out);
pqlr_status pqlr_matmul_s16(const pqlr_matmul_params *p, const int16_t *a, const int16_t *b, int16_t *out);

/* exp_table: 256 Q16 entries, exp_table[d] = round(2^16 exp(-scale_in d)), exp_table[0] = 65536. */
pqlr_status pqlr_softmax_s8(const pqlr_softmax_params *p, const int32_t *exp_table,
                            const int8_t *in, int8_t *out);

/* exp2_table: 257 Q30 entries round(2^30 2^(-i/256)); multiplier/shift in p. */
pqlr_status pqlr_softmax_s16(const pqlr_softmax_params *p, const int32_t *exp2_table,
                             const int16_t *in, int16_t *out);

/* gamma int8 (C,), beta int32 (C,), multiplier/shift int32 (C,), per channel. */
pqlr_status pqlr_layernorm_s8(const pqlr_layernorm_params *p, const int8_t *gamma, const int32_t *beta,
                              const int32_t *multiplier, const int8_t *shift,
                              const int8_t *in, int8_t *out);

/* gamma int16 (C,), |beta| <= 2^29, otherwise as pqlr_layernorm_s8. */
pqlr_status pqlr_layernorm_s16(const pqlr_layernorm_params *p, const int16_t *gamma, const int32_t *beta,
                               const int32_t *multiplier, const int8_t *shift,
                               const int16_t *in, int16_t *out);

pqlr_status pqlr_lut_s8(const pqlr_lut_params *p, const int8_t *table, const int8_t *in, int8_t *out);

/* table: 513 int16 knots (see lut_s16 above). */
pqlr_status pqlr_lut_s16(const pqlr_lut_params *p, const int16_t *table, const int16_t *in, int16_t *out);

pqlr_status pqlr_transpose_s8(const pqlr_transpose_params *p, const int8_t *in, int8_t *out);
pqlr_status pqlr_transpose_s16(const pqlr_transpose_params *p, const int16_t *in, int16_t *out);

pqlr_status pqlr_reshape_s8(int32_t n_bytes, const int8_t *in, int8_t *out);

pqlr_status pqlr_concat_s8(const pqlr_concat_params *p, const int8_t *const *inputs, int8_t *out);
pqlr_status pqlr_concat_s16(const pqlr_concat_params *p, const int16_t *const *inputs, int16_t *out);

/* table int8, same shape as x ((T, C), row-major). */

/* ------------------------------------------------------------------ layernorm helpers (shared by s8, s16) */

/* floor(sqrt(v)), bitwise method (primitives.isqrt). */
static inline uint64_t pqlr_isqrt_u64(uint64_t v)
{
    uint64_t res = 0, bit = (uint64_t)1 << 62;
    while (bit != 0) {
        if (v >= res + bit) {
            v -= res + bit;
            res = (res >> 1) + bit;
        } else {
            res >>= 1;
        }
        bit >>= 2;
    }
    return res;
}

/* For W = sum d^2 + C eps in [0, 2^62): *rcp = floor(2^62 / isqrt(W << 2F)), *sh = 46 - F, so that
 * z = (d * rcp + 2^(sh-1)) >> sh = round(2^16 d / sqrt(W)); W = 0 gives rcp 0 (z = 0), sh 1. */
static inline void pqlr_layernorm_rcp(int64_t w, int64_t *rcp, int32_t *sh)
{
    int32_t bits = 0;
    for (uint64_t v = (uint64_t)w; v != 0; v >>= 1) {
        bits++;
    }
    if (w <= 0) {
        *rcp = 0;
        *sh = 1;
        return;
    }
    int32_t f = (62 - bits) / 2;
    *rcp = (int64_t)(((uint64_t)1 << 62) / pqlr_isqrt_u64((uint64_t)w << (2 * f)));
    *sh = 46 - f;
}

#endif /* PQLR_TF_H */
