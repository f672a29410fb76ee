/* pqlr_softmax_s16.c: int16 (zero point 0) softmax over rows, exp as 2^-(k + f) through an
 * interpolated Q30 table; output scale 1/32768, zero point 0 (pqlr_tf.h). */
#include "pqlr_tf.h"

/* exp(-scale_in d) in Q20 for d in [0, 65535]. */
static int64_t exp_q20(const pqlr_softmax_params *p, const int32_t *t, int32_t d)
{
    int64_t u = ((int64_t)d * p->multiplier + ((int64_t)1 << (p->shift - 1))) >> p->shift;
    int64_t k = u >> 16;
    if (k >= 31) {
        return 0;
    }
    int32_t f = (int32_t)(u & 0xFFFF), i = f >> 8, lo = f & 0xFF;
    int64_t v = (int64_t)t[i] - ((((int64_t)t[i] - t[i + 1]) * lo + 128) >> 8);   /* Q30 2^(-f/2^16) */
    return (v + ((int64_t)1 << (9 + k))) >> (10 + k);
}

pqlr_status pqlr_softmax_s16(const pqlr_softmax_params *p, const int32_t *exp2_table,
                              const int16_t *in, int16_t *out)
{
    if (p == NULL || exp2_table == NULL || in == NULL || out == NULL || p->rows < 1 || p->len < 1 ||
        p->len > PQLR_SOFTMAX_MAX_LEN || !pqlr_quant_ok(p->multiplier, p->shift) ||
        exp2_table[0] != (1 << 30) || exp2_table[256] != (1 << 29)) {
        return PQLR_ERR_ARG;
    }
    for (int32_t r = 0; r < p->rows; r++) {
        const int16_t *x = in + (size_t)r * p->len;
        int16_t *y = out + (size_t)r * p->len;
        int32_t x_max = INT16_MIN;
        for (int32_t i = 0; i < p->len; i++) {
            x_max = x[i] > x_max ? x[i] : x_max;
        }
        int64_t sum = 0;                       /* >= 2^20, <= len * 2^20 */
        for (int32_t i = 0; i < p->len; i++) {
            sum += exp_q20(p, exp2_table, x_max - x[i]);
        }
        for (int32_t i = 0; i < p->len; i++) {
            int64_t q = (65536 * exp_q20(p, exp2_table, x_max - x[i]) + sum) / (2 * sum);
            y[i] = (int16_t)(q > 32767 ? 32767 : q);
        }
    }
    return PQLR_OK;
}
