/* pqlr_max_pool2d_s16.c: max pooling of an int16 HWC map with kernel, stride, padding and dilation;
 * padding never wins (PyTorch pads with -inf) and every window must hold an in-bounds tap. Input and
 * output share their quantization, so y = clamp(max, act_min, act_max). Oracle: pqlr.ir.ops_pool
 * max_pool2d. */
#include "pqlr_pool.h"

pqlr_status pqlr_max_pool2d_s16(const pqlr_max_pool2d_params *p, const int16_t *input, int16_t *output)
{
    if (!p || !input || !output)
        return PQLR_ERR_ARG;
    if (!pqlr_pool_map_ok(p->in_h, p->in_w, p->channels, p->out_h, p->out_w) ||
        !pqlr_pool_axis_ok(p->in_h, p->out_h, p->kernel_h, p->stride_h, p->pad_top, p->pad_bottom,
                           p->dilation_h) ||
        !pqlr_pool_axis_ok(p->in_w, p->out_w, p->kernel_w, p->stride_w, p->pad_left, p->pad_right,
                           p->dilation_w) ||
        p->act_min < INT16_MIN || p->act_min > p->act_max || p->act_max > INT16_MAX)
        return PQLR_ERR_ARG;
    for (int32_t oy = 0; oy < p->out_h; oy++)             /* no window lies wholly in the padding */
        if (pqlr_pool_taps(oy, p->in_h, p->kernel_h, p->stride_h, p->pad_top, p->dilation_h) < 1)
            return PQLR_ERR_ARG;
    for (int32_t ox = 0; ox < p->out_w; ox++)
        if (pqlr_pool_taps(ox, p->in_w, p->kernel_w, p->stride_w, p->pad_left, p->dilation_w) < 1)
            return PQLR_ERR_ARG;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            for (int32_t c = 0; c < p->channels; c++) {
                int32_t best = INT16_MIN;                   /* some tap is in bounds: it reaches >= min */
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = oy * p->stride_h - p->pad_top + ky * p->dilation_h;
                    if (iy < 0 || iy >= p->in_h)
                        continue;
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ox * p->stride_w - p->pad_left + kx * p->dilation_w;
                        if (ix < 0 || ix >= p->in_w)
                            continue;
                        const int32_t v = input[(iy * p->in_w + ix) * p->channels + c];
                        best = v > best ? v : best;
                    }
                }
                output[(oy * p->out_w + ox) * p->channels + c] =
                    (int16_t)pqlr_clamp(best, p->act_min, p->act_max);
            }
        }
    }
    return PQLR_OK;
}
