/* pqlr_conv2d_1x1_inplace_s8.c: pointwise (1x1, stride 1, no padding) 2-D convolution, int8 HWC,
 * 8/4/2/1-bit packed weights, that may write its output over its own input (output == input).
 * Oracle: pqlr.ir.ops_nn conv2d (same results as pqlr_conv2d_s8; only the memory differs).
 *
 * Why it is legal: output pixel q depends only on input pixel q. In HWC, input pixel q occupies
 * bytes [q*in_c, (q+1)*in_c) and output pixel q bytes [q*out_c, (q+1)*out_c). One pixel's out_c
 * values are computed into `scratch` (out_c bytes) and then copied to their place:
 *   out_c <= in_c: pixels in increasing order; output q ends at (q+1)*out_c <= (q+1)*in_c, so it
 *                  only covers input pixels <= q, which are already consumed;
 *   out_c >  in_c: pixels in decreasing order; output q starts at q*out_c >= q*in_c, so it only
 *                  covers input pixels >= q, which are already consumed.
 * The shared buffer holds max(in, out) bytes (H*W*max(in_c, out_c)). Disjoint buffers work too;
 * partially overlapping ones (other than output == input) do not.
 * Dilation must be 1 and groups 1 (pqlr_conv2d_plain, tested first); others run out of place.
 * Channel tiles are not supported (ch_begin must be 0 and ch_end out_c): a first part would
 * overwrite input pixels a later part still reads.
 * scratch: pqlr_conv2d_1x1_inplace_s8_get_buffer_size(p) = out_c bytes, caller-owned. */
#include <string.h>

#include "pqlr_nn.h"

PQLR_BODY static pqlr_status conv2d_1x1_inplace(const pqlr_conv2d_params *p, const int8_t *input,
                                                const int8_t *weights, const int32_t *bias,
                                                const int32_t *multiplier, const int8_t *shift,
                                                int8_t *output, int8_t *scratch)
{
    if (!p || !input || !weights || !multiplier || !shift || !output || !scratch)
        return PQLR_ERR_ARG;
    if (!pqlr_conv2d_plain_params_ok(p, 0, INT8_MIN, INT8_MAX) || !pqlr_conv2d_1x1_inplace_ok(p) ||
        !pqlr_quant_arrays_ok(multiplier, shift, p->n_quant, p->ch_begin, p->ch_end))
        return PQLR_ERR_ARG;
    const int32_t row_bytes = pqlr_packed_row_bytes(p->in_c, p->wbits);
    const int32_t pixels = p->in_h * p->in_w;
    const int forward = p->out_c <= p->in_c;
    for (int32_t k = 0; k < pixels; k++) {
        const int32_t q = forward ? k : pixels - 1 - k;          /* pixel index */
        const int8_t *x = input + q * p->in_c;
        for (int32_t c = 0; c < p->out_c; c++) {
            const int32_t acc = (bias ? bias[c] : 0) +
                                pqlr_dot_s8(x, p->in_zp, weights + c * row_bytes, 0, p->in_c, p->wbits);
            const int32_t qi = p->n_quant == 1 ? 0 : c;
            scratch[c] = (int8_t)pqlr_requantize_out(acc, multiplier[qi], shift[qi], p->out_zp,
                                                     p->act_min, p->act_max);
        }
        memcpy(output + q * p->out_c, scratch, (size_t)p->out_c);   /* input pixel q is consumed */
    }
    return PQLR_OK;
}

/* Plain layers only (pqlr_conv2d_plain); a dilated or grouped layer is refused before anything is
 * written. conv2d_1x1_inplace is the function as it was before dilation and groups existed (PQLR_BODY). */
pqlr_status pqlr_conv2d_1x1_inplace_s8(const pqlr_conv2d_params *p, const int8_t *input,
                                       const int8_t *weights, const int32_t *bias,
                                       const int32_t *multiplier, const int8_t *shift,
                                       int8_t *output, int8_t *scratch)
{
    if (p && !pqlr_conv2d_plain(p, 0))
        return PQLR_ERR_ARG;
    return conv2d_1x1_inplace(p, input, weights, bias, multiplier, shift, output, scratch);
}
