/* pqlr_transpose_s16.c: permute the axes of an int16 tensor of rank 1..4. */
#include "pqlr_tf.h"

pqlr_status pqlr_transpose_s16(const pqlr_transpose_params *p, const int16_t *in, int16_t *out)
{
    if (p == NULL || in == NULL || out == NULL || p->rank < 1 || p->rank > PQLR_TRANSPOSE_MAX_RANK) {
        return PQLR_ERR_ARG;
    }
    int32_t dims[PQLR_TRANSPOSE_MAX_RANK] = {1, 1, 1, 1};     /* output dims, padded in front to 4 */
    int32_t strides[PQLR_TRANSPOSE_MAX_RANK] = {0, 0, 0, 0};  /* input stride of each output axis */
    int32_t in_stride[PQLR_TRANSPOSE_MAX_RANK];
    int32_t seen = 0;
    const int32_t pad = PQLR_TRANSPOSE_MAX_RANK - p->rank;
    for (int32_t a = p->rank - 1, st = 1; a >= 0; a--) {
        if (p->in_dims[a] < 1) {
            return PQLR_ERR_ARG;
        }
        in_stride[a] = st;
        st *= p->in_dims[a];
    }
    for (int32_t j = 0; j < p->rank; j++) {
        int32_t a = p->perm[j];
        if (a < 0 || a >= p->rank || (seen & (1 << a)) != 0) {
            return PQLR_ERR_ARG;
        }
        seen |= 1 << a;
        dims[pad + j] = p->in_dims[a];
        strides[pad + j] = in_stride[a];
    }
    size_t o = 0;
    for (int32_t i0 = 0; i0 < dims[0]; i0++) {
        for (int32_t i1 = 0; i1 < dims[1]; i1++) {
            for (int32_t i2 = 0; i2 < dims[2]; i2++) {
                for (int32_t i3 = 0; i3 < dims[3]; i3++) {
                    out[o++] = in[(size_t)i0 * strides[0] + (size_t)i1 * strides[1] +
                                  (size_t)i2 * strides[2] + (size_t)i3 * strides[3]];
                }
            }
        }
    }
    return PQLR_OK;
}
