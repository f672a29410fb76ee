/* pqlr_elem.h: element-wise integer kernels for int8 ("s8") and int16 ("s16") activations:
 * add, sub, mul (NumPy broadcasting, second operand a tensor or a constant array), prelu
 * (LeakyReLU / PReLU) and channel_affine (y = s_c x + t_c per channel).
 * Oracle: src/pqlr/ir/ops_elem.py; every kernel here is bit-exact to it.
 * Conventions (requantization, clamps, status codes) as in pqlr_nn.h; all arithmetic is integer,
 * products that could pass int32 are done in int64 (pqlr_requantize_out).
 *
 * Broadcasting (add, sub, mul): shapes are normalised to rank 4 by leading 1s. `dims` is the
 * output shape; output element (i0, i1, i2, i3) is at i0 d1 d2 d3 + i1 d2 d3 + i2 d3 + i3
 * (row-major) and reads in1[sum_k i_k in1_strides[k]], in2[sum_k i_k in2_strides[k]]: an input's
 * stride is its own row-major element stride, 0 along a dim where it has size 1 (broadcasts).
 * Example: out (2, 3), in1 (2, 3), in2 (1, 3) -> dims {1, 1, 2, 3}, in1_strides {0, 0, 3, 1},
 * in2_strides {0, 0, 0, 1}. When nothing broadcasts (every stride of a dim > 1 equals the
 * output's) the kernels run one flat loop over `size` elements.
 * Every kernel reads element i of a same-shape first input before writing output i and never
 * reads it again, so the output may alias that input (in place).
 */
#ifndef PQLR_ELEM_H
#define PQLR_ELEM_H

#include "pqlr_nn.h"

/* ------------------------------------------------------------------ parameter structs
 * Every field is int32_t, in the order listed by ops_elem.STRUCT_FIELDS (a test checks). */

/* add and sub, TFLite style: a = (x1 - in1_zp) << left_shift, b = (x2 - in2_zp) << left_shift;
 * s = pqlr_requantize(a, in1_multiplier, in1_shift) +/- pqlr_requantize(b, in2_multiplier, in2_shift);
 * y = pqlr_requantize_out(s, out_multiplier, out_shift, out_zp, act_min, act_max).
 * left_shift is 20 for s8, 15 for s16. The kernels refuse parameters for which an int32 step
 * could overflow (|x - zp| << left_shift, or the sum of the two rescaled terms). */
typedef struct {
    int32_t size;                           /* dims[0] * dims[1] * dims[2] * dims[3] */
    int32_t dims[4];                        /* output shape, rank 4 */
    int32_t in1_strides[4], in2_strides[4]; /* element strides, 0 where that input broadcasts */
    int32_t in1_zp, in2_zp, out_zp;
    int32_t left_shift;
    int32_t in1_multiplier, in1_shift;
    int32_t in2_multiplier, in2_shift;
    int32_t out_multiplier, out_shift;
    int32_t act_min, act_max;
} pqlr_add_params;

/* mul: y = pqlr_requantize_out((x1 - in1_zp) * (x2 - in2_zp), multiplier, shift, out_zp, act_min,
 * act_max), multiplier/shift for s1 s2 / s_out. The product fits int32 (|x - zp| spans multiply
 * to at most 2^31 - 1; the kernels refuse zero points for which it could not). */
typedef struct {
    int32_t size;
    int32_t dims[4];
    int32_t in1_strides[4], in2_strides[4];
    int32_t in1_zp, in2_zp, out_zp;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} pqlr_mul_params;

/* prelu (LeakyReLU, PReLU): the input is viewed as (outer, channels, inner), row-major, channel
 * c = (i / inner) % channels. With d = x - in_zp:
 *   y = pqlr_requantize_out(d, multiplier_pos, shift_pos, out_zp, ...)          d >= 0
 *   y = pqlr_requantize_out(d, multiplier_neg[q], shift_neg[q], out_zp, ...)    d < 0
 * q = 0 when n_neg == 1 (one slope), else c. multiplier_neg may be negative (a negative slope):
 * the product is 64-bit and the shift arithmetic, so requantization stays floor((d m + 2^(n-1)) / 2^n). */
typedef struct {
    int32_t outer, channels, inner;
    int32_t n_neg;                  /* 1 or channels */
    int32_t in_zp, out_zp;
    int32_t multiplier_pos, shift_pos;
    int32_t act_min, act_max;
} pqlr_prelu_params;

/* channel_affine (unfolded BatchNorm, any per-channel y = s_c x + t_c), layout as prelu:
 *   acc = (x - in_zp) * gamma[c] + beta[c]             (int32: |beta| + span * |gamma| < 2^31)
 *   y   = pqlr_requantize_out(acc, multiplier[c], shift[c], out_zp, act_min, act_max)
 * gamma int8, beta / multiplier int32, shift int8, each of length `channels`. */
typedef struct {
    int32_t outer, channels, inner;
    int32_t in_zp, out_zp;
    int32_t act_min, act_max;
} pqlr_channel_affine_params;

/* ------------------------------------------------------------------ shared checks and loops */

/* max |x - zp| over the storage range [lo, hi]. */
static inline int64_t pqlr_elem_span(int32_t zp, int32_t lo, int32_t hi)
{
    return (int64_t)(hi - zp > zp - lo ? hi - zp : zp - lo);
}

/* Zero points inside the storage range [lo, hi] and lo <= act_min <= act_max <= hi. */
static inline int pqlr_elem_range_ok(int32_t in1_zp, int32_t in2_zp, int32_t out_zp, int32_t act_min,
                                     int32_t act_max, int32_t lo, int32_t hi)
{
    return lo <= in1_zp && in1_zp <= hi && lo <= in2_zp && in2_zp <= hi && lo <= out_zp &&
           out_zp <= hi && lo <= act_min && act_min <= act_max && act_max <= hi;
}

/* dims >= 1 with product size (< 2^31), strides >= 0, and every offset read fits int32. */
static inline int pqlr_broadcast_ok(int32_t size, const int32_t dims[4], const int32_t s1[4],
                                    const int32_t s2[4])
{
    int64_t n = 1, last1 = 0, last2 = 0;
    for (int d = 0; d < 4; d++) {
        if (dims[d] < 1 || s1[d] < 0 || s2[d] < 0)
            return 0;
        n *= dims[d];
        last1 += (int64_t)(dims[d] - 1) * s1[d];
        last2 += (int64_t)(dims[d] - 1) * s2[d];
        if (n > INT32_MAX || last1 > INT32_MAX || last2 > INT32_MAX)
            return 0;
    }
    return n == size;
}

/* 1 when both inputs are laid out like the output (nothing broadcasts): one flat loop applies. */
static inline int pqlr_broadcast_flat(const int32_t dims[4], const int32_t s1[4], const int32_t s2[4])
{
    int32_t step = 1;
    for (int d = 3; d >= 0; d--) {
        if (dims[d] > 1 && (s1[d] != step || s2[d] != step))
            return 0;
        step *= dims[d];
    }
    return 1;
}

/* out[o] = ONE(P, in1[...], in2[...]) over the broadcast output (see the top of this file);
 * P points to a struct with size, dims, in1_strides, in2_strides. */
#define PQLR_BROADCAST_LOOP(P, IN1, IN2, OUT, OUT_T, ONE)                                      \
    do {                                                                                       \
        const int32_t *d_ = (P)->dims, *a_ = (P)->in1_strides, *b_ = (P)->in2_strides;         \
        if (pqlr_broadcast_flat(d_, a_, b_)) {                                                 \
            for (int32_t i_ = 0; i_ < (P)->size; i_++)                                         \
                (OUT)[i_] = (OUT_T)ONE((P), (IN1)[i_], (IN2)[i_]);                             \
        } else {                                                                               \
            int32_t o_ = 0;                                                                    \
            for (int32_t i0 = 0; i0 < d_[0]; i0++)                                             \
                for (int32_t i1 = 0; i1 < d_[1]; i1++)                                         \
                    for (int32_t i2 = 0; i2 < d_[2]; i2++) {                                   \
                        const int32_t ra = i0 * a_[0] + i1 * a_[1] + i2 * a_[2];               \
                        const int32_t rb = i0 * b_[0] + i1 * b_[1] + i2 * b_[2];               \
                        for (int32_t i3 = 0; i3 < d_[3]; i3++)                                 \
                            (OUT)[o_++] = (OUT_T)ONE((P), (IN1)[ra + i3 * a_[3]],              \
                                                     (IN2)[rb + i3 * b_[3]]);                  \
                    }                                                                          \
        }                                                                                      \
    } while (0)

/* add/sub parameters valid for storage range [lo, hi], no int32 step can overflow (mirrors
 * ops_elem._add_struct: span << left_shift < 2^31 and the two rescaled spans + 2 < 2^31). */
static inline int pqlr_add_params_ok(const pqlr_add_params *p, int32_t lo, int32_t hi)
{
    if (!pqlr_broadcast_ok(p->size, p->dims, p->in1_strides, p->in2_strides) ||
        p->left_shift < 0 || p->left_shift > 30 ||
        !pqlr_quant_ok(p->in1_multiplier, p->in1_shift) ||
        !pqlr_quant_ok(p->in2_multiplier, p->in2_shift) ||
        !pqlr_quant_ok(p->out_multiplier, p->out_shift) ||
        !pqlr_elem_range_ok(p->in1_zp, p->in2_zp, p->out_zp, p->act_min, p->act_max, lo, hi))
        return 0;
    const int64_t big1 = pqlr_elem_span(p->in1_zp, lo, hi) << p->left_shift;
    const int64_t big2 = pqlr_elem_span(p->in2_zp, lo, hi) << p->left_shift;
    if (big1 > INT32_MAX || big2 > INT32_MAX)
        return 0;
    const int64_t r1 = ((big1 * p->in1_multiplier) + ((int64_t)1 << (p->in1_shift - 1))) >> p->in1_shift;
    const int64_t r2 = ((big2 * p->in2_multiplier) + ((int64_t)1 << (p->in2_shift - 1))) >> p->in2_shift;
    return r1 + r2 + 2 <= INT32_MAX;
}

static inline int32_t pqlr_add_one(const pqlr_add_params *p, int32_t x1, int32_t x2)
{
    const int32_t one = (int32_t)1 << p->left_shift;
    const int32_t s = pqlr_requantize((x1 - p->in1_zp) * one, p->in1_multiplier, p->in1_shift) +
                      pqlr_requantize((x2 - p->in2_zp) * one, p->in2_multiplier, p->in2_shift);
    return pqlr_requantize_out(s, p->out_multiplier, p->out_shift, p->out_zp, p->act_min, p->act_max);
}

static inline int32_t pqlr_sub_one(const pqlr_add_params *p, int32_t x1, int32_t x2)
{
    const int32_t one = (int32_t)1 << p->left_shift;
    const int32_t s = pqlr_requantize((x1 - p->in1_zp) * one, p->in1_multiplier, p->in1_shift) -
                      pqlr_requantize((x2 - p->in2_zp) * one, p->in2_multiplier, p->in2_shift);
    return pqlr_requantize_out(s, p->out_multiplier, p->out_shift, p->out_zp, p->act_min, p->act_max);
}

/* mul parameters valid for storage range [lo, hi]; the product of the spans fits int32. */
static inline int pqlr_mul_params_ok(const pqlr_mul_params *p, int32_t lo, int32_t hi)
{
    return pqlr_broadcast_ok(p->size, p->dims, p->in1_strides, p->in2_strides) &&
           pqlr_quant_ok(p->multiplier, p->shift) &&
           pqlr_elem_range_ok(p->in1_zp, p->in2_zp, p->out_zp, p->act_min, p->act_max, lo, hi) &&
           pqlr_elem_span(p->in1_zp, lo, hi) * pqlr_elem_span(p->in2_zp, lo, hi) <= INT32_MAX;
}

static inline int32_t pqlr_mul_one(const pqlr_mul_params *p, int32_t x1, int32_t x2)
{
    return pqlr_requantize_out((x1 - p->in1_zp) * (x2 - p->in2_zp), p->multiplier, p->shift, p->out_zp,
                               p->act_min, p->act_max);
}

/* outer, channels, inner >= 1 with a product below 2^31. */
static inline int pqlr_channel_view_ok(int32_t outer, int32_t channels, int32_t inner)
{
    return outer >= 1 && channels >= 1 && inner >= 1 &&
           (int64_t)outer * channels * inner <= INT32_MAX;
}

/* prelu parameters valid for storage range [lo, hi]; shift_neg[q] in [1, 62] for q < n_neg. */
static inline int pqlr_prelu_params_ok(const pqlr_prelu_params *p, const int8_t *shift_neg,
                                       int32_t lo, int32_t hi)
{
    if (!pqlr_channel_view_ok(p->outer, p->channels, p->inner) ||
        (p->n_neg != 1 && p->n_neg != p->channels) ||
        !pqlr_quant_ok(p->multiplier_pos, p->shift_pos) ||
        !pqlr_elem_range_ok(p->in_zp, p->in_zp, p->out_zp, p->act_min, p->act_max, lo, hi))
        return 0;
    for (int32_t q = 0; q < p->n_neg; q++)
        if (shift_neg[q] < 1 || shift_neg[q] > 62)
            return 0;
    return 1;
}

/* channel_affine parameters valid for storage range [lo, hi]; every channel's accumulator fits int32. */
static inline int pqlr_channel_affine_params_ok(const pqlr_channel_affine_params *p, const int8_t *gamma,
                                                const int32_t *beta, const int32_t *multiplier,
                                                const int8_t *shift, int32_t lo, int32_t hi)
{
    if (!pqlr_channel_view_ok(p->outer, p->channels, p->inner) ||
        !pqlr_elem_range_ok(p->in_zp, p->in_zp, p->out_zp, p->act_min, p->act_max, lo, hi))
        return 0;
    const int64_t span = pqlr_elem_span(p->in_zp, lo, hi);
    for (int32_t c = 0; c < p->channels; c++) {
        const int64_t b = beta[c] < 0 ? -(int64_t)beta[c] : (int64_t)beta[c];
        const int64_t g = gamma[c] < 0 ? -(int64_t)gamma[c] : (int64_t)gamma[c];
        if (!pqlr_quant_ok(multiplier[c], shift[c]) || b + span * g > INT32_MAX)
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ kernels
 * in2 is the second input tensor or the constant operand's array (ops_elem: params "b"). */

pqlr_status pqlr_add_s8(const pqlr_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *output);
pqlr_status pqlr_add_s16(const pqlr_add_params *p, const int16_t *in1, const int16_t *in2,
                         int16_t *output);
pqlr_status pqlr_sub_s8(const pqlr_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *output);
pqlr_status pqlr_sub_s16(const pqlr_add_params *p, const int16_t *in1, const int16_t *in2,
                         int16_t *output);
pqlr_status pqlr_mul_s8(const pqlr_mul_params *p, const int8_t *in1, const int8_t *in2, int8_t *output);
pqlr_status pqlr_mul_s16(const pqlr_mul_params *p, const int16_t *in1, const int16_t *in2,
                         int16_t *output);

/* multiplier_neg int32 / shift_neg int8, n_neg entries each. */
pqlr_status pqlr_prelu_s8(const pqlr_prelu_params *p, const int8_t *input, const int32_t *multiplier_neg,
                          const int8_t *shift_neg, int8_t *output);
pqlr_status pqlr_prelu_s16(const pqlr_prelu_params *p, const int16_t *input, const int32_t *multiplier_neg,
                           const int8_t *shift_neg, int16_t *output);

pqlr_status pqlr_channel_affine_s8(const pqlr_channel_affine_params *p, const int8_t *input,
                                   const int8_t *gamma, const int32_t *beta, const int32_t *multiplier,
                                   const int8_t *shift, int8_t *output);
pqlr_status pqlr_channel_affine_s16(const pqlr_channel_affine_params *p, const int16_t *input,
                                    const int8_t *gamma, const int32_t *beta, const int32_t *multiplier,
                                    const int8_t *shift, int16_t *output);

#endif /* PQLR_ELEM_H */
