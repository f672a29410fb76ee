/* pqlr_matmul_s16.c: batched int16 (zero point 0) matmul with a 64-bit accumulator, requantized
 * exactly in two parts (pqlr_tf.h); A (heads, m, k) x B (heads, k, p) -> (heads, m, p). */
#include "pqlr_tf.h"

pqlr_status pqlr_matmul_s16(const pqlr_matmul_params *p, const int16_t *a, const int16_t *b, int16_t *out)
{
    if (p == NULL || a == NULL || b == NULL || out == NULL || p->heads < 1 || p->m < 1 || p->k < 1 ||
        p->k > PQLR_MATMUL_S16_MAX_K || p->p < 1 || p->a_zp != 0 || p->b_zp != 0 || p->out_zp != 0 ||
        !pqlr_quant_ok(p->multiplier, p->shift) || (p->multiplier != 0 && p->shift < 24) ||
        p->act_min < INT16_MIN || p->act_min > p->act_max || p->act_max > INT16_MAX) {
        return PQLR_ERR_ARG;
    }
    for (int32_t h = 0; h < p->heads; h++) {
        const int16_t *ah = a + (size_t)h * p->m * p->k;   /* (m, k) */
        const int16_t *bh = b + (size_t)h * p->k * p->p;   /* (k, p) */
        int16_t *oh = out + (size_t)h * p->m * p->p;       /* (m, p) */
        for (int32_t i = 0; i < p->m; i++) {
            for (int32_t j = 0; j < p->p; j++) {
                int64_t acc = 0;                           /* |acc| <= k 2^30 <= 2^46 */
                for (int32_t t = 0; t < p->k; t++) {
                    acc += (int32_t)ah[i * p->k + t] * (int32_t)bh[t * p->p + j];
                }
                int64_t y = 0;                             /* multiplier 0: too small to represent */
                if (p->multiplier != 0) {
                    int64_t a1 = acc >> 24, a0 = acc & 0xFFFFFF;
                    int64_t lo = (a0 * p->multiplier + ((int64_t)1 << (p->shift - 1))) >> 24;
                    y = (a1 * p->multiplier + lo) >> (p->shift - 24);
                }
                oh[i * p->p + j] = (int16_t)(y < p->act_min ? p->act_min : (y > p->act_max ? p->act_max : y));
            }
        }
    }
    return PQLR_OK;
}
