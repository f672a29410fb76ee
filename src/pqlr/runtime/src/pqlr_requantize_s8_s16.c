/* pqlr_requantize_s8_s16.c: reference requantization, int8 -> int16, rescaling a tensor to other
 * quantization parameters: y = clamp(((x - in_zp) * m + 2^(n-1)) >> n) + out_zp, act_min, act_max).
 * Oracle: pqlr.ir.ops_nn requantize. */
#include "pqlr_nn.h"

pqlr_status pqlr_requantize_s8_s16(const pqlr_requantize_params *p, const int8_t *input,
                                   int16_t *output)
{
    if (!p || !input || !output)
        return PQLR_ERR_ARG;
    if (p->size < 1 || !pqlr_quant_ok(p->multiplier, p->shift) ||
        p->act_min < INT16_MIN || p->act_min > p->act_max || p->act_max > INT16_MAX)
        return PQLR_ERR_ARG;
    for (int32_t i = 0; i < p->size; i++) {
        const int32_t x = (int32_t)input[i] - p->in_zp;
        output[i] = (int16_t)pqlr_requantize_out(x, p->multiplier, p->shift, p->out_zp, p->act_min,
                                                 p->act_max);
    }
    return PQLR_OK;
}
