/* pqlr_add_s16.c: reference element-wise add of two int16_t operands, TFLite style
 * (left shift, per-input rescale, output rescale; pqlr_add_params), with NumPy broadcasting
 * (see pqlr_elem.h); in2 is the second input tensor or the constant operand's array.
 * Oracle: pqlr.ir.ops_elem add. */
#include "pqlr_elem.h"

pqlr_status pqlr_add_s16(const pqlr_add_params *p, const int16_t *in1, const int16_t *in2,
                         int16_t *output)
{
    if (!p || !in1 || !in2 || !output || !pqlr_add_params_ok(p, INT16_MIN, INT16_MAX))
        return PQLR_ERR_ARG;
    const pqlr_add_params q = *p;   /* a local copy: no output store can alias it */
    PQLR_BROADCAST_LOOP(&q, in1, in2, output, int16_t, pqlr_add_one);
    return PQLR_OK;
}
