/* pqlr_avg_pool2d_s8_opt.c: optimized average pooling of an int8 HWC map (global average pooling and
 * the mean over tokens in particular); bit-exact with pqlr_avg_pool2d_s8 (same signature).
 *
 * Windows that lie inside the input sum four channels at a time with one pointer walking the
 * window (4 loads + 4 adds per 4 elements) and take the zero point out of the loop:
 *     sum (x - zp) = sum x - (window taps) * zp        exact: |sum x| <= 128 * taps, and the
 * reference's own bound (kernel_h * kernel_w * 255 < 2^31, ops_pool) covers every partial sum.
 * Windows that read padding, and channels left over after the blocks of 4, take the reference loop. */
#include "pqlr_nn_opt.h"

pqlr_status pqlr_avg_pool2d_s8_opt(const pqlr_avg_pool2d_params *p, const int8_t *input, int8_t *output)
{
    if (!p || !input || !output)
        return PQLR_ERR_ARG;
    if (p->in_h < 1 || p->in_w < 1 || p->channels < 1 || p->out_h < 1 || p->out_w < 1 ||
        p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1 ||
        p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0 ||
        p->in_h + p->pad_top + p->pad_bottom < p->kernel_h ||
        p->in_w + p->pad_left + p->pad_right < p->kernel_w ||
        p->out_h != (p->in_h + p->pad_top + p->pad_bottom - p->kernel_h) / p->stride_h + 1 ||
        p->out_w != (p->in_w + p->pad_left + p->pad_right - p->kernel_w) / p->stride_w + 1 ||
        !pqlr_quant_ok(p->multiplier, p->shift) ||
        p->act_min < INT8_MIN || p->act_min > p->act_max || p->act_max > INT8_MAX)
        return PQLR_ERR_ARG;
    const pqlr_avg_pool2d_params pl = *p;        /* local: int8_t stores cannot alias it */
    p = &pl;
    const int32_t ch = p->channels, kh = p->kernel_h, kw = p->kernel_w;
    const int32_t hoisted = kh * kw * p->in_zp;
    const pqlr_rq q = pqlr_rq_make(p->multiplier, p->shift);
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        const int32_t iy0 = oy * p->stride_h - p->pad_top;
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            const int32_t ix0 = ox * p->stride_w - p->pad_left;
            int8_t *y = output + (oy * p->out_w + ox) * ch;
            const int inside = iy0 >= 0 && ix0 >= 0 && iy0 + kh <= p->in_h && ix0 + kw <= p->in_w;
            int32_t c = 0;
            for (; inside && c + 4 <= ch; c += 4) {
                int32_t s0 = -hoisted, s1 = -hoisted, s2 = -hoisted, s3 = -hoisted;
                for (int32_t ky = 0; ky < kh; ky++) {
                    const int8_t *x = input + ((iy0 + ky) * p->in_w + ix0) * ch + c;
                    for (const int8_t *e = x + kw * ch; x != e; x += ch) {
                        s0 += x[0]; s1 += x[1]; s2 += x[2]; s3 += x[3];
                    }
                }
                y[c] = (int8_t)pqlr_rq_apply(&q, s0, p->out_zp, p->act_min, p->act_max);
                y[c + 1] = (int8_t)pqlr_rq_apply(&q, s1, p->out_zp, p->act_min, p->act_max);
                y[c + 2] = (int8_t)pqlr_rq_apply(&q, s2, p->out_zp, p->act_min, p->act_max);
                y[c + 3] = (int8_t)pqlr_rq_apply(&q, s3, p->out_zp, p->act_min, p->act_max);
            }
            for (; c < ch; c++) {                           /* the reference loop */
                int32_t acc = 0;
                for (int32_t ky = 0; ky < kh; ky++) {
                    const int32_t iy = iy0 + ky;
                    if (iy < 0 || iy >= p->in_h)
                        continue;
                    for (int32_t kx = 0; kx < kw; kx++) {
                        const int32_t ix = ix0 + kx;
                        if (ix < 0 || ix >= p->in_w)
                            continue;
                        acc += (int32_t)input[(iy * p->in_w + ix) * ch + c] - p->in_zp;
                    }
                }
                y[c] = (int8_t)pqlr_rq_apply(&q, acc, p->out_zp, p->act_min, p->act_max);
            }
        }
    }
    return PQLR_OK;
}
