/* pqlr_pos_add_s8.c: x + constant table (positional embedding), TFLite-style integer add. */
#include "pqlr_tf.h"

pqlr_status pqlr_pos_add_s8(const pqlr_pos_add_params *p, const int8_t *table, const int8_t *in, int8_t *out)
{
    if (p == NULL || table == NULL || in == NULL || out == NULL || p->size < 0 ||
        !pqlr_quant_ok(p->x_multiplier, p->x_shift) || !pqlr_quant_ok(p->table_multiplier, p->table_shift) ||
        !pqlr_quant_ok(p->out_multiplier, p->out_shift) || p->x_zp < INT8_MIN || p->x_zp > INT8_MAX ||
        p->table_zp < INT8_MIN || p->table_zp > INT8_MAX ||
        p->act_min < INT8_MIN || p->act_min > p->act_max || p->act_max > INT8_MAX) {
        return PQLR_ERR_ARG;
    }
    for (int32_t i = 0; i < p->size; i++) {
        int32_t a = ((int32_t)in[i] - p->x_zp) * (1 << PQLR_POS_ADD_LEFT_SHIFT);       /* |.| <= 2^28 */
        int32_t b = ((int32_t)table[i] - p->table_zp) * (1 << PQLR_POS_ADD_LEFT_SHIFT);
        int32_t sum = pqlr_requantize(a, p->x_multiplier, p->x_shift) +
                      pqlr_requantize(b, p->table_multiplier, p->table_shift);
        out[i] = (int8_t)pqlr_requantize_out(sum, p->out_multiplier, p->out_shift, p->out_zp,
                                             p->act_min, p->act_max);
    }
    return PQLR_OK;
}
