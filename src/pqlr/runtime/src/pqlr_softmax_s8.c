/* pqlr_softmax_s8.c: int8 softmax over rows through a Q16 exp table; output scale 1/256, zp -128. */
#include "pqlr_tf.h"

pqlr_status pqlr_softmax_s8(const pqlr_softmax_params *p, const int32_t *exp_table,
                            const int8_t *in, int8_t *out)
{
    if (p == NULL || exp_table == NULL || in == NULL || out == NULL || p->rows < 1 || p->len < 1 ||
        p->len > PQLR_SOFTMAX_MAX_LEN || exp_table[0] != 65536) {
        return PQLR_ERR_ARG;
    }
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *x = in + (size_t)r * p->len;
        int8_t *y = out + (size_t)r * p->len;
        int32_t x_max = -128;
        for (int32_t i = 0; i < p->len; i++) {
            x_max = x[i] > x_max ? x[i] : x_max;
        }
        uint32_t sum = 0;                      /* <= len * 2^16 < 2^31 */
        for (int32_t i = 0; i < p->len; i++) {
            sum += (uint32_t)exp_table[x_max - x[i]];
        }
        for (int32_t i = 0; i < p->len; i++) {
            uint32_t e = (uint32_t)exp_table[x_max - x[i]];
            uint32_t q = (512u * e + sum) / (2u * sum);   /* round(256 e / sum), in [0, 256] */
            y[i] = (int8_t)((q > 255u ? 255 : (int32_t)q) - 128);
        }
    }
    return PQLR_OK;
}
