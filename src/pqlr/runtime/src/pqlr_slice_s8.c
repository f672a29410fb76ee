/* pqlr_slice_s8.c: strided slice of an int8 tensor of rank <= 4 (normalised to 4):
 * output[i0, i1, i2, i3] = input[begin[0] + i0 * step[0], ..., begin[3] + i3 * step[3]].
 * A unit innermost step copies whole runs. Oracle: pqlr.ir.ops_shape slice. */
#include <string.h>

#include "pqlr_shape.h"

pqlr_status pqlr_slice_s8(const pqlr_slice_params *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL)
        return PQLR_ERR_ARG;
    int64_t n_in = 1;
    for (int32_t a = 0; a < PQLR_SHAPE_MAX_RANK; a++) {
        if (p->in_dims[a] < 1 || p->out_dims[a] < 1 || p->step[a] < 1 || p->begin[a] < 0 ||
            (int64_t)p->begin[a] + (int64_t)(p->out_dims[a] - 1) * p->step[a] >= p->in_dims[a])
            return PQLR_ERR_ARG;                     /* an index read would leave the input */
        n_in *= p->in_dims[a];
        if (n_in > INT32_MAX)
            return PQLR_ERR_ARG;
    }
    /* input strides (elements) of each axis; every offset below is < n_in <= INT32_MAX */
    const int32_t st2 = p->in_dims[3], st1 = st2 * p->in_dims[2], st0 = st1 * p->in_dims[1];
    const int32_t n3 = p->out_dims[3], b3 = p->begin[3], s3 = p->step[3];
    int32_t o = 0;
    for (int32_t i0 = 0; i0 < p->out_dims[0]; i0++) {
        const int32_t r0 = (p->begin[0] + i0 * p->step[0]) * st0;
        for (int32_t i1 = 0; i1 < p->out_dims[1]; i1++) {
            const int32_t r1 = r0 + (p->begin[1] + i1 * p->step[1]) * st1;
            for (int32_t i2 = 0; i2 < p->out_dims[2]; i2++) {
                const int8_t *row = input + r1 + (p->begin[2] + i2 * p->step[2]) * st2 + b3;
                if (s3 == 1) {
                    memcpy(output + o, row, (size_t)n3 * sizeof *output);
                    o += n3;
                } else {
                    for (int32_t i3 = 0; i3 < n3; i3++)
                        output[o++] = row[i3 * s3];
                }
            }
        }
    }
    return PQLR_OK;
}
