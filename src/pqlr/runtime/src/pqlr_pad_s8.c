/* pqlr_pad_s8.c: constant pad of an int8 tensor of rank <= 4 (normalised to 4): the input sits
 * at offset pad_before inside an output of dims pad_before + in_dims + pad_after, every other
 * element is `value`. Output rows are written in order: padding rows filled, interior rows as
 * value run + input row (one copy) + value run. Oracle: pqlr.ir.ops_shape pad. */
#include <string.h>

#include "pqlr_shape.h"

pqlr_status pqlr_pad_s8(const pqlr_pad_params *p, const int8_t *input, int8_t *output)
{
    if (p == NULL || input == NULL || output == NULL || p->value < INT8_MIN || p->value > INT8_MAX)
        return PQLR_ERR_ARG;
    int32_t od[PQLR_SHAPE_MAX_RANK];                 /* output dims */
    int64_t n_out = 1;
    for (int32_t a = 0; a < PQLR_SHAPE_MAX_RANK; a++) {
        if (p->in_dims[a] < 1 || p->pad_before[a] < 0 || p->pad_after[a] < 0)
            return PQLR_ERR_ARG;
        const int64_t d = (int64_t)p->in_dims[a] + p->pad_before[a] + p->pad_after[a];
        n_out *= d;
        if (n_out > INT32_MAX)                       /* also bounds the input (<= n_out elements) */
            return PQLR_ERR_ARG;
        od[a] = (int32_t)d;
    }
    const int8_t v = (int8_t)p->value;
    const int32_t *in = p->in_dims, *b = p->pad_before;
    int32_t o = 0;
    for (int32_t o0 = 0; o0 < od[0]; o0++) {
        const int32_t x0 = o0 - b[0];                /* input index on each axis, if inside */
        for (int32_t o1 = 0; o1 < od[1]; o1++) {
            const int32_t x1 = o1 - b[1];
            for (int32_t o2 = 0; o2 < od[2]; o2++) {
                const int32_t x2 = o2 - b[2];
                if (x0 < 0 || x0 >= in[0] || x1 < 0 || x1 >= in[1] || x2 < 0 || x2 >= in[2]) {
                    for (int32_t k = 0; k < od[3]; k++)
                        output[o++] = v;
                    continue;
                }
                for (int32_t k = 0; k < b[3]; k++)
                    output[o++] = v;
                memcpy(output + o, input + ((x0 * in[1] + x1) * in[2] + x2) * in[3],
                       (size_t)in[3] * sizeof *output);
                o += in[3];
                for (int32_t k = 0; k < p->pad_after[3]; k++)
                    output[o++] = v;
            }
        }
    }
    return PQLR_OK;
}
