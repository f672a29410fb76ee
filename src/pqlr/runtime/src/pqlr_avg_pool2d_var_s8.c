/* pqlr_avg_pool2d_var_s8.c: average pooling of an int8 HWC map whose divisor is each window's number
 * of in-bounds taps (PyTorch count_include_pad=False): a window with r in-bounds rows and c in-bounds
 * columns uses the count-table entry of r * c (pqlr_pool.h). Oracle: pqlr.ir.ops_pool avg_pool2d
 * with params counts / multiplier / shift. */
#include "pqlr_pool.h"

pqlr_status pqlr_avg_pool2d_var_s8(const pqlr_avg_pool2d_var_params *p, const int8_t *input,
                                   const int32_t *counts, const int32_t *multiplier,
                                   const int8_t *shift, int8_t *output)
{
    if (!p || !input || !counts || !multiplier || !shift || !output)
        return PQLR_ERR_ARG;
    if (!pqlr_pool_map_ok(p->in_h, p->in_w, p->channels, p->out_h, p->out_w) ||
        !pqlr_pool_axis_ok(p->in_h, p->out_h, p->kernel_h, p->stride_h, p->pad_top, p->pad_bottom, 1) ||
        !pqlr_pool_axis_ok(p->in_w, p->out_w, p->kernel_w, p->stride_w, p->pad_left, p->pad_right, 1) ||
        !pqlr_count_table_ok(counts, multiplier, shift, p->n_counts, p->in_zp, INT8_MIN, INT8_MAX) ||
        p->act_min < INT8_MIN || p->act_min > p->act_max || p->act_max > INT8_MAX)
        return PQLR_ERR_ARG;
    for (int32_t oy = 0; oy < p->out_h; oy++) {          /* every window's count is in the table */
        const int32_t rows = pqlr_pool_taps(oy, p->in_h, p->kernel_h, p->stride_h, p->pad_top, 1);
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            const int32_t cols = pqlr_pool_taps(ox, p->in_w, p->kernel_w, p->stride_w, p->pad_left, 1);
            if (pqlr_count_index(counts, p->n_counts, rows * cols) < 0)
                return PQLR_ERR_ARG;
        }
    }
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        const int32_t ky0 = iy0 < 0 ? -iy0 : 0;
        const int32_t ky1 = p->in_h - iy0 < p->kernel_h ? p->in_h - iy0 : p->kernel_h;
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
            const int32_t kx1 = p->in_w - ix0 < p->kernel_w ? p->in_w - ix0 : p->kernel_w;
            const int32_t k = pqlr_count_index(counts, p->n_counts, (ky1 - ky0) * (kx1 - kx0));
            for (int32_t c = 0; c < p->channels; c++) {
                int32_t acc = 0;
                for (int32_t ky = ky0; ky < ky1; ky++)
                    for (int32_t kx = kx0; kx < kx1; kx++)
                        acc += (int32_t)input[((iy0 + ky) * p->in_w + ix0 + kx) * p->channels + c] - p->in_zp;
                output[(oy * p->out_w + ox) * p->channels + c] = (int8_t)pqlr_requantize_out(
                    acc, multiplier[k], shift[k], p->out_zp, p->act_min, p->act_max);
            }
        }
    }
    return PQLR_OK;
}
