/* pqlr_layernorm_s16.c: int16 (zero point 0) layer normalisation over the last axis; the s8
 * algorithm with int16 gamma and a 64-bit accumulator (pqlr_tf.h). */
#include "pqlr_tf.h"

pqlr_status pqlr_layernorm_s16(const pqlr_layernorm_params *p, const int16_t *gamma, const int32_t *beta,
                                const int32_t *multiplier, const int8_t *shift,
                                const int16_t *in, int16_t *out)
{
    if (p == NULL || gamma == NULL || beta == NULL || multiplier == NULL || shift == NULL || in == NULL ||
        out == NULL || p->rows < 1 || p->channels < 1 || p->channels > PQLR_LAYERNORM_S16_MAX_CHANNELS ||
        p->eps < 0 || p->out_zp != 0 ||
        p->act_min < INT16_MIN || p->act_min > p->act_max || p->act_max > INT16_MAX) {
        return PQLR_ERR_ARG;
    }
    const int32_t c = p->channels;
    for (int32_t i = 0; i < c; i++) {
        if (!pqlr_quant_ok(multiplier[i], shift[i]) || beta[i] > (1 << 29) || beta[i] < -(1 << 29)) {
            return PQLR_ERR_ARG;
        }
    }
    for (int32_t r = 0; r < p->rows; r++) {
        const int16_t *x = in + (size_t)r * c;
        int16_t *y = out + (size_t)r * c;
        int32_t s = 0;                             /* |s| <= 512 * 32768 */
        for (int32_t i = 0; i < c; i++) {
            s += x[i];
        }
        int64_t w = (int64_t)c * p->eps;           /* sum d_i^2 + C eps, < 2^60 */
        for (int32_t i = 0; i < c; i++) {
            int64_t d = (int64_t)c * x[i] - s;
            w += d * d;
        }
        int64_t rcp;
        int32_t sh;
        pqlr_layernorm_rcp(w, &rcp, &sh);
        for (int32_t i = 0; i < c; i++) {
            int64_t d = (int64_t)c * x[i] - s;
            int64_t z = (d * rcp + ((int64_t)1 << (sh - 1))) >> sh;            /* |z| <= 2^16 */
            int64_t acc = (int64_t)gamma[i] * z + beta[i];                     /* < 2^31 + 2^29 */
            int64_t v = (acc * multiplier[i] + ((int64_t)1 << (shift[i] - 1))) >> shift[i];
            y[i] = (int16_t)(v < p->act_min ? p->act_min : (v > p->act_max ? p->act_max : v));
        }
    }
    return PQLR_OK;
}
