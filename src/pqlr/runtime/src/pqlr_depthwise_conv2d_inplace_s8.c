/* pqlr_depthwise_conv2d_inplace_s8.c: depthwise 2-D convolution (channel multiplier 1), stride 1,
 * "same" size (out_h == in_h, out_w == in_w: pad_top + pad_bottom = kernel_h - 1, likewise the
 * width; e.g. 3x3 pad 1), int8 HWC, 8/4/2/1-bit packed weights, that may write its output over its
 * own input (output == input). Oracle: pqlr.ir.ops_nn depthwise_conv2d (same results as
 * pqlr_depthwise_conv2d_s8; only the memory differs).
 *
 * Why it is legal: output row r reads input rows r - pad_top .. r + pad_bottom and is written over
 * input row r. Rows are done in increasing order; before row r is computed, input row r is copied
 * into a ring of R = pad_top + 1 line buffers (slot r % R). Rows below r are then read from the
 * ring (the last R saved rows are exactly r - pad_top .. r), rows above r from the buffer (not yet
 * overwritten). 3x3 pad 1: 2 rows of in_w * channels bytes.
 * Dilation must be 1 (pqlr_conv2d_plain, tested first); a dilated layer runs out of place.
 * Channels are independent, so channel tiles [ch_begin, ch_end) work in place too (each call saves
 * and rewrites only its channels; `weights` points at row ch_begin as in pqlr_depthwise_conv2d_s8).
 * scratch: pqlr_depthwise_conv2d_inplace_s8_get_buffer_size(p) = (pad_top + 1) * in_w * in_c
 * bytes, caller-owned (a tile uses (pad_top + 1) * in_w * (ch_end - ch_begin) of them). */
#include "pqlr_nn.h"

PQLR_BODY static pqlr_status depthwise_inplace(const pqlr_conv2d_params *p, const int8_t *input,
                                               const int8_t *weights, const int32_t *bias,
                                               const int32_t *multiplier, const int8_t *shift,
                                               int8_t *output, int8_t *scratch)
{
    if (!p || !input || !weights || !multiplier || !shift || !output || !scratch)
        return PQLR_ERR_ARG;
    if (!pqlr_conv2d_plain_params_ok(p, 1, INT8_MIN, INT8_MAX) || !pqlr_depthwise_conv2d_inplace_ok(p) ||
        !pqlr_quant_arrays_ok(multiplier, shift, p->n_quant, p->ch_begin, p->ch_end))
        return PQLR_ERR_ARG;
    const int32_t row_bytes = pqlr_packed_row_bytes(p->kernel_h * p->kernel_w, p->wbits);
    const int32_t n_ch = p->ch_end - p->ch_begin;
    const int32_t ring = p->pad_top + 1;                       /* saved input rows */
    const int32_t line = p->in_w * n_ch;                        /* bytes of one saved row */
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        int8_t *save = scratch + (oy % ring) * line;            /* input row oy, channels b..e */
        for (int32_t x = 0; x < p->in_w; x++)
            for (int32_t c = 0; c < n_ch; c++)
                save[x * n_ch + c] = input[(oy * p->in_w + x) * p->in_c + p->ch_begin + c];
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            for (int32_t c = p->ch_begin; c < p->ch_end; c++) {
                const int8_t *row = weights + (c - p->ch_begin) * row_bytes;
                int32_t acc = bias ? bias[c] : 0;
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    const int32_t iy = oy - p->pad_top + ky;
                    if (iy < 0 || iy >= p->in_h)
                        continue;                               /* padding: x - in_zp = 0 */
                    for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                        const int32_t ix = ox - p->pad_left + kx;
                        if (ix < 0 || ix >= p->in_w)
                            continue;
                        const int32_t x = iy <= oy                /* rows <= oy: from the ring */
                            ? scratch[(iy % ring) * line + ix * n_ch + (c - p->ch_begin)]
                            : input[(iy * p->in_w + ix) * p->in_c + c];
                        acc += (x - p->in_zp) * pqlr_weight_get(row, ky * p->kernel_w + kx, p->wbits);
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

/* Plain layers only (pqlr_conv2d_plain); a dilated layer is refused before anything is
 * written. depthwise_inplace is the function as it was before dilation and groups existed (PQLR_BODY). */
pqlr_status pqlr_depthwise_conv2d_inplace_s8(const pqlr_conv2d_params *p, const int8_t *input,
                                             const int8_t *weights, const int32_t *bias,
                                             const int32_t *multiplier, const int8_t *shift,
                                             int8_t *output, int8_t *scratch)
{
    if (p && !pqlr_conv2d_plain(p, 1))
        return PQLR_ERR_ARG;
    return depthwise_inplace(p, input, weights, bias, multiplier, shift, output, scratch);
}
