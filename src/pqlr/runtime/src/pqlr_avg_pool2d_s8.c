/* pqlr_avg_pool2d_s8.c: reference average pooling of an int8 HWC map (also global average pooling
 * and the mean over tokens); 1 / window is folded into the multiplier, padding counts as in_zp.
 * Oracle: pqlr.ir.ops_pool avg_pool2d and mean. */
#include "pqlr_pool.h"

pqlr_status pqlr_avg_pool2d_s8(const pqlr_avg_pool2d_params *p, const int8_t *input, int8_t *output)
{
    if (!p || !input || !output)
        return PQLR_ERR_ARG;
    if (p->in_h < 1 || p->in_w < 1 || p->channels < 1 || p->out_h < 1 || p->out_w < 1 ||
        p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1 ||
        p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0 ||
        p->in_h + p->pad_top + p->pad_bottom < p->kernel_h ||
        p->in_w + p->pad_left + p->pad_right < p->kernel_w ||
        p->out_h != (p->in_h + p->pad_top + p->pad_bottom - p->kernel_h) / p->stride_h + 1 ||
        p->out_w != (p->in_w + p->pad_left + p->pad_right - p->kernel_w) / p->stride_w + 1 ||
        !pqlr_quant_ok(p->multiplier, p->shift) ||
        p->act_min < INT8_MIN || p->act_min > p->act_max || p->act_max > INT8_MAX)
        return PQLR_ERR_ARG;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            for (int32_t c = 0; c < p->channels; c++) {
                int32_t acc = 0;
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                    if (iy < 0 || iy >= p->in_h)
                        continue;
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                        if (ix < 0 || ix >= p->in_w)
                            continue;
                        acc += (int32_t)input[(iy * p->in_w + ix) * p->channels + c] - p->in_zp;
                    }
                }
                output[(oy * p->out_w + ox) * p->channels + c] = (int8_t)pqlr_requantize_out(
                    acc, p->multiplier, p->shift, p->out_zp, p->act_min, p->act_max);
            }
        }
    }
    return PQLR_OK;
}
