/* pqlr_add_s8.c: reference element-wise add of two int8_t operands, TFLite style
 * (left shift, per-input rescale, output rescale; pqlr_add_params), with NumPy broadcasting
 * (see pqlr_elem.h); in2 is the second input tensor or the constant operand's array.
 * Oracle: pqlr.ir.ops_elem add. */
#include "pqlr_elem.h"

pqlr_status pqlr_add_s8(const pqlr_add_params *p, const int8_t *in1, const int8_t *in2,
                        int8_t *output)
{
    if (!p || !in1 || !in2 || !output || !pqlr_add_params_ok(p, INT8_MIN, INT8_MAX))
        return PQLR_ERR_ARG;
    const pqlr_add_params q = *p;   /* a local copy: no output store can alias it */
    PQLR_BROADCAST_LOOP(&q, in1, in2, output, int8_t, pqlr_add_one);
    return PQLR_OK;
}
