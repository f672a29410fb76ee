/* pqlr_conv2d_s8_opt.c: optimized 2-D convolution, int8 HWC activations, 8/4/2/1-bit packed weights;
 * bit-exact with pqlr_conv2d_s8 (same signature; see pqlr_nn_opt.h for the methods and proofs).
 *
 * Loop order: blocks of 4 output channels (their bias, zero-point correction and requantization
 * prepared once), then the output pixels in raster order, three at a time when all three windows
 * lie inside the input (pqlr_dot4x3_*: one run of kernel_w * in_c contiguous bytes per kernel row;
 * a 1x1 convolution is then a GEMM over (H*W) x C_in), else one at a time with the zero point
 * inside the loop and the window clipped to the input (padding adds 0). Channels left over after
 * the blocks of 4, and 2-/1-bit weights, run one channel at a time like the reference. */
#if defined(__GNUC__) && !defined(__clang__)
/* GCC's pre-allocation scheduler hoists all loads of the unrolled 4x3 block to the top and spills
 * the accumulators (RV32: +50% instructions); allocation-order code is what we want here. */
#pragma GCC optimize("no-schedule-insns")
#endif
#include "pqlr_nn_opt.h"

/* Output pixel (oy, ox) -> input offset of its window origin, or -1 if the window reads padding. */
static int32_t window_origin(const pqlr_conv2d_params *p, int32_t oy, int32_t ox)
{
    const int32_t iy = oy * p->stride_h - p->pad_top, ix = ox * p->stride_w - p->pad_left;
    if (iy < 0 || ix < 0 || iy + p->kernel_h > p->in_h || ix + p->kernel_w > p->in_w)
        return -1;
    return (iy * p->in_w + ix) * p->in_c;
}

/* One pixel, 4 channels, zero point inside: a[j] += sum over the window's real taps. */
static void edge_pixel4(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *w,
                        int32_t rb, int32_t oy, int32_t ox, int32_t *a)
{
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int32_t kx0 = ix0 < 0 ? -ix0 : 0;
    const int32_t kx1 = ix0 + p->kernel_w > p->in_w ? p->in_w - ix0 : p->kernel_w;
    if (kx1 <= kx0)
        return;
    for (int32_t ky = 0; ky < p->kernel_h; ky++) {
        const int32_t iy = iy0 + ky;
        if (iy < 0 || iy >= p->in_h)
            continue;                                           /* padding: x - in_zp = 0 */
        const int8_t *x = input + (iy * p->in_w + ix0 + kx0) * p->in_c;
        pqlr_dot4x1(x, p->in_zp, w, rb, (ky * p->kernel_w + kx0) * p->in_c, (kx1 - kx0) * p->in_c,
                    p->wbits, a);
    }
}

/* Channels [c, c + 4): every output pixel. Interior pixels go in groups of g (3; 2 for tall int8
 * kernels, whose kernel rows run inside one pqlr_dot4x2_rows_w8 call). */
static void block4(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *w, int32_t rb,
                   const int32_t *bias, const int32_t *multiplier, const int32_t *shift, int32_t c,
                   int8_t *output)
{
    const int32_t k = p->kernel_h * p->kernel_w * p->in_c, run = p->kernel_w * p->in_c;
    const int32_t row_step = p->in_w * p->in_c, n_px = p->out_h * p->out_w;
    const int32_t g = p->wbits == 8 && p->kernel_h > 1 ? 2 : 3;
    int32_t b[4], bh[4];
    pqlr_rq q[4];
    for (int32_t j = 0; j < 4; j++) {
        const int32_t qi = p->n_quant == 1 ? 0 : c + j;
        b[j] = bias ? bias[c + j] : 0;
        bh[j] = b[j] - p->in_zp * pqlr_row_sum(w + j * rb, 0, k, p->wbits);   /* zp hoisted */
        q[j] = pqlr_rq_make(multiplier[qi], shift[qi]);
    }
    int32_t oy = 0, ox = 0;                                     /* coordinates of pixel px */
    for (int32_t px = 0; px < n_px;) {
        int32_t o[3] = {-1, -1, -1};
        if (px + g <= n_px) {
            int32_t y = oy, x = ox;
            for (int32_t i = 0; i < g; i++) {
                o[i] = window_origin(p, y, x);
                if (o[i] < 0)
                    break;
                if (++x == p->out_w) {
                    x = 0;
                    y++;
                }
            }
        }
        if (o[g - 1] >= 0) {                                    /* g interior pixels */
            int32_t a[12];
            for (int32_t j = 0; j < 4; j++)
                for (int32_t i = 0; i < g; i++)
                    a[g * j + i] = bh[j];
            const int8_t *x0 = input + o[0], *x1 = input + o[1], *x2 = input + o[g - 1];
            if (g == 2) {
                pqlr_dot4x2_rows_w8(x0, x1, row_step, w, rb, run, p->kernel_h, a);
            } else {
                for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                    if (p->wbits == 8)
                        pqlr_dot4x3_w8(x0, x1, x2, w + ky * run, rb, run, a);
                    else
                        pqlr_dot4x3_w4(x0, x1, x2, w, rb, ky * run, run, a);
                    x0 += row_step; x1 += row_step; x2 += row_step;
                }
            }
            for (int32_t i = 0; i < g; i++) {
                int8_t *y = output + (px + i) * p->out_c + c;
                for (int32_t j = 0; j < 4; j++)
                    y[j] = (int8_t)pqlr_rq_apply(&q[j], a[g * j + i], p->out_zp, p->act_min, p->act_max);
            }
            px += g;
            ox += g;
            while (ox >= p->out_w) {
                ox -= p->out_w;
                oy++;
            }
            continue;
        }
        int32_t a[4] = {b[0], b[1], b[2], b[3]};               /* one pixel, zero point inside */
        edge_pixel4(p, input, w, rb, oy, ox, a);
        int8_t *y = output + px * p->out_c + c;
        for (int32_t j = 0; j < 4; j++)
            y[j] = (int8_t)pqlr_rq_apply(&q[j], a[j], p->out_zp, p->act_min, p->act_max);
        px++;
        if (++ox == p->out_w) {
            ox = 0;
            oy++;
        }
    }
}

/* Channel c alone (leftover channels, 2-/1-bit weights): the reference's loop. */
static void channel1(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *row,
                     const int32_t *bias, const int32_t *multiplier, const int32_t *shift, int32_t c,
                     int8_t *output)
{
    const int32_t qi = p->n_quant == 1 ? 0 : c;
    const pqlr_rq q = pqlr_rq_make(multiplier[qi], shift[qi]);
    for (int32_t oy = 0; oy < p->out_h; oy++) {
        for (int32_t ox = 0; ox < p->out_w; ox++) {
            int32_t acc = bias ? bias[c] : 0;
            for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                const int32_t iy = oy * p->stride_h - p->pad_top + ky;
                if (iy < 0 || iy >= p->in_h)
                    continue;
                for (int32_t kx = 0; kx < p->kernel_w; kx++) {
                    const int32_t ix = ox * p->stride_w - p->pad_left + kx;
                    if (ix < 0 || ix >= p->in_w)
                        continue;
                    acc += pqlr_dot_s8(input + (iy * p->in_w + ix) * p->in_c, p->in_zp, row,
                                       (ky * p->kernel_w + kx) * p->in_c, p->in_c, p->wbits);
                }
            }
            output[(oy * p->out_w + ox) * p->out_c + c] =
                (int8_t)pqlr_rq_apply(&q, acc, p->out_zp, p->act_min, p->act_max);
        }
    }
}

pqlr_status pqlr_conv2d_s8_opt(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *weights,
                               const int32_t *bias, const int32_t *multiplier, const int32_t *shift,
                               int8_t *output)
{
    if (!p || !input || !weights || !multiplier || !shift || !output)
        return PQLR_ERR_ARG;
    if (!pqlr_conv2d_params_ok(p, 0, INT8_MIN, INT8_MAX) ||
        !pqlr_quant_arrays_ok(multiplier, shift, p->n_quant, p->ch_begin, p->ch_end))
        return PQLR_ERR_ARG;
    /* a local copy: stores through int8_t *output could alias *p and force reloads of every field */
    const pqlr_conv2d_params pl = *p;
    p = &pl;
    const int32_t rb = pqlr_packed_row_bytes(p->kernel_h * p->kernel_w * p->in_c, p->wbits);
    int32_t c = p->ch_begin;
    if (p->wbits == 8 || p->wbits == 4) {
        for (; c + 4 <= p->ch_end; c += 4)
            block4(p, input, weights + (c - p->ch_begin) * rb, rb, bias, multiplier, shift, c, output);
    }
    for (; c < p->ch_end; c++)
        channel1(p, input, weights + (c - p->ch_begin) * rb, bias, multiplier, shift, c, output);
    return PQLR_OK;
}
