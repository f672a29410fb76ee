/* pqlr_depthwise_conv2d_s8_opt.c: optimized depthwise 2-D convolution (channel multiplier 1), int8 HWC
 * activations, 8/4/2/1-bit packed weights; bit-exact with pqlr_depthwise_conv2d_s8 (same signature;
 * methods and proofs in pqlr_nn_opt.h). Dilation 1 only (pqlr_conv2d_plain): a dilated layer
 * returns PQLR_ERR_ARG and pqlr.ir.ops_select keeps the reference kernel for it.
 *
 * Loop order: one channel at a time -- its taps unpacked once, its bias, zero-point correction and
 * requantization prepared once -- then the output pixels.
 * 3x3 kernels (channel3x3): one output column at a time; the rows whose window lies inside the input
 * form one run, fully unrolled, the taps in registers, the zero point hoisted; with stride 1 the run
 * slides down the column loading one new input row (3 bytes) per pixel instead of 9
 * (run3x3_s1). A column on the left / right edge sets its padded taps to weight 0 and leaves them out
 * of the hoisted bias, so it runs the same loop. Edge rows are computed directly.
 * Other kernels: interior pixels with the zero point hoisted, edge pixels skip padded taps and
 * subtract the zero point (padding adds 0, as in the reference). */
#if defined(__GNUC__) && !defined(__clang__)
/* GCC's pre-allocation scheduler hoists the loads of the unrolled loops to the top and spills
 * the accumulators (RV32: up to +50% instructions); allocation-order code is what we want here. */
#pragma GCC optimize("no-schedule-insns")
#endif
#include "pqlr_nn_opt.h"

#define PQLR_DW_MAX_TAPS 64                    /* larger kernels read their taps from the row */

/* n pixels of one channel with a 3x3 kernel, one output column walked downwards (or one pixel):
 * acc = bh + sum_ij a_i[o_j] * k[3i + j], rows a_0..a_2 advancing by in_step, y by y_step.
 * Taps on padding have k = 0 and a clamped (readable) address; bh excludes them (see caller). */
PQLR_NOINLINE static void run3x3(const int8_t *a0, const int8_t *a1, const int8_t *a2, int32_t o1,
                                 int32_t o2, const int32_t *k, int32_t bh, const pqlr_rq *q,
                                 const pqlr_conv2d_params *p, int32_t n, int32_t in_step,
                                 int8_t *y, int32_t y_step)
{
    const int32_t k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6],
                  k7 = k[7], k8 = k[8];
    const int32_t zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    const int32_t m = q->m, qn = q->n, r = q->round, sh = q->sh;   /* locals: *y may alias *q */
    for (; n > 0; n--) {
        const int8_t *b0 = a0 + o1, *b1 = a1 + o1, *b2 = a2 + o1;
        int32_t acc = bh + a0[0] * k0 + b0[0] * k1 + a1[0] * k3 + b1[0] * k4 + a2[0] * k6 + b2[0] * k7;
        b0 = a0 + o2; b1 = a1 + o2; b2 = a2 + o2;
        acc += b0[0] * k2 + b1[0] * k5 + b2[0] * k8;
        int32_t v;
        if (sh) {                                       /* the mulh path (pqlr_nn_opt.h) */
            v = ((((int32_t)(((int64_t)acc * (int64_t)m) >> 32)) + r) >> sh) + zp;
            v = v < lo ? lo : (v > hi ? hi : v);
        } else {
            v = pqlr_requantize_out(acc, m, qn, zp, lo, hi);
        }
        *y = (int8_t)v;
        a0 += in_step; a1 += in_step; a2 += in_step;
        y += y_step;
    }
}

/* run3x3 for stride_h == 1: moving down one output row, the window's lower two input rows are the
 * next pixel's upper two, so each pixel loads one new row (3 bytes) instead of 9. The loop is
 * unrolled three times so that the three row registers rotate instead of being copied. */
PQLR_NOINLINE static void run3x3_s1(const int8_t *a0, int32_t o1, int32_t o2, int32_t rs,
                                    const int32_t *k, int32_t bh, const pqlr_rq *q,
                                    const pqlr_conv2d_params *p, int32_t n, int8_t *y, int32_t y_step)
{
    const int32_t k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6],
                  k7 = k[7], k8 = k[8];
    const int32_t zp = p->out_zp, lo = p->act_min, hi = p->act_max;
    const int32_t m = q->m, qn = q->n, r = q->round, sh = q->sh;   /* locals: *y may alias *q */
    int32_t u0 = a0[0], u1 = a0[o1], u2 = a0[o2];                  /* row oy + 0 */
    a0 += rs;
    int32_t v0 = a0[0], v1 = a0[o1], v2 = a0[o2];                  /* row oy + 1 */
    int32_t w0, w1, w2;
#define PQLR_PIXEL(R0, R1, R2, N0, N1, N2)                                                       \
    do {                                                                                         \
        a0 += rs;                                                                                \
        N0 = a0[0]; N1 = a0[o1]; N2 = a0[o2];                                                    \
        const int32_t acc = bh + R0##0 * k0 + R0##1 * k1 + R0##2 * k2 + R1##0 * k3 + R1##1 * k4 +  \
                            R1##2 * k5 + R2##0 * k6 + R2##1 * k7 + R2##2 * k8;                   \
        int32_t val;                                                                             \
        if (sh) {                                                                                \
            val = ((((int32_t)(((int64_t)acc * (int64_t)m) >> 32)) + r) >> sh) + zp;             \
            val = val < lo ? lo : (val > hi ? hi : val);                                         \
        } else {                                                                                 \
            val = pqlr_requantize_out(acc, m, qn, zp, lo, hi);                                   \
        }                                                                                        \
        *y = (int8_t)val;                                                                        \
        y += y_step;                                                                             \
    } while (0)
    for (; n >= 3; n -= 3) {
        PQLR_PIXEL(u, v, w, w0, w1, w2);        /* rows u v w; the new row goes into w */
        PQLR_PIXEL(v, w, u, u0, u1, u2);        /* rows v w u; the new row goes into u */
        PQLR_PIXEL(w, u, v, v0, v1, v2);        /* rows w u v; the new row goes into v */
    }
    if (n > 0)
        PQLR_PIXEL(u, v, w, w0, w1, w2);
    if (n > 1)
        PQLR_PIXEL(v, w, u, u0, u1, u2);
#undef PQLR_PIXEL
}

/* Channel c of a 3x3 depthwise layer, one output column at a time: the rows whose three window rows
 * are real go in one run (run3x3_s1 / run3x3) with the column's padded taps set to weight 0 and the
 * bias b - zp * sum(real weights), which gives sum (x - zp) w over the real taps exactly; the few
 * rows on the top / bottom edge are computed directly, skipping padded taps. */
static void channel3x3(const pqlr_conv2d_params *p, const int8_t *input, const int32_t *wt, int32_t b,
                       const pqlr_rq *q, int32_t c, int8_t *output)
{
    const int32_t ch = p->in_c, rs = p->in_w * ch, y_step = p->out_w * p->out_c;
    int32_t oy_lo = 0, oy_hi;
    while (oy_lo < p->out_h && oy_lo * p->stride_h - p->pad_top < 0)
        oy_lo++;
    for (oy_hi = oy_lo; oy_hi < p->out_h && oy_hi * p->stride_h - p->pad_top + 3 <= p->in_h;)
        oy_hi++;
    for (int32_t ox = 0; ox < p->out_w; ox++) {
        const int32_t ix0 = ox * p->stride_w - p->pad_left;
        int32_t off[3], cv[3], k[9], sum = 0;
        for (int32_t j = 0; j < 3; j++) {
            const int32_t ix = ix0 + j;
            cv[j] = ix >= 0 && ix < p->in_w;
            off[j] = (ix < 0 ? 0 : (ix >= p->in_w ? p->in_w - 1 : ix)) * ch + c;   /* readable */
            for (int32_t i = 0; i < 3; i++) {
                k[3 * i + j] = cv[j] ? wt[3 * i + j] : 0;
                sum += k[3 * i + j];
            }
        }
        if (oy_lo < oy_hi) {
            const int8_t *a0 = input + (oy_lo * p->stride_h - p->pad_top) * rs + off[0];
            int8_t *y = output + (oy_lo * p->out_w + ox) * p->out_c + c;
            if (p->stride_h == 1)
                run3x3_s1(a0, off[1] - off[0], off[2] - off[0], rs, k, b - p->in_zp * sum, q, p,
                          oy_hi - oy_lo, y, y_step);
            else
                run3x3(a0, a0 + rs, a0 + 2 * rs, off[1] - off[0], off[2] - off[0], k, b - p->in_zp * sum, q,
                       p, oy_hi - oy_lo, p->stride_h * rs, y, y_step);
        }
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            if (oy == oy_lo && oy_lo < oy_hi) {
                oy = oy_hi - 1;                                   /* done by the run */
                continue;
            }
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            int32_t acc = b;
            for (int32_t i = 0; i < 3; i++) {
                const int32_t iy = iy0 + i;
                if (iy < 0 || iy >= p->in_h)
                    continue;                                     /* padding: x - in_zp = 0 */
                const int8_t *x = input + iy * rs;
                for (int32_t j = 0; j < 3; j++)
                    if (cv[j])
                        acc += (x[off[j]] - p->in_zp) * wt[3 * i + j];
            }
            output[(oy * p->out_w + ox) * p->out_c + c] =
                (int8_t)pqlr_rq_apply(q, acc, p->out_zp, p->act_min, p->act_max);
        }
    }
}

PQLR_BODY static pqlr_status depthwise_opt(const pqlr_conv2d_params *p, const int8_t *input,
                                           const int8_t *weights, const int32_t *bias,
                                           const int32_t *multiplier, const int8_t *shift,
                                           int8_t *output)
{
    if (!p || !input || !weights || !multiplier || !shift || !output)
        return PQLR_ERR_ARG;
    if (!pqlr_conv2d_plain_params_ok(p, 1, INT8_MIN, INT8_MAX) ||
        !pqlr_quant_arrays_ok(multiplier, shift, p->n_quant, p->ch_begin, p->ch_end))
        return PQLR_ERR_ARG;
    const pqlr_conv2d_params pl = *p;             /* local: int8_t stores cannot alias it */
    p = &pl;
    const int32_t kh = p->kernel_h, kw = p->kernel_w, taps = kh * kw;
    const int32_t rb = pqlr_packed_row_bytes(taps, p->wbits);
    const int cached = taps <= PQLR_DW_MAX_TAPS;
    const int is3x3 = kh == 3 && kw == 3;
    /* output columns whose window lies inside the input: ox in [ox_lo, ox_hi) */
    int32_t ox_lo = 0, ox_hi = 0;
    while (ox_lo < p->out_w && ox_lo * p->stride_w - p->pad_left < 0)
        ox_lo++;
    for (ox_hi = ox_lo; ox_hi < p->out_w && ox_hi * p->stride_w - p->pad_left + kw <= p->in_w;)
        ox_hi++;
    for (int32_t c = p->ch_begin; c < p->ch_end; c++) {
        const int8_t *row = weights + (c - p->ch_begin) * rb;
        int32_t wt[PQLR_DW_MAX_TAPS];
        int32_t sum_w = 0;
        for (int32_t t = 0; t < (cached ? taps : 0); t++) {
            wt[t] = pqlr_weight_get(row, t, p->wbits);
            sum_w += wt[t];
        }
        if (!cached)
            sum_w = pqlr_row_sum(row, 0, taps, p->wbits);
        const int32_t b = bias ? bias[c] : 0, bh = b - p->in_zp * sum_w;   /* zp hoisted */
        const int32_t qi = p->n_quant == 1 ? 0 : c;
        const pqlr_rq q = pqlr_rq_make(multiplier[qi], shift[qi]);
        if (is3x3 && cached) {
            channel3x3(p, input, wt, b, &q, c, output);
            continue;
        }
        for (int32_t oy = 0; oy < p->out_h; oy++) {
            const int32_t iy0 = oy * p->stride_h - p->pad_top;
            const int row_in = iy0 >= 0 && iy0 + kh <= p->in_h;
            int32_t lo = ox_lo, hi = ox_hi;
            if (!row_in || !cached || lo >= hi)
                lo = hi = p->out_w;                               /* every pixel on the edge path */
            const int32_t ky0 = iy0 < 0 ? -iy0 : 0, ky1 = iy0 + kh > p->in_h ? p->in_h - iy0 : kh;
            for (int32_t ox = 0; ox < p->out_w; ox++) {
                const int32_t ix0 = ox * p->stride_w - p->pad_left;
                const int32_t kx0 = ix0 < 0 ? -ix0 : 0, kx1 = ix0 + kw > p->in_w ? p->in_w - ix0 : kw;
                const int inside = ox >= lo && ox < hi;
                const int32_t zp = inside ? 0 : p->in_zp;         /* hoisted inside, else per tap */
                int32_t acc = inside ? bh : b;
                for (int32_t ky = ky0; ky < ky1; ky++) {          /* real taps only: padding adds 0 */
                    const int8_t *x = input + ((iy0 + ky) * p->in_w + ix0 + kx0) * p->in_c + c;
                    if (cached) {
                        const int32_t *wk = wt + ky * kw, *we = wk + kx1;
                        for (wk += kx0; wk != we; wk++, x += p->in_c)
                            acc += (*x - zp) * *wk;
                    } else {
                        for (int32_t kx = kx0; kx < kx1; kx++, x += p->in_c)
                            acc += (*x - zp) * pqlr_weight_get(row, ky * kw + kx, p->wbits);
                    }
                }
                output[(oy * p->out_w + ox) * p->out_c + c] =
                    (int8_t)pqlr_rq_apply(&q, acc, p->out_zp, p->act_min, p->act_max);
            }
        }
    }
    return PQLR_OK;
}

/* Plain layers only (pqlr_conv2d_plain); a dilated layer is refused before anything is
 * written. depthwise_opt is the function as it was before dilation and groups existed (PQLR_BODY). */
pqlr_status pqlr_depthwise_conv2d_s8_opt(const pqlr_conv2d_params *p, const int8_t *input,
                                         const int8_t *weights, const int32_t *bias,
                                         const int32_t *multiplier, const int8_t *shift,
                                         int8_t *output)
{
    if (p && !pqlr_conv2d_plain(p, 1))
        return PQLR_ERR_ARG;
    return depthwise_opt(p, input, weights, bias, multiplier, shift, output);
}
