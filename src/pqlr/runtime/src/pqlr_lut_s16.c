/* pqlr_lut_s16.c: element-wise int16 -> int16 through 513 knots with linear interpolation. */
#include "pqlr_tf.h"

pqlr_status pqlr_lut_s16(const pqlr_lut_params *p, const int16_t *table, const int16_t *in, int16_t *out)
{
    if (p == NULL || table == NULL || in == NULL || out == NULL || p->size < 0) {
        return PQLR_ERR_ARG;
    }
    for (int32_t n = 0; n < p->size; n++) {
        int32_t u = (int32_t)in[n] + 32768;               /* [0, 65535] */
        int32_t i = u >> 7, r = u & 127;
        int32_t a = table[i], b = table[i + 1];
        out[n] = (int16_t)(a + (((b - a) * r + 64) >> 7));  /* between a and b: no saturation needed */
    }
    return PQLR_OK;
}
