/* pqlr_conv2d_s8.c: reference 2-D convolution, int8 HWC activations, 8/4/2/1-bit packed weights,
 * with stride, padding, dilation and groups (PyTorch's conv2d). Oracle: pqlr.ir.ops_nn conv2d.
 * Plain loops, not performant by design.
 *
 * pqlr_conv2d_s8 dispatches: a plain layer (dilation 1, groups 1: pqlr_conv2d_plain) runs
 * conv2d_plain, the function as it was before dilation and groups existed, word for word and
 * out of line (PQLR_BODY), so it retires the same instructions as before plus the dispatch test
 * (the rv32imac counts per MAC stay as reported); any other layer runs conv2d_general. */
#include "pqlr_nn.h"

PQLR_BODY static pqlr_status conv2d_plain(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *weights,
                                          const int32_t *bias, const int32_t *multiplier, const int8_t *shift,
                                          int8_t *output)
{
    if (!p || !input || !weights || !multiplier || !shift || !output)
        return PQLR_ERR_ARG;
    if (!pqlr_conv2d_plain_params_ok(p, 0, INT8_MIN, INT8_MAX) ||
        !pqlr_quant_arrays_ok(multiplier, shift, p->n_quant, p->ch_begin, p->ch_end))
        return PQLR_ERR_ARG;
    const int32_t k = p->kernel_h * p->kernel_w * p->in_c;      /* weights per row */
    const int32_t row_bytes = pqlr_packed_row_bytes(k, p->wbits);
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
                        const int8_t *x = input + (iy * p->in_w + ix) * p->in_c;
                        const int32_t w0 = (ky * p->kernel_w + kx) * p->in_c;
                        acc += pqlr_dot_s8(x, p->in_zp, row, w0, p->in_c, p->wbits);
                    }
                }
                const int32_t q = p->n_quant == 1 ? 0 : c;
                output[(oy * p->out_w + ox) * p->out_c + c] = (int8_t)pqlr_requantize_out(
                    acc, multiplier[q], shift[q], p->out_zp, p->act_min, p->act_max);
            }
        }
    }
    return PQLR_OK;
}

/* Dilation and groups: tap (ky, kx) of output (oy, ox) reads input pixel
 * (oy * stride_h - pad_top + ky * dilation_h, ox * stride_w - pad_left + kx * dilation_w);
 * output channel c (group g = c / (out_c / groups)) reads the cg = in_c / groups input channels
 * from g * cg, against the cg weights of its row at (ky * kernel_w + kx) * cg. */
PQLR_NOINLINE static pqlr_status conv2d_general(const pqlr_conv2d_params *p, const int8_t *input,
                                                const int8_t *weights, const int32_t *bias,
                                                const int32_t *multiplier, const int8_t *shift,
                                                int8_t *output)
{
    if (!input || !weights || !multiplier || !shift || !output)
        return PQLR_ERR_ARG;
    if (!pqlr_conv2d_params_ok(p, 0, INT8_MIN, INT8_MAX) ||
        !pqlr_quant_arrays_ok(multiplier, shift, p->n_quant, p->ch_begin, p->ch_end))
        return PQLR_ERR_ARG;
    const int32_t cg = p->in_c / p->groups, per_group = p->out_c / p->groups;
    const int32_t row_bytes = pqlr_packed_row_bytes(p->kernel_h * p->kernel_w * cg, p->wbits);
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            for (int32_t c = p->ch_begin; c < p->ch_end; c++) {
                const int8_t *row = weights + (c - p->ch_begin) * row_bytes;
                const int32_t ci0 = (c / per_group) * cg;        /* first input channel of c's group */
                int32_t acc = bias ? bias[c] : 0;
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                    if (iy < 0 || iy >= p->in_h)
                        continue;                               /* padding: x - in_zp = 0 */
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                        if (ix < 0 || ix >= p->in_w)
                            continue;
                        const int8_t *x = input + (iy * p->in_w + ix) * p->in_c + ci0;
                        acc += pqlr_dot_s8(x, p->in_zp, row, (ky * p->kernel_w + kx) * cg, cg, p->wbits);
                    }
                }
                const int32_t q = p->n_quant == 1 ? 0 : c;
                output[(oy * p->out_w + ox) * p->out_c + c] = (int8_t)pqlr_requantize_out(
                    acc, multiplier[q], shift[q], p->out_zp, p->act_min, p->act_max);
            }
        }
    }
    return PQLR_OK;
}

pqlr_status pqlr_conv2d_s8(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *weights,
                           const int32_t *bias, const int32_t *multiplier, const int8_t *shift,
                           int8_t *output)
{
    if (p && !pqlr_conv2d_plain(p, 0))
        return conv2d_general(p, input, weights, bias, multiplier, shift, output);
    return conv2d_plain(p, input, weights, bias, multiplier, shift, output);
}
