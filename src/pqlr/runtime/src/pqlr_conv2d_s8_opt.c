/* pqlr_conv2d_s8_opt.c: optimized 2-D convolution, int8 HWC activations, 8/4/2/1-bit packed weights;
 * bit-exact with pqlr_conv2d_s8 (same signature; see pqlr_nn_opt.h for the methods and proofs).
 *
 * Loop order: blocks of 4 output channels (their bias, zero-point correction and requantization
 * prepared once), then the output pixels in raster order, three at a time when all three windows
 * lie inside the input (pqlr_dot4x3_*: one run of kernel_w * in_c contiguous bytes per kernel row;
 * a 1x1 convolution is then a GEMM over (H*W) x C_in), else one at a time with the zero point
 * inside the loop and the window clipped to the input (padding adds 0). Channels left over after
 * the blocks of 4, and 2-/1-bit weights, run one channel at a time like the reference.
 * Plain layers only (dilation 1, groups 1: pqlr_conv2d_plain); others return PQLR_ERR_ARG and
 * pqlr.ir.ops_select keeps the reference kernel for them. */
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

/* Channels [c, c + 4): every output pixel. Interior pixels go in groups of g (3 for int8 weights,
 * 4 for int4: pqlr_dot4x4_w4 packs two pixels per register). */
#if defined(__GNUC__)
#define PQLR_SPECIALIZE __attribute__((always_inline))   /* one copy per constant g */
#else
#define PQLR_SPECIALIZE
#endif

static inline PQLR_SPECIALIZE void block4_g(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *w, int32_t rb,
                            const int32_t *bias, const int32_t *multiplier, const int8_t *shift,
                            int32_t c, int8_t *output, const int32_t g)
{
    const int32_t k = p->kernel_h * p->kernel_w * p->in_c, run = p->kernel_w * p->in_c;
    const int32_t row_step = p->in_w * p->in_c, n_px = p->out_h * p->out_w;
    int32_t b[4], bh[4];
    pqlr_rq q[4];
    for (int32_t j = 0; j < 4; j++) {
        const int32_t qi = p->n_quant == 1 ? 0 : c + j;
        b[j] = bias ? bias[c + j] : 0;
        bh[j] = b[j] - p->in_zp * pqlr_row_sum(w + j * rb, 0, k, p->wbits);   /* zp hoisted */
        q[j] = pqlr_rq_make(multiplier[qi], shift[qi]);
    }
    const int pointwise = k == p->in_c && p->stride_h == 1 && p->stride_w == 1 && p->pad_top == 0 &&
                          p->pad_left == 0;             /* 1x1, stride 1, no padding: a GEMM */
    int32_t oy = 0, ox = 0;                                     /* coordinates of pixel px */
    for (int32_t px = 0; px < n_px;) {
        int32_t o[4] = {-1, -1, -1, -1};
        if (pointwise && n_px >= g) {
            if (px + g > n_px) {              /* last group overlaps the previous: same values again */
                px = n_px - g;
                ox = px % p->out_w;
                oy = px / p->out_w;
            }
            for (int32_t i = 0; i < g; i++)
                o[i] = (px + i) * p->in_c;
        } else if (px + g <= n_px) {
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
            int32_t a[16];
            for (int32_t j = 0; j < 4; j++)
                for (int32_t i = 0; i < g; i++)
                    a[g * j + i] = bh[j];
            const int8_t *x0 = input + o[0], *x1 = input + o[1], *x2 = input + o[2], *x3 = input + o[g - 1];
            for (int32_t ky = 0; ky < p->kernel_h; ky++) {
                if (g == 4)
                    pqlr_dot4x4_w4(x0, x1, x2, x3, w, rb, ky * run, run, a);
                else
                    pqlr_dot4x3_w8(x0, x1, x2, w + ky * run, rb, run, a);
                x0 += row_step; x1 += row_step; x2 += row_step; x3 += row_step;
            }
            for (int32_t j = 0; j < 4; j++)
                pqlr_rq_store(&q[j], a + g * j, 1, g, p->out_zp, p->act_min, p->act_max,
                              output + px * p->out_c + c + j, p->out_c);
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

static void block4(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *w, int32_t rb,
                   const int32_t *bias, const int32_t *multiplier, const int8_t *shift, int32_t c,
                   int8_t *output)
{
    if (p->wbits == 4)                          /* g is a constant in each inlined copy */
        block4_g(p, input, w, rb, bias, multiplier, shift, c, output, 4);
    else
        block4_g(p, input, w, rb, bias, multiplier, shift, c, output, 3);
}

/* Short kernel rows (the 10x4 first conv on a 1-channel map: runs of 4) cost more in loop set-up
 * than in MACs. Then the windows of three pixels are gathered into stack buffers (padding stored
 * as in_zp, so every pixel is "interior" and the zero point stays hoisted) and each block of 4
 * channels is one K-long pqlr_dot4x3 call. Stack: 3 * 128 + 32 * 20 bytes. */
#define PQLR_GATHER_MAX_K 128
#define PQLR_GATHER_CH 32                       /* channels whose bias / requantization are cached */

static void gather(const pqlr_conv2d_params *p, const int8_t *input, int32_t px, int8_t *buf)
{
    const int32_t in_h = p->in_h, in_w = p->in_w, ch = p->in_c, kh = p->kernel_h, kw = p->kernel_w;
    const int32_t oy = px / p->out_w, ox = px % p->out_w;
    const int32_t iy0 = oy * p->stride_h - p->pad_top, ix0 = ox * p->stride_w - p->pad_left;
    const int32_t kx0 = ix0 < 0 ? -ix0 : 0, kx1 = ix0 + kw > in_w ? in_w - ix0 : kw;   /* real columns */
    const int8_t zp = (int8_t)p->in_zp;
    for (int32_t ky = 0; ky < kh; ky++) {
        const int32_t iy = iy0 + ky;
        int8_t *const row_end = buf + kw * ch;
        if (iy >= 0 && iy < in_h && kx0 < kx1) {
            for (int8_t *e = buf + kx0 * ch; buf != e;)
                *buf++ = zp;
            const int8_t *x = input + (iy * in_w + ix0 + kx0) * ch;
            for (int8_t *e = buf + (kx1 - kx0) * ch; buf != e;)
                *buf++ = *x++;
        }
        while (buf != row_end)
            *buf++ = zp;
    }
}

static void conv_gathered(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *weights,
                          int32_t rb, const int32_t *bias, const int32_t *multiplier,
                          const int8_t *shift, int32_t c_end, int8_t *output)
{
    const int32_t k = p->kernel_h * p->kernel_w * p->in_c, n_px = p->out_h * p->out_w;
    int8_t buf[3][PQLR_GATHER_MAX_K];
    int32_t bh[PQLR_GATHER_CH];
    pqlr_rq q[PQLR_GATHER_CH];
    for (int32_t c0 = p->ch_begin; c0 < c_end; c0 += PQLR_GATHER_CH) {
        const int32_t c1 = c_end - c0 < PQLR_GATHER_CH ? c_end : c0 + PQLR_GATHER_CH;
        for (int32_t c = c0; c < c1; c++) {
            const int32_t qi = p->n_quant == 1 ? 0 : c;
            const int8_t *row = weights + (c - p->ch_begin) * rb;
            bh[c - c0] = (bias ? bias[c] : 0) - p->in_zp * pqlr_row_sum(row, 0, k, p->wbits);
            q[c - c0] = pqlr_rq_make(multiplier[qi], shift[qi]);
        }
        for (int32_t px = 0; px < n_px; px += 3) {
            const int32_t n = n_px - px < 3 ? n_px - px : 3;   /* a short group repeats its last pixel */
            for (int32_t i = 0; i < 3; i++)
                gather(p, input, px + (i < n ? i : n - 1), buf[i]);
            for (int32_t c = c0; c < c1; c += 4) {
                const int8_t *w = weights + (c - p->ch_begin) * rb;
                int32_t a[12];
                for (int32_t j = 0; j < 4; j++)
                    a[3 * j] = a[3 * j + 1] = a[3 * j + 2] = bh[c - c0 + j];
                if (p->wbits == 8)
                    pqlr_dot4x3_w8(buf[0], buf[1], buf[2], w, rb, k, a);
                else
                    pqlr_dot4x3_w4(buf[0], buf[1], buf[2], w, rb, 0, k, a);
                for (int32_t j = 0; j < 4; j++)
                    pqlr_rq_store(&q[c - c0 + j], a + 3 * j, 1, n, p->out_zp, p->act_min, p->act_max,
                                  output + px * p->out_c + c + j, p->out_c);
            }
        }
    }
}

/* Channel c alone (leftover channels, 2-/1-bit weights): the reference's loop. */
static void channel1(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *row,
                     const int32_t *bias, const int32_t *multiplier, const int8_t *shift, int32_t c,
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

PQLR_BODY static pqlr_status conv2d_opt(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *weights,
                                        const int32_t *bias, const int32_t *multiplier, const int8_t *shift,
                                        int8_t *output)
{
    if (!p || !input || !weights || !multiplier || !shift || !output)
        return PQLR_ERR_ARG;
    if (!pqlr_conv2d_plain_params_ok(p, 0, INT8_MIN, INT8_MAX) ||
        !pqlr_quant_arrays_ok(multiplier, shift, p->n_quant, p->ch_begin, p->ch_end))
        return PQLR_ERR_ARG;
    /* a local copy: stores through int8_t *output could alias *p and force reloads of every field */
    const pqlr_conv2d_params pl = *p;
    p = &pl;
    const int32_t rb = pqlr_packed_row_bytes(p->kernel_h * p->kernel_w * p->in_c, p->wbits);
    int32_t c = p->ch_begin;
    const int32_t k = p->kernel_h * p->kernel_w * p->in_c;
    if ((p->wbits == 8 || p->wbits == 4) && p->kernel_w * p->in_c < 16 && k <= PQLR_GATHER_MAX_K &&
        p->in_zp >= INT8_MIN && p->in_zp <= INT8_MAX && p->ch_end - c >= 4) {
        const int32_t c_end = c + ((p->ch_end - c) & ~3);
        conv_gathered(p, input, weights, rb, bias, multiplier, shift, c_end, output);
        c = c_end;
    } else if (p->wbits == 8 || p->wbits == 4) {
        for (; c + 4 <= p->ch_end; c += 4)
            block4(p, input, weights + (c - p->ch_begin) * rb, rb, bias, multiplier, shift, c, output);
    }
    for (; c < p->ch_end; c++)
        channel1(p, input, weights + (c - p->ch_begin) * rb, bias, multiplier, shift, c, output);
    return PQLR_OK;
}

/* Plain layers only (pqlr_conv2d_plain); a dilated or grouped layer is refused before anything is
 * written. conv2d_opt is the function as it was before dilation and groups existed (PQLR_BODY). */
pqlr_status pqlr_conv2d_s8_opt(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *weights,
                               const int32_t *bias, const int32_t *multiplier, const int8_t *shift,
                               int8_t *output)
{
    if (p && !pqlr_conv2d_plain(p, 0))
        return PQLR_ERR_ARG;
    return conv2d_opt(p, input, weights, bias, multiplier, shift, output);
}
