/* pqlr_add_s16.c: reference element-wise add of two int16 tensors with different quantization,
 * TFLite style (left shift, per-input rescale, output rescale; see pqlr_add_params).
 * Oracle: pqlr.ir.ops_elem add. */
#include "pqlr_elem.h"

pqlr_status pqlr_add_s16(const pqlr_add_params *p, const int16_t *in1, const int16_t *in2,
                         int16_t *output)
{
    if (!p || !in1 || !in2 || !output)
        return PQLR_ERR_ARG;
    if (p->size < 1 || p->left_shift < 0 || p->left_shift > 30 ||
        !pqlr_quant_ok(p->in1_multiplier, p->in1_shift) ||
        !pqlr_quant_ok(p->in2_multiplier, p->in2_shift) ||
        !pqlr_quant_ok(p->out_multiplier, p->out_shift) ||
        p->act_min < INT16_MIN || p->act_min > p->act_max || p->act_max > INT16_MAX)
        return PQLR_ERR_ARG;
    const int32_t one = (int32_t)1 << p->left_shift;
    for (int32_t i = 0; i < p->size; i++) {
        const int32_t a = ((int32_t)in1[i] - p->in1_zp) * one;
        const int32_t b = ((int32_t)in2[i] - p->in2_zp) * one;
        const int32_t s = pqlr_requantize(a, p->in1_multiplier, p->in1_shift) +
                          pqlr_requantize(b, p->in2_multiplier, p->in2_shift);
        output[i] = (int16_t)pqlr_requantize_out(s, p->out_multiplier, p->out_shift, p->out_zp,
                                                p->act_min, p->act_max);
    }
    return PQLR_OK;
}
