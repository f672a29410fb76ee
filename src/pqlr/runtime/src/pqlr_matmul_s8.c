/* pqlr_matmul_s8.c: batched int8 matmul, A (heads, m, k) x B (heads, k, p) -> (heads, m, p). */
#include "pqlr_tf.h"

pqlr_status pqlr_matmul_s8(const pqlr_matmul_params *p, const int8_t *a, const int8_t *b, int8_t *out)
{
    if (p == NULL || a == NULL || b == NULL || out == NULL || p->heads < 1 || p->m < 1 || p->k < 1 ||
        p->k > 33025 || p->p < 1 || !pqlr_quant_ok(p->multiplier, p->shift) ||
        p->act_min < INT8_MIN || p->act_min > p->act_max || p->act_max > INT8_MAX) {
        return PQLR_ERR_ARG;
    }
    for (int32_t h = 0; h < p->heads; h++) {
        const int8_t *ah = a + (size_t)h * p->m * p->k;   /* (m, k) */
        const int8_t *bh = b + (size_t)h * p->k * p->p;   /* (k, p) */
        int8_t *oh = out + (size_t)h * p->m * p->p;       /* (m, p) */
        for (int32_t i = 0; i < p->m; i++) {
            for (int32_t j = 0; j < p->p; j++) {
                int32_t acc = 0;
                for (int32_t t = 0; t < p->k; t++) {
                    acc += ((int32_t)ah[i * p->k + t] - p->a_zp) * ((int32_t)bh[t * p->p + j] - p->b_zp);
                }
                oh[i * p->p + j] = (int8_t)pqlr_requantize_out(acc, p->multiplier, p->shift, p->out_zp,
                                                               p->act_min, p->act_max);
            }
        }
    }
    return PQLR_OK;
}
