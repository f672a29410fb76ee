/* pqlr_requantize_s16_s8.c: reference requantization, int16 -> int8, rescaling a tensor to other
 * quantization parameters: y = clamp(((x - in_zp) * m + 2^(n-1)) >> n) + out_zp, act_min, act_max).
 * Oracle: pqlr.ir.ops_nn requantize. */
#include "pqlr_nn.h"

pqlr_status pqlr_requantize_s16_s8(const pqlr_requantize_params *p, const int16_t *input,
                                   int8_t *output)
{
    if (!p || !input || !output)
        return PQLR_ERR_ARG;
    if (p->size < 1 || !pqlr_quant_ok(p->multiplier, p->shift) ||
        p->act_min < INT8_MIN || p->act_min > p->act_max || p->act_max > INT8_MAX)
        return PQLR_ERR_ARG;
    for (int32_t i = 0; i < p->size; i++) {
        const int32_t x = (int32_t)input[i] - p->in_zp;
        output[i] = (int8_t)pqlr_requantize_out(x, p->multiplier, p->shift, p->out_zp, p->act_min,
                                                p->act_max);
    }
    return PQLR_OK;
}
