/* pqlr_channel_affine_s8.c: reference per-channel affine y = s_c x + t_c on int8_t (an unfolded
 * BatchNorm; see pqlr_channel_affine_params): acc = (x - in_zp) * gamma[c] + beta[c], requantized
 * per channel. Oracle: pqlr.ir.ops_elem channel_affine. */
#include "pqlr_elem.h"

pqlr_status pqlr_channel_affine_s8(const pqlr_channel_affine_params *p, const int8_t *input,
                                   const int8_t *gamma, const int32_t *beta, const int32_t *multiplier,
                                   const int8_t *shift, int8_t *output)
{
    if (!p || !input || !gamma || !beta || !multiplier || !shift || !output ||
        !pqlr_channel_affine_params_ok(p, gamma, beta, multiplier, shift, INT8_MIN, INT8_MAX))
        return PQLR_ERR_ARG;
    const pqlr_channel_affine_params q = *p;   /* a local copy: no output store can alias it */
    int32_t i = 0;
    for (int32_t o = 0; o < q.outer; o++)
        for (int32_t c = 0; c < q.channels; c++) {
            const int32_t g = gamma[c], b = beta[c], m = multiplier[c], n = shift[c];
            for (int32_t k = 0; k < q.inner; k++, i++) {
                const int32_t acc = ((int32_t)input[i] - q.in_zp) * g + b;
                output[i] = (int8_t)pqlr_requantize_out(acc, m, n, q.out_zp, q.act_min, q.act_max);
            }
        }
    return PQLR_OK;
}
