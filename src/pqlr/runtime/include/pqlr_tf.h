/* pqlr_tf.h: integer transformer kernels (matmul, softmax, layernorm, lut, transpose, reshape,
 * concat, pos_add), int8 activations. Reference kernels: plain, obvious, not performant by design.
 *
 * Mirrors src/pqlr/ir/ops_tf.py (the NumPy oracle); every kernel is bit-exact to it. Rounding is
 * round-half-up everywhere (pqlr_types.h). Activations are asymmetric int8, real = (q - zp) * scale.
 * Layouts are row-major, last axis contiguous, no batch dimension (one sample per call).
 * No malloc, no floating point; none of these kernels needs scratch memory.
 *
 * matmul  out[h,i,j] = clamp(zp_out + requant(sum_k (a[h,i,k]-zp_a)(b[h,k,j]-zp_b), m, n))
 *         A (heads, m, k), B (heads, k, p), out (heads, m, p). |acc| <= k * 255^2, so k <= 33025.
 *         Q.K^T uses B = K transposed to (heads, d, T) with 1/sqrt(d) folded into the multiplier.
 *
 * softmax over the last axis (rows of `len`), output scale 1/256, zero point -128:
 *         d_i = max(x) - x_i in [0, 255]
 *         e_i = exp_table[d_i]              exp_table[d] = round(2^16 * exp(-scale_in * d)), Q16,
 *                                           so e_i in [0, 65536] and e_max = 65536
 *         sum = sum_i e_i                   uint32, <= len * 2^16, hence len <= 32767
 *         y_i = floor((512 * e_i + sum) / (2 * sum))   = round(256 * e_i / sum) in [0, 256]
 *         out_i = min(y_i, 255) - 128
 *
 * layernorm over the last axis (rows of `channels` = C, 1 <= C <= 4096):
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
 *         acc_i = gamma[i] * z_i + beta[i]         gamma int8 per channel (scale s_g[i]), beta int32
 *                                                  in the accumulator scale s_g[i] * sqrt(C) / 2^16
 *         out_i = clamp(zp_out + requant(acc_i, multiplier[i], shift[i]))
 *         with multiplier[i] / 2^shift[i] = s_g[i] * sqrt(C) / 2^16 / scale_out.
 *
 * lut     out_i = table[x_i + 128] (256 entries; GELU, tanh, sigmoid, ... built in ops_tf.py).
 *
 * transpose  out = permute(in, perm), rank 1..4; out dims are in_dims[perm[0..rank-1]].
 * reshape    a plain copy of n bytes (the generator may alias in/out and skip it; in == out is a no-op).
 * concat     along an axis: `outer` blocks; block o of the output is input 0's chunk o (chunk[0]
 *            elements), then input 1's chunk o, ... All inputs share the output's qparams.
 *
 * pos_add  out = x + table, TFLite-style integer add with left shift 20 (x and table (T, C)):
 *         a = requant((x - zp_x) << 20, x_mult, x_shift)
 *         b = requant((table - zp_t) << 20, t_mult, t_shift)
 *         out = clamp(zp_out + requant(a + b, out_mult, out_shift), act_min, act_max)
 *         x_mult/2^x_shift = s_x / (2 max(s_x, s_t)), t_mult likewise,
 *         out_mult/2^out_shift = 2 max(s_x, s_t) / (2^20 s_out).
 */
#ifndef PQLR_TF_H
#define PQLR_TF_H

#include "pqlr_types.h"

#define PQLR_POS_ADD_LEFT_SHIFT 20
#define PQLR_SOFTMAX_MAX_LEN 32767
#define PQLR_LAYERNORM_MAX_CHANNELS 4096
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

typedef struct {
    int32_t size;                      /* elements of x (= of the table) */
    int32_t x_zp, table_zp, out_zp;
    int32_t x_multiplier, x_shift;
    int32_t table_multiplier, table_shift;
    int32_t out_multiplier, out_shift;
    int32_t act_min, act_max;
} pqlr_pos_add_params;

pqlr_status pqlr_matmul_s8(const pqlr_matmul_params *p, const int8_t *a, const int8_t *b, int8_t *out);

/* exp_table: 256 Q16 entries, exp_table[d] = round(2^16 exp(-scale_in d)), exp_table[0] = 65536. */
pqlr_status pqlr_softmax_s8(const pqlr_softmax_params *p, const int32_t *exp_table,
                            const int8_t *in, int8_t *out);

/* gamma int8 (C,), beta int32 (C,), multiplier/shift int32 (C,), per channel. */
pqlr_status pqlr_layernorm_s8(const pqlr_layernorm_params *p, const int8_t *gamma, const int32_t *beta,
                              const int32_t *multiplier, const int32_t *shift,
                              const int8_t *in, int8_t *out);

pqlr_status pqlr_lut_s8(const pqlr_lut_params *p, const int8_t *table, const int8_t *in, int8_t *out);

pqlr_status pqlr_transpose_s8(const pqlr_transpose_params *p, const int8_t *in, int8_t *out);

pqlr_status pqlr_reshape_s8(int32_t n_bytes, const int8_t *in, int8_t *out);

pqlr_status pqlr_concat_s8(const pqlr_concat_params *p, const int8_t *const *inputs, int8_t *out);

/* table int8, same shape as x ((T, C), row-major). */
pqlr_status pqlr_pos_add_s8(const pqlr_pos_add_params *p, const int8_t *table, const int8_t *in, int8_t *out);

/* None of the kernels above needs scratch; each returns 0 (CMSIS-NN style, for uniform callers). */
static inline int32_t pqlr_tf_get_buffer_size(void) { return 0; }

#endif /* PQLR_TF_H */
