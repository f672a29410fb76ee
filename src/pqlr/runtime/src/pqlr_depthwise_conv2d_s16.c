/* pqlr_depthwise_conv2d_s16.c: reference depthwise 2-D convolution (channel multiplier 1), int16 HWC
 * activations, 8/4/2/1-bit packed weights (row c = the kernel_h * kernel_w taps of channel c), with
 * stride, padding and dilation. Oracle: pqlr.ir.ops_nn depthwise_conv2d. Plain loops, not
 * performant by design.
 *
 * pqlr_depthwise_conv2d_s16 dispatches: dilation 1 (pqlr_conv2d_plain) runs depthwise_plain, the
 * function as it was before dilation existed, word for word and out of line (PQLR_BODY), so it
 * retires the same instructions as before plus the dispatch test; a dilated layer runs
 * depthwise_general. */
#include "pqlr_nn.h"

PQLR_BODY static pqlr_status depthwise_plain(const pqlr_conv2d_params *p, const int16_t *input,
                                             const int8_t *weights, const int32_t *bias,
                                             const int32_t *multiplier, const int8_t *shift, int16_t *output)
{
    if (!p || !input || !weights || !multiplier || !shift || !output)
        return PQLR_ERR_ARG;
    if (!pqlr_conv2d_plain_params_ok(p, 1, INT16_MIN, INT16_MAX) ||
        !pqlr_quant_arrays_ok(multiplier, shift, p->n_quant, p->ch_begin, p->ch_end))
        return PQLR_ERR_ARG;
    const int32_t row_bytes = pqlr_packed_row_bytes(p->kernel_h * p->kernel_w, p->wbits);
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            for (int32_t c = p->ch_begin; c < p->ch_end; c++) {
                const int8_t *row = weights + (c - p->ch_begin) * row_bytes;
                int32_t acc = bias ? bias[c] : 0;
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                    if (iy < 0 || iy >= p->in_h)
                        continue;                               /* padding: x - in_zp = 0 */
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                        if (ix < 0 || ix >= p->in_w)
                            continue;
                        const int32_t x = input[(iy * p->in_w + ix) * p->in_c + c];
                        acc += (x - p->in_zp) * pqlr_weight_get(row, ky * p->kernel_w + kx, p->wbits);
                    }
                }
                const int32_t q = p->n_quant == 1 ? 0 : c;
                output[(oy * p->out_w + ox) * p->out_c + c] = (int16_t)pqlr_requantize_out(
                    acc, multiplier[q], shift[q], p->out_zp, p->act_min, p->act_max);
            }
        }
    }
    return PQLR_OK;
}

/* Dilation: tap (ky, kx) of output (oy, ox) reads input pixel
 * (oy * stride_h - pad_top + ky * dilation_h, ox * stride_w - pad_left + kx * dilation_w). */
PQLR_NOINLINE static pqlr_status depthwise_general(const pqlr_conv2d_params *p, const int16_t *input,
                                                   const int8_t *weights, const int32_t *bias,
                                                   const int32_t *multiplier, const int8_t *shift,
                                                   int16_t *output)
{
    if (!input || !weights || !multiplier || !shift || !output)
        return PQLR_ERR_ARG;
    if (!pqlr_conv2d_params_ok(p, 1, INT16_MIN, INT16_MAX) ||
        !pqlr_quant_arrays_ok(multiplier, shift, p->n_quant, p->ch_begin, p->ch_end))
        return PQLR_ERR_ARG;
    const int32_t row_bytes = pqlr_packed_row_bytes(p->kernel_h * p->kernel_w, p->wbits);
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            for (int32_t c = p->ch_begin; c < p->ch_end; c++) {
                const int8_t *row = weights + (c - p->ch_begin) * row_bytes;
                int32_t acc = bias ? bias[c] : 0;
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                    if (iy < 0 || iy >= p->in_h)
                        continue;                               /* padding: x - in_zp = 0 */
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                        if (ix < 0 || ix >= p->in_w)
                            continue;
                        const int32_t x = input[(iy * p->in_w + ix) * p->in_c + c];
                        acc += (x - p->in_zp) * pqlr_weight_get(row, ky * p->kernel_w + kx, p->wbits);
                    }
                }
                const int32_t q = p->n_quant == 1 ? 0 : c;
                output[(oy * p->out_w + ox) * p->out_c + c] = (int16_t)pqlr_requantize_out(
                    acc, multiplier[q], shift[q], p->out_zp, p->act_min, p->act_max);
            }
        }
    }
    return PQLR_OK;
}

pqlr_status pqlr_depthwise_conv2d_s16(const pqlr_conv2d_params *p, const int16_t *input,
                                      const int8_t *weights, const int32_t *bias,
                                      const int32_t *multiplier, const int8_t *shift, int16_t *output)
{
    if (p && !pqlr_conv2d_plain(p, 1))
        return depthwise_general(p, input, weights, bias, multiplier, shift, output);
    return depthwise_plain(p, input, weights, bias, multiplier, shift, output);
}
