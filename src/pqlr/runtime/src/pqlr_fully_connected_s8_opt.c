/* pqlr_fully_connected_s8_opt.c: optimized fully connected layer over `rows` int8 rows (tokens),
 * 8/4/2/1-bit packed weights; bit-exact with pqlr_fully_connected_s8 (same signature; methods and
 * proofs in pqlr_nn_opt.h). An input of any rank (..., in_features) is rows x in_features.
 *
 * Blocks of 4 output channels; rows three at a time with the input zero point hoisted into the
 * bias (pqlr_dot4x3_*), the remaining rows one at a time with the zero point inside the loop (a
 * single row uses each weight once: hoisting would cost as much as it saves, so it is skipped).
 * Channels left over after the blocks of 4, and 2-/1-bit weights, go one at a time. */
#if defined(__GNUC__) && !defined(__clang__)
/* GCC's pre-allocation scheduler hoists all loads of the unrolled 4x3 block to the top and spills
 * the accumulators (RV32: +50% instructions); allocation-order code is what we want here. */
#pragma GCC optimize("no-schedule-insns")
#endif
#include "pqlr_nn_opt.h"

pqlr_status pqlr_fully_connected_s8_opt(const pqlr_fully_connected_params *p, const int8_t *input,
                                        const int8_t *weights, const int32_t *bias,
                                        const int32_t *multiplier, const int8_t *shift,
                                        int8_t *output)
{
    if (!p || !input || !weights || !multiplier || !shift || !output)
        return PQLR_ERR_ARG;
    if (p->rows < 1 || p->in_features < 1 || p->out_features < 1 || !pqlr_wbits_ok(p->wbits) ||
        (p->n_quant != 1 && p->n_quant != p->out_features) ||
        p->ch_begin < 0 || p->ch_begin >= p->ch_end || p->ch_end > p->out_features ||
        p->act_min < INT8_MIN || p->act_min > p->act_max || p->act_max > INT8_MAX ||
        !pqlr_quant_arrays_ok(multiplier, shift, p->n_quant, p->ch_begin, p->ch_end))
        return PQLR_ERR_ARG;
    const pqlr_fully_connected_params pl = *p;    /* local: int8_t stores cannot alias it */
    p = &pl;
    const int32_t k = p->in_features, rb = pqlr_packed_row_bytes(k, p->wbits), n_out = p->out_features;
    int32_t c = p->ch_begin;
    for (; (p->wbits == 8 || p->wbits == 4) && c + 4 <= p->ch_end; c += 4) {
        const int8_t *w = weights + (c - p->ch_begin) * rb;
        int32_t b[4], bh[4];
        pqlr_rq q[4];
        for (int32_t j = 0; j < 4; j++) {
            const int32_t qi = p->n_quant == 1 ? 0 : c + j;
            b[j] = bias ? bias[c + j] : 0;
            bh[j] = p->rows < 3 ? 0 : b[j] - p->in_zp * pqlr_row_sum(w + j * rb, 0, k, p->wbits);
            q[j] = pqlr_rq_make(multiplier[qi], shift[qi]);
        }
        int32_t t = 0;
        for (; t + 3 <= p->rows; t += 3) {
            int32_t a[12];
            for (int32_t j = 0; j < 4; j++)
                a[3 * j] = a[3 * j + 1] = a[3 * j + 2] = bh[j];
            const int8_t *x = input + t * k;
            if (p->wbits == 8)
                pqlr_dot4x3_w8(x, x + k, x + 2 * k, w, rb, k, a);
            else
                pqlr_dot4x3_w4(x, x + k, x + 2 * k, w, rb, 0, k, a);
            for (int32_t i = 0; i < 3; i++)
                for (int32_t j = 0; j < 4; j++)
                    output[(t + i) * n_out + c + j] = (int8_t)pqlr_rq_apply(
                        &q[j], a[3 * j + i], p->out_zp, p->act_min, p->act_max);
        }
        for (; t < p->rows; t++) {
            int32_t a[4] = {b[0], b[1], b[2], b[3]};
            pqlr_dot4x1(input + t * k, p->in_zp, w, rb, 0, k, p->wbits, a);
            for (int32_t j = 0; j < 4; j++)
                output[t * n_out + c + j] =
                    (int8_t)pqlr_rq_apply(&q[j], a[j], p->out_zp, p->act_min, p->act_max);
        }
    }
    for (; c < p->ch_end; c++) {
        const int8_t *row = weights + (c - p->ch_begin) * rb;
        const int32_t qi = p->n_quant == 1 ? 0 : c;
        const pqlr_rq q = pqlr_rq_make(multiplier[qi], shift[qi]);
        for (int32_t t = 0; t < p->rows; t++) {
            const int32_t acc = (bias ? bias[c] : 0) + pqlr_dot_s8(input + t * k, p->in_zp, row, 0, k, p->wbits);
            output[t * n_out + c] = (int8_t)pqlr_rq_apply(&q, acc, p->out_zp, p->act_min, p->act_max);
        }
    }
    return PQLR_OK;
}
