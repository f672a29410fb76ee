/* pqlr_mul_s16.c: reference element-wise multiply of two int16_t operands: (x1 - zp1) * (x2 - zp2)
 * rescaled once to the output (pqlr_mul_params), with NumPy broadcasting (see pqlr_elem.h);
 * in2 is the second input tensor or the constant operand's array. Oracle: pqlr.ir.ops_elem mul. */
#include "pqlr_elem.h"

pqlr_status pqlr_mul_s16(const pqlr_mul_params *p, const int16_t *in1, const int16_t *in2,
                         int16_t *output)
{
    if (!p || !in1 || !in2 || !output || !pqlr_mul_params_ok(p, INT16_MIN, INT16_MAX))
        return PQLR_ERR_ARG;
    const pqlr_mul_params q = *p;   /* a local copy: no output store can alias it */
    PQLR_BROADCAST_LOOP(&q, in1, in2, output, int16_t, pqlr_mul_one);
    return PQLR_OK;
}
