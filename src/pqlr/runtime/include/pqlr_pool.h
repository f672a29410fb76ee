/* pqlr_pool.h: pooling kernels (average, max, adaptive average / max, mean over any axes) for int8
 * ("s8") and int16 ("s16") activations. Oracle: src/pqlr/ir/ops_pool.py; every kernel here is
 * bit-exact to it. Conventions (requantization, clamps, status codes) as in pqlr_nn.h.
 *
 * Layouts (no batch dimension): feature maps HWC; a 1-D map (H, C) is the case in_w = 1.
 * Window geometry along one axis (H shown; W likewise), output row oy:
 *   kernel / stride / padding   taps iy = oy * stride_h - pad_top + ky * dilation_h, ky < kernel_h;
 *                               out_h = (in_h + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1)
 *                                       / stride_h + 1     (floor: PyTorch ceil_mode=False only)
 *   adaptive                    rows [floor(oy * in_h / out_h), ceil((oy + 1) * in_h / out_h))
 *                               (PyTorch AdaptiveAvgPool / AdaptiveMaxPool; needs
 *                               (in_h + 1) * out_h < 2^31, so the bounds are int32 arithmetic)
 * Averages: acc = sum over the window's in-bounds taps of (x - in_zp) (int32), then
 *   y = pqlr_requantize_out(acc, multiplier, shift, out_zp, act_min, act_max)
 * with 1 / count folded into the multiplier. When the count differs between windows, a count table
 * (counts[k], multiplier[k], shift[k], k < n_counts; counts >= 1, distinct on the Python side,
 * else the first match wins) gives each window the entry whose count equals its number of
 * in-bounds taps; every window's count must be in the table and count * max|x - in_zp| < 2^31 for
 * every entry (no int32 overflow), checked before any write.
 * Max pooling: y = clamp(max over the in-bounds taps, act_min, act_max); padding never wins (PyTorch
 * pads with -inf) and every window must hold at least one in-bounds tap. Input and output share
 * their quantization (the max commutes with it), so there is no requantization.
 * All kernels return PQLR_ERR_ARG on a NULL pointer or an impossible shape / parameter (checked
 * before anything is written), PQLR_OK otherwise. */
#ifndef PQLR_POOL_H
#define PQLR_POOL_H

#include "pqlr_nn.h"

/* ------------------------------------------------------------------ parameter structs
 * Every field is int32_t (or int32_t[4]), in the order of ops_pool.STRUCT_FIELDS (a test checks). */

/* average pooling with one window size: acc = sum over the window of (x - in_zp), padding counting
 * as in_zp (adds 0; PyTorch count_include_pad=True), y = pqlr_requantize_out(acc, multiplier, shift,
 * ...) with the 1 / (kernel_h * kernel_w) folded into the multiplier (or 1 / count when every window
 * has the same number of in-bounds taps). Global average pooling and the mean over leading axes
 * are the case kernel = (in_h, in_w), out = 1 x 1 (tokens (T, C): in_h = T, in_w = 1). */
typedef struct {
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left, pad_bottom, pad_right;
    int32_t in_zp, out_zp;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} pqlr_avg_pool2d_params;

/* average pooling whose divisor varies by window (PyTorch count_include_pad=False): a window with
 * r in-bounds rows and c in-bounds columns divides by r * c, through the count table. */
typedef struct {
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left, pad_bottom, pad_right;
    int32_t in_zp, out_zp;
    int32_t n_counts;
    int32_t act_min, act_max;
} pqlr_avg_pool2d_var_params;

/* adaptive average pooling to out_h x out_w windows (count = window rows * columns, count table) */
typedef struct {
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t in_zp, out_zp;
    int32_t n_counts;
    int32_t act_min, act_max;
} pqlr_adaptive_avg_pool2d_params;

/* max pooling with kernel, stride, padding and dilation */
typedef struct {
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left, pad_bottom, pad_right;
    int32_t dilation_h, dilation_w;
    int32_t act_min, act_max;
} pqlr_max_pool2d_params;

/* adaptive max pooling to out_h x out_w windows */
typedef struct {
    int32_t in_h, in_w, channels;
    int32_t out_h, out_w;
    int32_t act_min, act_max;
} pqlr_adaptive_max_pool2d_params;

/* mean over any axes of a tensor of rank <= 4, normalised to dims[4] (leading 1s; row-major) with
 * reduce[a] = 1 for a reduced axis, 0 for a kept one. The output holds the kept axes in order
 * (row-major); each value is y = pqlr_requantize_out(sum over the reduced axes of (x - in_zp), ...)
 * with 1 / (product of the reduced dims) folded into the multiplier. */
typedef struct {
    int32_t dims[4];
    int32_t reduce[4];
    int32_t in_zp, out_zp;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} pqlr_mean_params;

/* ------------------------------------------------------------------ shared checks and geometry */

/* Plain HWC map geometry: positive sizes, in_h * in_w * channels and out_h * out_w * channels
 * inside int32 (so every index computed in int32 is exact). */
static inline int pqlr_pool_map_ok(int32_t in_h, int32_t in_w, int32_t channels, int32_t out_h,
                                   int32_t out_w)
{
    if (in_h < 1 || in_w < 1 || channels < 1 || out_h < 1 || out_w < 1)
        return 0;
    return (int64_t)in_h * in_w * channels <= INT32_MAX && (int64_t)out_h * out_w * channels <= INT32_MAX;
}

/* One axis of a kernel / stride / padding / dilation window: positive kernel, stride, dilation,
 * padding >= 0 and out = (size + pads - dilation * (kernel - 1) - 1) / stride + 1 (all in 64 bits). */
static inline int pqlr_pool_axis_ok(int32_t size, int32_t out, int32_t kernel, int32_t stride,
                                    int32_t pad_before, int32_t pad_after, int32_t dilation)
{
    if (kernel < 1 || stride < 1 || dilation < 1 || pad_before < 0 || pad_after < 0)
        return 0;
    const int64_t padded = (int64_t)size + pad_before + pad_after;
    const int64_t extent = (int64_t)dilation * (kernel - 1) + 1;
    if (padded > INT32_MAX || extent > padded)
        return 0;
    return out == (int32_t)(padded - extent) / stride + 1;      /* 32-bit division: no libgcc call */
}

/* In-bounds taps of output position o along one axis: o * stride - pad + k * dilation in [0, size). */
static inline int32_t pqlr_pool_taps(int32_t o, int32_t size, int32_t kernel, int32_t stride,
                                     int32_t pad_before, int32_t dilation)
{
    int32_t n = 0;
    for (int32_t k = 0; k < kernel; k++) {
        const int32_t i = o * stride - pad_before + k * dilation;
        n += i >= 0 && i < size;
    }
    return n;
}

/* An adaptive axis of `size` into `out` windows whose bounds below fit int32: (size + 1) * out < 2^31. */
static inline int pqlr_adaptive_ok(int32_t size, int32_t out)
{
    return size >= 1 && out >= 1 && ((int64_t)size + 1) * out <= INT32_MAX;
}

/* Adaptive window [start, end) of output o < out along an axis of `size` (pqlr_adaptive_ok). */
static inline int32_t pqlr_adaptive_start(int32_t o, int32_t size, int32_t out)
{
    return o * size / out;
}

static inline int32_t pqlr_adaptive_end(int32_t o, int32_t size, int32_t out)
{
    return ((o + 1) * size + out - 1) / out;
}

static inline int32_t pqlr_adaptive_size(int32_t o, int32_t size, int32_t out)
{
    return pqlr_adaptive_end(o, size, out) - pqlr_adaptive_start(o, size, out);
}

/* zp inside [lo, hi] and a sum of `count` values (x - zp), x in [lo, hi], fits int32. */
static inline int pqlr_pool_sum_ok(int64_t count, int32_t zp, int32_t lo, int32_t hi)
{
    const int64_t span = (int64_t)hi - zp > (int64_t)zp - lo ? (int64_t)hi - zp : (int64_t)zp - lo;
    return lo <= zp && zp <= hi && count >= 1 && count * span <= INT32_MAX;
}

/* The count table: n >= 1 entries, each count >= 1 with a sum that fits int32, each multiplier /
 * shift valid. */
static inline int pqlr_count_table_ok(const int32_t *counts, const int32_t *multiplier,
                                      const int8_t *shift, int32_t n, int32_t zp, int32_t lo,
                                      int32_t hi)
{
    if (n < 1)
        return 0;
    for (int32_t k = 0; k < n; k++)
        if (!pqlr_pool_sum_ok(counts[k], zp, lo, hi) || !pqlr_quant_ok(multiplier[k], shift[k]))
            return 0;
    return 1;
}

/* The table entry of `count`, or -1 when it has none. */
static inline int32_t pqlr_count_index(const int32_t *counts, int32_t n, int32_t count)
{
    for (int32_t k = 0; k < n; k++)
        if (counts[k] == count)
            return k;
    return -1;
}

/* ------------------------------------------------------------------ kernels */

pqlr_status pqlr_avg_pool2d_s8(const pqlr_avg_pool2d_params *p, const int8_t *input, int8_t *output);
pqlr_status pqlr_avg_pool2d_s16(const pqlr_avg_pool2d_params *p, const int16_t *input, int16_t *output);

pqlr_status pqlr_avg_pool2d_var_s8(const pqlr_avg_pool2d_var_params *p, const int8_t *input,
                                   const int32_t *counts, const int32_t *multiplier,
                                   const int8_t *shift, int8_t *output);
pqlr_status pqlr_avg_pool2d_var_s16(const pqlr_avg_pool2d_var_params *p, const int16_t *input,
                                    const int32_t *counts, const int32_t *multiplier,
                                    const int8_t *shift, int16_t *output);

pqlr_status pqlr_adaptive_avg_pool2d_s8(const pqlr_adaptive_avg_pool2d_params *p, const int8_t *input,
                                        const int32_t *counts, const int32_t *multiplier,
                                        const int8_t *shift, int8_t *output);
pqlr_status pqlr_adaptive_avg_pool2d_s16(const pqlr_adaptive_avg_pool2d_params *p, const int16_t *input,
                                         const int32_t *counts, const int32_t *multiplier,
                                         const int8_t *shift, int16_t *output);

pqlr_status pqlr_max_pool2d_s8(const pqlr_max_pool2d_params *p, const int8_t *input, int8_t *output);
pqlr_status pqlr_max_pool2d_s16(const pqlr_max_pool2d_params *p, const int16_t *input, int16_t *output);

pqlr_status pqlr_adaptive_max_pool2d_s8(const pqlr_adaptive_max_pool2d_params *p, const int8_t *input,
                                        int8_t *output);
pqlr_status pqlr_adaptive_max_pool2d_s16(const pqlr_adaptive_max_pool2d_params *p, const int16_t *input,
                                         int16_t *output);

pqlr_status pqlr_mean_s8(const pqlr_mean_params *p, const int8_t *input, int8_t *output);
pqlr_status pqlr_mean_s16(const pqlr_mean_params *p, const int16_t *input, int16_t *output);

#endif /* PQLR_POOL_H */
