/* pqlr_adaptive_max_pool2d_s16.c: adaptive max pooling of an int16 HWC map to out_h x out_w: output
 * (oy, ox) is the max over rows [floor(oy * in_h / out_h), ceil((oy + 1) * in_h / out_h)) and the
 * columns likewise (PyTorch AdaptiveMaxPool2d), clamped to [act_min, act_max]; input and output share
 * their quantization. Oracle: pqlr.ir.ops_pool adaptive_max_pool2d. */
#include "pqlr_pool.h"

pqlr_status pqlr_adaptive_max_pool2d_s16(const pqlr_adaptive_max_pool2d_params *p, const int16_t *input,
                                         int16_t *output)
{
    if (!p || !input || !output)
        return PQLR_ERR_ARG;
    if (!pqlr_pool_map_ok(p->in_h, p->in_w, p->channels, p->out_h, p->out_w) ||
        !pqlr_adaptive_ok(p->in_h, p->out_h) || !pqlr_adaptive_ok(p->in_w, p->out_w) ||
        p->act_min < INT16_MIN || p->act_min > p->act_max || p->act_max > INT16_MAX)
        return PQLR_ERR_ARG;
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int32_t y0 = pqlr_adaptive_start(oy, p->in_h, p->out_h);
        const int32_t y1 = pqlr_adaptive_end(oy, p->in_h, p->out_h);
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            const int32_t x0 = pqlr_adaptive_start(ox, p->in_w, p->out_w);
            const int32_t x1 = pqlr_adaptive_end(ox, p->in_w, p->out_w);
            for (int32_t c = 0; c < p->channels; c++) {
                int32_t best = INT16_MIN;                   /* every window is non-empty */
                for (int32_t iy = y0; iy < y1; iy++)
                    for (int32_t ix = x0; ix < x1; ix++) {
                        const int32_t v = input[(iy * p->in_w + ix) * p->channels + c];
                        best = v > best ? v : best;
                    }
                output[(oy * p->out_w + ox) * p->channels + c] =
                    (int16_t)pqlr_clamp(best, p->act_min, p->act_max);
            }
        }
    }
    return PQLR_OK;
}
