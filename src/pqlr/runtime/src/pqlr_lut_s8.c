/* pqlr_lut_s8.c: element-wise int8 -> int8 through a 256-entry table (entry i is for input i - 128). */
#include "pqlr_tf.h"

pqlr_status pqlr_lut_s8(const pqlr_lut_params *p, const int8_t *table, const int8_t *in, int8_t *out)
{
    if (p == NULL || table == NULL || in == NULL || out == NULL || p->size < 0) {
        return PQLR_ERR_ARG;
    }
    for (int32_t i = 0; i < p->size; i++) {
        out[i] = table[(int32_t)in[i] + 128];
    }
    return PQLR_OK;
}
