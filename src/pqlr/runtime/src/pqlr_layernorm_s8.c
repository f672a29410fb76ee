/* pqlr_layernorm_s8.c: int8 layer normalisation over the last axis, integer mean/variance/isqrt. */
#include "pqlr_tf.h"

pqlr_status pqlr_layernorm_s8(const pqlr_layernorm_params *p, const int8_t *gamma, const int32_t *beta,
                              const int32_t *multiplier, const int8_t *shift,
                              const int8_t *in, int8_t *out)
{
    if (p == NULL || gamma == NULL || beta == NULL || multiplier == NULL || shift == NULL || in == NULL ||
        out == NULL || p->rows < 1 || p->channels < 1 || p->channels > PQLR_LAYERNORM_MAX_CHANNELS ||
        p->eps < 0 ||
        p->act_min < INT8_MIN || p->act_min > p->act_max || p->act_max > INT8_MAX) {
        return PQLR_ERR_ARG;
    }
    const int32_t c = p->channels;
    for (int32_t i = 0; i < c; i++) {
        if (!pqlr_quant_ok(multiplier[i], shift[i])) {
            return PQLR_ERR_ARG;
        }
    }
    for (int32_t r = 0; r < p->rows; r++) {
        const int8_t *x = in + (size_t)r * c;
        int8_t *y = out + (size_t)r * c;
        int32_t s = 0;
        for (int32_t i = 0; i < c; i++) {
            s += x[i];
        }
        int64_t w = (int64_t)c * p->eps;           /* sum d_i^2 + C eps, < 2^53 */
        for (int32_t i = 0; i < c; i++) {
            int64_t d = (int64_t)c * x[i] - s;
            w += d * d;
        }
        int64_t rcp;
        int32_t sh;
        pqlr_layernorm_rcp(w, &rcp, &sh);
        for (int32_t i = 0; i < c; i++) {
            int64_t d = (int64_t)c * x[i] - s;
            int32_t z = (int32_t)((d * rcp + ((int64_t)1 << (sh - 1))) >> sh);   /* |z| <= 2^16 */
            int32_t acc = (int32_t)gamma[i] * z + beta[i];
            y[i] = (int8_t)pqlr_requantize_out(acc, multiplier[i], shift[i], p->out_zp, p->act_min, p->act_max);
        }
    }
    return PQLR_OK;
}
