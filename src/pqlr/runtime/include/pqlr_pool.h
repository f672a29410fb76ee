/* pqlr_pool.h: pooling kernels (average pooling / mean) for int8 ("s8") and int16 ("s16")
 * activations. Oracle: src/pqlr/ir/ops_pool.py; every kernel here is bit-exact to it.
 * Conventions (requantization, clamps, status codes) as in pqlr_nn.h. */
#ifndef PQLR_POOL_H
#define PQLR_POOL_H

#include "pqlr_nn.h"

/* average pooling: acc = sum over the window of (x - in_zp), padding counting as in_zp (adds 0;
 * PyTorch count_include_pad=True), y = pqlr_requantize_out(acc, multiplier, shift, ...) with the
 * 1 / (kernel_h * kernel_w) folded into the multiplier. Global average pooling and the mean over
 * tokens (T, C) -> (C,) are the case kernel = (in_h, in_w), out = 1 x 1 (tokens: in_h = T, in_w = 1). */
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

pqlr_status pqlr_avg_pool2d_s8(const pqlr_avg_pool2d_params *p, const int8_t *input, int8_t *output);
pqlr_status pqlr_avg_pool2d_s16(const pqlr_avg_pool2d_params *p, const int16_t *input, int16_t *output);

#endif /* PQLR_POOL_H */
