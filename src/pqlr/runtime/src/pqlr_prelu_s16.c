/* pqlr_prelu_s16.c: reference LeakyReLU / PReLU on int16_t (see pqlr_prelu_params): values at or above
 * the input zero point are rescaled by multiplier_pos, those below by the slope's multiplier_neg
 * (one for all channels or one per channel; negative for a negative slope).
 * Oracle: pqlr.ir.ops_elem prelu. */
#include "pqlr_elem.h"

pqlr_status pqlr_prelu_s16(const pqlr_prelu_params *p, const int16_t *input, const int32_t *multiplier_neg,
                           const int8_t *shift_neg, int16_t *output)
{
    if (!p || !input || !multiplier_neg || !shift_neg || !output ||
        !pqlr_prelu_params_ok(p, shift_neg, INT16_MIN, INT16_MAX))
        return PQLR_ERR_ARG;
    const pqlr_prelu_params q = *p;   /* a local copy: no output store can alias it */
    int32_t i = 0;
    for (int32_t o = 0; o < q.outer; o++)
        for (int32_t c = 0; c < q.channels; c++) {
            const int32_t s = q.n_neg == 1 ? 0 : c;     /* the slope of channel c */
            for (int32_t k = 0; k < q.inner; k++, i++) {
                const int32_t d = (int32_t)input[i] - q.in_zp;
                const int32_t m = d >= 0 ? q.multiplier_pos : multiplier_neg[s];
                const int32_t n = d >= 0 ? q.shift_pos : (int32_t)shift_neg[s];
                output[i] = (int16_t)pqlr_requantize_out(d, m, n, q.out_zp, q.act_min, q.act_max);
            }
        }
    return PQLR_OK;
}
