/* pqlr_reshape_s8.c: reshape is a byte copy (row-major order is unchanged); in == out is a no-op
 * (the arena planner aliases reshape buffers fully or not at all, never partially). */
#include "pqlr_tf.h"

pqlr_status pqlr_reshape_s8(int32_t n_bytes, const int8_t *in, int8_t *out)
{
    if (in == NULL || out == NULL || n_bytes < 0) {
        return PQLR_ERR_ARG;
    }
    if (in == out) {
        return PQLR_OK;
    }
    for (int32_t i = 0; i < n_bytes; i++) {
        out[i] = in[i];
    }
    return PQLR_OK;
}
