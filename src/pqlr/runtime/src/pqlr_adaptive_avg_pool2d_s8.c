/* pqlr_adaptive_avg_pool2d_s8.c: adaptive average pooling of an int8 HWC map to out_h x out_w:
 * output (oy, ox) averages rows [floor(oy * in_h / out_h), ceil((oy + 1) * in_h / out_h)) and the
 * columns likewise (PyTorch AdaptiveAvgPool2d); a window of count = rows * columns elements uses the
 * count-table entry of that count (pqlr_pool.h). Oracle: pqlr.ir.ops_pool adaptive_avg_pool2d. */
#include "pqlr_pool.h"

pqlr_status pqlr_adaptive_avg_pool2d_s8(const pqlr_adaptive_avg_pool2d_params *p, const int8_t *input,
                                        const int32_t *counts, const int32_t *multiplier,
                                        const int8_t *shift, int8_t *output)
{
    if (!p || !input || !counts || !multiplier || !shift || !output)
        return PQLR_ERR_ARG;
    if (!pqlr_pool_map_ok(p->in_h, p->in_w, p->channels, p->out_h, p->out_w) ||
        !pqlr_adaptive_ok(p->in_h, p->out_h) || !pqlr_adaptive_ok(p->in_w, p->out_w) ||
        !pqlr_count_table_ok(counts, multiplier, shift, p->n_counts, p->in_zp, INT8_MIN, INT8_MAX) ||
        p->act_min < INT8_MIN || p->act_min > p->act_max || p->act_max > INT8_MAX)
        return PQLR_ERR_ARG;
    for (int32_t oy = 0; oy < p->out_h; oy++) {          /* every window's count is in the table */
        const int32_t rows = pqlr_adaptive_size(oy, p->in_h, p->out_h);
        for (int32_t ox = 0; ox < p->out_w; ox++)
            if (pqlr_count_index(counts, p->n_counts, rows * pqlr_adaptive_size(ox, p->in_w, p->out_w)) < 0)
                return PQLR_ERR_ARG;
    }
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int32_t y0 = pqlr_adaptive_start(oy, p->in_h, p->out_h);
        const int32_t y1 = pqlr_adaptive_end(oy, p->in_h, p->out_h);
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            const int32_t x0 = pqlr_adaptive_start(ox, p->in_w, p->out_w);
            const int32_t x1 = pqlr_adaptive_end(ox, p->in_w, p->out_w);
            const int32_t k = pqlr_count_index(counts, p->n_counts, (y1 - y0) * (x1 - x0));
            for (int32_t c = 0; c < p->channels; c++) {
                int32_t acc = 0;
                for (int32_t iy = y0; iy < y1; iy++)
                    for (int32_t ix = x0; ix < x1; ix++)
                        acc += (int32_t)input[(iy * p->in_w + ix) * p->channels + c] - p->in_zp;
                output[(oy * p->out_w + ox) * p->channels + c] = (int8_t)pqlr_requantize_out(
                    acc, multiplier[k], shift[k], p->out_zp, p->act_min, p->act_max);
            }
        }
    }
    return PQLR_OK;
}
