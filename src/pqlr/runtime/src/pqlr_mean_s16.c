/* pqlr_mean_s16.c: mean of an int16 tensor (rank <= 4, normalised to dims[4]) over the axes with
 * reduce[a] = 1; the output holds the kept axes in order. Each output value sums (x - in_zp) over
 * its reduced block and requantizes with 1 / (product of the reduced dims) folded into the multiplier.
 * Oracle: pqlr.ir.ops_pool mean (axes other than a leading block; those use pqlr_avg_pool2d_s16). */
#include "pqlr_pool.h"

pqlr_status pqlr_mean_s16(const pqlr_mean_params *p, const int16_t *input, int16_t *output)
{
    if (!p || !input || !output)
        return PQLR_ERR_ARG;
    int64_t size = 1, count = 1;
    for (int a = 0; a < 4; a++) {
        if (p->dims[a] < 1 || (p->reduce[a] != 0 && p->reduce[a] != 1))
            return PQLR_ERR_ARG;
        size *= p->dims[a];
        count *= p->reduce[a] ? p->dims[a] : 1;
        if (size > INT32_MAX)
            return PQLR_ERR_ARG;
    }
    if (!pqlr_pool_sum_ok(count, p->in_zp, INT16_MIN, INT16_MAX) || !pqlr_quant_ok(p->multiplier, p->shift) ||
        p->act_min < INT16_MIN || p->act_min > p->act_max || p->act_max > INT16_MAX)
        return PQLR_ERR_ARG;
    /* axis a walks out[a] positions of the output and red[a] of each reduced block: (dims, 1) for a
     * kept axis, (1, dims) for a reduced one; the input index is sum over a of (o_a + r_a) * st[a]. */
    int32_t out[4], red[4], st[4];
    for (int a = 3, s = 1; a >= 0; s *= p->dims[a], a--) {
        st[a] = s;
        out[a] = p->reduce[a] ? 1 : p->dims[a];
        red[a] = p->reduce[a] ? p->dims[a] : 1;
    }
    int16_t *y = output;
    for (int32_t o0 = 0; o0 < out[0]; o0++)
        for (int32_t o1 = 0; o1 < out[1]; o1++)
            for (int32_t o2 = 0; o2 < out[2]; o2++)
                for (int32_t o3 = 0; o3 < out[3]; o3++) {
                    const int16_t *x = input + o0 * st[0] + o1 * st[1] + o2 * st[2] + o3 * st[3];
                    int32_t acc = 0;
                    for (int32_t r0 = 0; r0 < red[0]; r0++)
                        for (int32_t r1 = 0; r1 < red[1]; r1++)
                            for (int32_t r2 = 0; r2 < red[2]; r2++)
                                for (int32_t r3 = 0; r3 < red[3]; r3++)
                                    acc += (int32_t)x[r0 * st[0] + r1 * st[1] + r2 * st[2] + r3 * st[3]] -
                                           p->in_zp;
                    *y++ = (int16_t)pqlr_requantize_out(acc, p->multiplier, p->shift, p->out_zp, p->act_min,
                                                       p->act_max);
                }
    return PQLR_OK;
}
