/* pqlr_fully_connected_s8.c: reference fully connected layer applied to each of `rows` int8 rows
 * (tokens): (rows, in_features) -> (rows, out_features), 8/4/2/1-bit packed weights; an input of
 * any rank (..., in_features) has rows = the product of its other dimensions.
 * Oracle: pqlr.ir.ops_nn fully_connected. Plain loops, not performant by design. */
#include "pqlr_nn.h"

pqlr_status pqlr_fully_connected_s8(const pqlr_fully_connected_params *p, const int8_t *input,
                                    const int8_t *weights, const int32_t *bias,
                                    const int32_t *multiplier, const int8_t *shift, int8_t *output)
{
    if (!p || !input || !weights || !multiplier || !shift || !output)
        return PQLR_ERR_ARG;
    if (p->rows < 1 || p->in_features < 1 || p->out_features < 1 || !pqlr_wbits_ok(p->wbits) ||
        (p->n_quant != 1 && p->n_quant != p->out_features) ||
        p->ch_begin < 0 || p->ch_begin >= p->ch_end || p->ch_end > p->out_features ||
        p->act_min < INT8_MIN || p->act_min > p->act_max || p->act_max > INT8_MAX ||
        !pqlr_quant_arrays_ok(multiplier, shift, p->n_quant, p->ch_begin, p->ch_end))
        return PQLR_ERR_ARG;
    const int32_t row_bytes = pqlr_packed_row_bytes(p->in_features, p->wbits);
    for (int32_t t = 0; t < p->rows; t++) {
        const int8_t *x = input + t * p->in_features;
        for (int32_t c = p->ch_begin; c < p->ch_end; c++) {
            const int8_t *row = weights + (c - p->ch_begin) * row_bytes;
            const int32_t acc = (bias ? bias[c] : 0) +
                                pqlr_dot_s8(x, p->in_zp, row, 0, p->in_features, p->wbits);
            const int32_t q = p->n_quant == 1 ? 0 : c;
            output[t * p->out_features + c] = (int8_t)pqlr_requantize_out(
                acc, multiplier[q], shift[q], p->out_zp, p->act_min, p->act_max);
        }
    }
    return PQLR_OK;
}
