/* pqlr_pos_add_s16.c: int16 x + constant int16 table, TFLite-style integer add (left shift 15). */
#include "pqlr_tf.h"

pqlr_status pqlr_pos_add_s16(const pqlr_pos_add_params *p, const int16_t *table, const int16_t *in, int16_t *out)
{
    if (p == NULL || table == NULL || in == NULL || out == NULL || p->size < 0 ||
        !pqlr_quant_ok(p->x_multiplier, p->x_shift) || !pqlr_quant_ok(p->table_multiplier, p->table_shift) ||
        !pqlr_quant_ok(p->out_multiplier, p->out_shift) || p->x_zp != 0 || p->table_zp != 0 || p->out_zp != 0 ||
        p->act_min < INT16_MIN || p->act_min > p->act_max || p->act_max > INT16_MAX) {
        return PQLR_ERR_ARG;
    }
    for (int32_t i = 0; i < p->size; i++) {
        int32_t a = ((int32_t)in[i] - p->x_zp) * (1 << PQLR_POS_ADD_S16_LEFT_SHIFT);       /* |.| <= 2^30 */
        int32_t b = ((int32_t)table[i] - p->table_zp) * (1 << PQLR_POS_ADD_S16_LEFT_SHIFT);
        int32_t sum = pqlr_requantize(a, p->x_multiplier, p->x_shift) +
                      pqlr_requantize(b, p->table_multiplier, p->table_shift);
        out[i] = (int16_t)pqlr_requantize_out(sum, p->out_multiplier, p->out_shift, p->out_zp,
                                             p->act_min, p->act_max);
    }
    return PQLR_OK;
}
