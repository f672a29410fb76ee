/* pqlr_elem.h: element-wise integer kernels (add) for int8 ("s8") and int16 ("s16")
 * activations. Oracle: src/pqlr/ir/ops_elem.py; every kernel here is bit-exact to it.
 * Conventions (requantization, clamps, status codes) as in pqlr_nn.h. */
#ifndef PQLR_ELEM_H
#define PQLR_ELEM_H

#include "pqlr_nn.h"

/* add, TFLite style: a = (x1 - in1_zp) << left_shift, b likewise;
 * s = pqlr_requantize(a, in1_multiplier, in1_shift) + pqlr_requantize(b, in2_multiplier, in2_shift);
 * y = pqlr_requantize_out(s, out_multiplier, out_shift, out_zp, act_min, act_max).
 * left_shift is 20 for s8, 15 for s16; the Python side checks that no int32 step overflows. */
typedef struct {
    int32_t size;
    int32_t in1_zp, in2_zp, out_zp;
    int32_t left_shift;
    int32_t in1_multiplier, in1_shift;
    int32_t in2_multiplier, in2_shift;
    int32_t out_multiplier, out_shift;
    int32_t act_min, act_max;
} pqlr_add_params;

pqlr_status pqlr_add_s8(const pqlr_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *output);
pqlr_status pqlr_add_s16(const pqlr_add_params *p, const int16_t *in1, const int16_t *in2,
                         int16_t *output);

#endif /* PQLR_ELEM_H */
