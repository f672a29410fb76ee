/* pqlr_concat_s16.c: concatenate int16 tensors (same qparams) along one axis. */
#include "pqlr_tf.h"

pqlr_status pqlr_concat_s16(const pqlr_concat_params *p, const int16_t *const *inputs, int16_t *out)
{
    if (p == NULL || inputs == NULL || out == NULL || p->n_inputs < 1 ||
        p->n_inputs > PQLR_CONCAT_MAX_INPUTS || p->outer < 1) {
        return PQLR_ERR_ARG;
    }
    for (int32_t n = 0; n < p->n_inputs; n++) {
        if (inputs[n] == NULL || p->chunk[n] < 0) {
            return PQLR_ERR_ARG;
        }
    }
    size_t o = 0;
    for (int32_t b = 0; b < p->outer; b++) {
        for (int32_t n = 0; n < p->n_inputs; n++) {
            const int16_t *src = inputs[n] + (size_t)b * p->chunk[n];
            for (int32_t i = 0; i < p->chunk[n]; i++) {
                out[o++] = src[i];
            }
        }
    }
    return PQLR_OK;
}
