/* pqlr_nn.h: integer CNN reference kernels (conv2d, depthwise conv2d, fully connected,
 * requantize) for int8 ("s8") and int16 ("s16") activations, and the helpers every kernel family
 * shares (packed weights, requantization with clamp, parameter checks). Element-wise ops are in
 * pqlr_elem.h, pooling in pqlr_pool.h, data movement in pqlr_shape.h.
 *
 * The NumPy oracle is src/pqlr/ir/ops_nn.py; every kernel here is bit-exact to it.
 * Reference kernels: plain loops, "not performant by design". Faster variants keep the same
 * parameter structs and signatures under specialized names (e.g. pqlr_fully_connected_s8_w4).
 * No malloc, no floating point, no scratch (none of these kernels needs a buffer; the in-place
 * variants at the end take caller-owned scratch).
 *
 * Layouts (no batch dimension):
 *   feature maps HWC, int8_t (s8) or int16_t (s16); a (T, K) token matrix is row-major.
 *   A 1-D feature map (T, C) is the map (T, 1, C) (in_w = out_w = 1), a vector (C,) is (1, 1, C).
 *   weights: one packed row per output channel, row stride pqlr_packed_row_bytes(K, wbits) bytes,
 *   values fetched with pqlr_weight_get() (packing rule and worked examples in pqlr_types.h):
 *     conv2d            K = kernel_h * kernel_w * cg, row order (kh, kw, ci), cg = in_c / groups:
 *                       output channel c is in group g = c / (out_c / groups) and reads input
 *                       channels g * cg .. g * cg + cg - 1 (groups 1: cg = in_c, every channel)
 *     depthwise_conv2d  K = kernel_h * kernel_w,        row c holds the taps (kh, kw) of channel c
 *     fully_connected   K = in_features
 *   bias: int32 per output channel, or NULL for none.
 *   multiplier: int32, shift: int8 arrays of length n_quant (1 = per tensor, or out channels).
 *
 * Value ranges:
 *   s8 activations [-128, 127] (4-bit activations are int8 values in [-8, 7], clamped by
 *   act_min/act_max); s16 activations [-32768, 32767], zero point 0 in practice.
 *   weights: wbits 8 [-128, 127], 4 [-8, 7], 2 [-2, 1], 1 {-1, +1}.
 *   multiplier m in [0, 2^31), shift n in [1, 62]: real multiplier = m / 2^n.
 *
 * Arithmetic (one output value):
 *   acc = bias[c] + sum (x - in_zp) * w            int32; padding reads as in_zp, adds 0
 *   y   = clamp(((int64)acc * m + 2^(n-1)) >> n) + out_zp, act_min, act_max)   (64-bit, no wrap)
 * The int32 accumulator cannot overflow when |bias| + K * (2^in_bits - 1) * max|w| < 2^31
 * (primitives.accumulator_bound); the Python side refuses layers that break this.
 *
 * Weight tiles: conv2d, depthwise_conv2d and fully_connected compute only the output channels
 * [ch_begin, ch_end). `weights` points at the packed row of channel ch_begin (e.g. a tile buffer
 * holding rows ch_begin..ch_end-1); bias/multiplier/shift are indexed by absolute channel and
 * the output is the whole tensor (only those channels are written). Untiled: 0, out_c.
 *
 * All kernels return PQLR_ERR_ARG on a NULL pointer, an impossible shape or parameter
 * (checked before anything is written), PQLR_OK otherwise.
 */
#ifndef PQLR_NN_H
#define PQLR_NN_H

#include "pqlr_types.h"

/* ------------------------------------------------------------------ shared helpers */

/* PQLR_NOINLINE: a helper kept out of line (the blocked loops of pqlr_nn_opt.h, the general
 * dilation/groups loops of the reference convolutions).
 * PQLR_BODY: the body of a convolution kernel that its public function only dispatches to (see
 * pqlr_conv2d_plain below): never inlined, cloned or specialised (GCC noipa), so it compiles to
 * the instructions the public function compiled to before it became a dispatcher. */
#if defined(__GNUC__)
#define PQLR_NOINLINE __attribute__((noinline, unused))
#else
#define PQLR_NOINLINE
#endif
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 8
#define PQLR_BODY __attribute__((noinline, noipa))
#elif defined(__GNUC__)
#define PQLR_BODY __attribute__((noinline))
#else
#define PQLR_BODY
#endif

/* Bytes of one packed weight row of k values at wbits bits (rows padded to whole bytes). */
static inline int32_t pqlr_packed_row_bytes(int32_t k, int32_t wbits)
{
    return (k * wbits + 7) / 8;
}

/* Weight i of a packed row (see pqlr_types.h): int4 row {1, -2, 7} is bytes {0xE1, 0x07},
 * so pqlr_weight_get(row, 1, 4) = sign-extended high nibble of 0xE1 = 0xE -> -2. */
static inline int32_t pqlr_weight_get(const int8_t *row, int32_t i, int32_t wbits)
{
    const uint8_t *r = (const uint8_t *)row;
    switch (wbits) {
    case 8:
        return (int32_t)row[i];
    case 4:
        return (int32_t)(((r[i >> 1] >> ((i & 1) * 4)) & 0xF) ^ 0x8) - 0x8;
    case 2:
        return (int32_t)(((r[i >> 2] >> ((i & 3) * 2)) & 0x3) ^ 0x2) - 0x2;
    default: /* 1 bit: 1 -> +1, 0 -> -1 */
        return ((r[i >> 3] >> (i & 7)) & 1) ? 1 : -1;
    }
}

/* sum over i < n of (x[i] - zp) * weight (w0 + i) of a packed row; x contiguous (int8 / int16).
 * The bit-width is tested once per row, not per weight: one loop per width, so the weight fetch
 * inlines to a constant form. |result| <= accumulator bound. One definition, two input types. */
#define PQLR_DOT_LOOP(BITS)                                                   \
    for (int32_t i = 0; i < n; i++)                                           \
        acc += ((int32_t)x[i] - zp) * pqlr_weight_get(row, w0 + i, (BITS));   \
    break
#define PQLR_DEFINE_DOT(NAME, IN_T)                                           \
    static inline int32_t NAME(const IN_T *x, int32_t zp, const int8_t *row,  \
                               int32_t w0, int32_t n, int32_t wbits)          \
    {                                                                         \
        int32_t acc = 0;                                                      \
        switch (wbits) {                                                      \
        case 8: PQLR_DOT_LOOP(8);                                             \
        case 4: PQLR_DOT_LOOP(4);                                             \
        case 2: PQLR_DOT_LOOP(2);                                             \
        default: PQLR_DOT_LOOP(1);                                            \
        }                                                                     \
        return acc;                                                           \
    }
PQLR_DEFINE_DOT(pqlr_dot_s8, int8_t)
PQLR_DEFINE_DOT(pqlr_dot_s16, int16_t)
#undef PQLR_DEFINE_DOT
#undef PQLR_DOT_LOOP

static inline int pqlr_wbits_ok(int32_t wbits)
{
    return wbits == 8 || wbits == 4 || wbits == 2 || wbits == 1;
}

static inline int pqlr_quant_ok(int32_t m, int32_t n)
{
    return m >= 0 && n >= 1 && n <= 62;
}

/* clamp(((int64)acc * m + 2^(n-1)) >> n) + zp, lo, hi), all in 64 bits (never wraps). */
static inline int32_t pqlr_requantize_out(int32_t acc, int32_t m, int32_t n, int32_t zp,
                                          int32_t lo, int32_t hi)
{
    int64_t v = (((int64_t)acc * (int64_t)m + ((int64_t)1 << (n - 1))) >> n) + (int64_t)zp;
    return (int32_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* ------------------------------------------------------------------ parameter structs
 * Every field is int32_t, in the order listed by ops_nn.STRUCT_FIELDS (a test checks). */

/* conv2d and depthwise_conv2d (depthwise: in_c == out_c == groups, channel multiplier 1).
 * Tap (kh, kw) of output pixel (oy, ox) reads input pixel
 *     (oy * stride_h - pad_top + kh * dilation_h, ox * stride_w - pad_left + kw * dilation_w)
 * (outside the input: padding, reads as in_zp, adds 0), so
 *     out_h = (in_h + pad_top + pad_bottom - dilation_h * (kernel_h - 1) - 1) / stride_h + 1
 * and likewise out_w (PyTorch's conv2d). dilation_h, dilation_w, groups come last so that the
 * fields before them keep the offsets they had before dilation and groups existed. */
typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t kernel_h, kernel_w;
    int32_t stride_h, stride_w;
    int32_t pad_top, pad_left, pad_bottom, pad_right;
    int32_t wbits;                  /* 8, 4, 2 or 1 */
    int32_t in_zp, out_zp;
    int32_t act_min, act_max;       /* output clamp (ReLU / ReLU6 / 4-bit range) */
    int32_t n_quant;                /* 1 or out_c */
    int32_t ch_begin, ch_end;       /* output channels computed (weight tile) */
    int32_t dilation_h, dilation_w; /* >= 1; 1 = plain convolution */
    int32_t groups;                 /* divides in_c and out_c; depthwise_conv2d: groups == in_c */
} pqlr_conv2d_params;

/* fully_connected over `rows` independent rows (tokens): (rows, in_features) -> (rows, out_features);
 * an input of any rank (..., in_features) has rows = the product of its other dimensions. */
typedef struct {
    int32_t rows, in_features, out_features;
    int32_t wbits;
    int32_t in_zp, out_zp;
    int32_t act_min, act_max;
    int32_t n_quant;                /* 1 or out_features */
    int32_t ch_begin, ch_end;
} pqlr_fully_connected_params;

/* requantize: y = pqlr_requantize_out(x - in_zp, multiplier, shift, out_zp, act_min, act_max) */
typedef struct {
    int32_t size;
    int32_t in_zp, out_zp;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
} pqlr_requantize_params;

/* ------------------------------------------------------------------ argument checks */

/* A plain layer: no dilation, and groups 1 (conv2d) or in_c (depthwise_conv2d, its only valid
 * value). Every convolution kernel's public function tests this first: a plain layer runs the
 * kernel's body as it was before dilation and groups existed (PQLR_BODY, with the check below
 * unchanged), so plain layers retire the same instructions as before plus this test; any other
 * layer runs the reference kernels' general loop, and the optimized and in-place kernels
 * refuse it (PQLR_ERR_ARG; pqlr.ir.ops_select and pqlr.deploy.plan never pick them for it). */
static inline int pqlr_conv2d_plain(const pqlr_conv2d_params *p, int depthwise)
{
    return p->dilation_h == 1 && p->dilation_w == 1 && p->groups == (depthwise ? p->in_c : 1);
}

/* Shape/parameter check of a PLAIN layer ([lo, hi] is the storage range), word for word the
 * check from before dilation and groups existed: complete for a layer pqlr_conv2d_plain accepts. */
static inline int pqlr_conv2d_plain_params_ok(const pqlr_conv2d_params *p, int depthwise, int32_t lo,
                                              int32_t hi)
{
    if (p->in_h < 1 || p->in_w < 1 || p->in_c < 1 || p->out_h < 1 || p->out_w < 1 || p->out_c < 1)
        return 0;
    if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1)
        return 0;
    if (p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0)
        return 0;
    if (p->in_h + p->pad_top + p->pad_bottom < p->kernel_h ||
        p->in_w + p->pad_left + p->pad_right < p->kernel_w)
        return 0;
    if (p->out_h != (p->in_h + p->pad_top + p->pad_bottom - p->kernel_h) / p->stride_h + 1 ||
        p->out_w != (p->in_w + p->pad_left + p->pad_right - p->kernel_w) / p->stride_w + 1)
        return 0;
    if (depthwise && p->in_c != p->out_c)
        return 0;
    if (!pqlr_wbits_ok(p->wbits) || (p->n_quant != 1 && p->n_quant != p->out_c))
        return 0;
    if (p->ch_begin < 0 || p->ch_begin >= p->ch_end || p->ch_end > p->out_c)
        return 0;
    return lo <= p->act_min && p->act_min <= p->act_max && p->act_max <= hi;
}

/* Shape/parameter check of ANY layer, plain or dilated / grouped. The padded and the dilated
 * kernel extents are formed in 64 bits (absurd field values are refused, never overflowed), the
 * division stays 32-bit (no libgcc call on RV32). */
PQLR_NOINLINE static int pqlr_conv2d_params_ok(const pqlr_conv2d_params *p, int depthwise, int32_t lo,
                                               int32_t hi)
{
    if (p->in_h < 1 || p->in_w < 1 || p->in_c < 1 || p->out_h < 1 || p->out_w < 1 || p->out_c < 1)
        return 0;
    if (p->kernel_h < 1 || p->kernel_w < 1 || p->stride_h < 1 || p->stride_w < 1 ||
        p->dilation_h < 1 || p->dilation_w < 1)
        return 0;
    if (p->pad_top < 0 || p->pad_left < 0 || p->pad_bottom < 0 || p->pad_right < 0)
        return 0;
    if (p->groups < 1 || p->in_c % p->groups != 0 || p->out_c % p->groups != 0 ||
        (depthwise && (p->in_c != p->out_c || p->groups != p->in_c)))
        return 0;
    /* the last row / column a window may start at, 0-based in the padded input */
    const int64_t span_h = (int64_t)p->in_h + p->pad_top + p->pad_bottom -
                           (int64_t)p->dilation_h * (p->kernel_h - 1) - 1;
    const int64_t span_w = (int64_t)p->in_w + p->pad_left + p->pad_right -
                           (int64_t)p->dilation_w * (p->kernel_w - 1) - 1;
    if (span_h < 0 || span_w < 0 || span_h > INT32_MAX || span_w > INT32_MAX)
        return 0;                                 /* dilated kernel larger than the padded input */
    if (p->out_h != (int32_t)span_h / p->stride_h + 1 || p->out_w != (int32_t)span_w / p->stride_w + 1)
        return 0;
    if (!pqlr_wbits_ok(p->wbits) || (p->n_quant != 1 && p->n_quant != p->out_c))
        return 0;
    if (p->ch_begin < 0 || p->ch_begin >= p->ch_end || p->ch_end > p->out_c)
        return 0;
    return lo <= p->act_min && p->act_min <= p->act_max && p->act_max <= hi;
}

/* Every multiplier/shift used by channels [ch_begin, ch_end) is valid. */
static inline int pqlr_quant_arrays_ok(const int32_t *multiplier, const int8_t *shift,
                                       int32_t n_quant, int32_t ch_begin, int32_t ch_end)
{
    for (int32_t c = ch_begin; c < ch_end; c++) {
        const int32_t q = n_quant == 1 ? 0 : c;
        if (!pqlr_quant_ok(multiplier[q], shift[q]))
            return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------ kernels */

pqlr_status pqlr_conv2d_s8(const pqlr_conv2d_params *p, const int8_t *input, const int8_t *weights,
                           const int32_t *bias, const int32_t *multiplier, const int8_t *shift,
                           int8_t *output);
pqlr_status pqlr_conv2d_s16(const pqlr_conv2d_params *p, const int16_t *input, const int8_t *weights,
                            const int32_t *bias, const int32_t *multiplier, const int8_t *shift,
                            int16_t *output);

pqlr_status pqlr_depthwise_conv2d_s8(const pqlr_conv2d_params *p, const int8_t *input,
                                     const int8_t *weights, const int32_t *bias,
                                     const int32_t *multiplier, const int8_t *shift, int8_t *output);
pqlr_status pqlr_depthwise_conv2d_s16(const pqlr_conv2d_params *p, const int16_t *input,
                                      const int8_t *weights, const int32_t *bias,
                                      const int32_t *multiplier, const int8_t *shift, int16_t *output);

pqlr_status pqlr_fully_connected_s8(const pqlr_fully_connected_params *p, const int8_t *input,
                                    const int8_t *weights, const int32_t *bias,
                                    const int32_t *multiplier, const int8_t *shift, int8_t *output);
pqlr_status pqlr_fully_connected_s16(const pqlr_fully_connected_params *p, const int16_t *input,
                                     const int8_t *weights, const int32_t *bias,
                                     const int32_t *multiplier, const int8_t *shift, int16_t *output);

/* requantize between storage types: _s8 and _s16 keep the type, _s8_s16 reads int8 and writes
 * int16, _s16_s8 reads int16 and writes int8. */
pqlr_status pqlr_requantize_s8(const pqlr_requantize_params *p, const int8_t *input, int8_t *output);
pqlr_status pqlr_requantize_s16(const pqlr_requantize_params *p, const int16_t *input, int16_t *output);
pqlr_status pqlr_requantize_s8_s16(const pqlr_requantize_params *p, const int8_t *input,
                                   int16_t *output);
pqlr_status pqlr_requantize_s16_s8(const pqlr_requantize_params *p, const int16_t *input,
                                   int8_t *output);

/* ------------------------------------------------------------------ in-place kernels (s8)
 * Same parameter struct, arguments and results as the reference kernel, plus caller-owned
 * `scratch` (size from the matching _get_buffer_size); `output` may equal `input` (the arena
 * planner then gives both tensors one buffer). Used when pqlr.deploy.plan runs a layer in place.
 *
 *   pqlr_conv2d_1x1_inplace_s8         kernel 1x1, stride 1, no padding, all output channels
 *                                      (ch_begin 0, ch_end out_c), dilation 1, groups 1;
 *                                      scratch out_c bytes.
 *                                      Shared buffer: in_h * in_w * max(in_c, out_c) bytes.
 *   pqlr_depthwise_conv2d_inplace_s8   stride 1, dilation 1, out_h == in_h, out_w == in_w (e.g.
 *                                      3x3 pad 1), channel tiles allowed; scratch (pad_top + 1) rows of
 *                                      in_w * in_c bytes (3x3 pad 1: 2 rows).
 * Both take plain layers only (pqlr_conv2d_plain: dilation 1, conv2d groups 1), tested before
 * the shape conditions below. How each stays correct in place is explained in its .c file. */

static inline int pqlr_conv2d_1x1_inplace_ok(const pqlr_conv2d_params *p)
{
    return p->kernel_h == 1 && p->kernel_w == 1 && p->stride_h == 1 && p->stride_w == 1 &&
           p->pad_top == 0 && p->pad_left == 0 && p->pad_bottom == 0 && p->pad_right == 0 &&
           p->ch_begin == 0 && p->ch_end == p->out_c;
}

static inline int32_t pqlr_conv2d_1x1_inplace_s8_get_buffer_size(const pqlr_conv2d_params *p)
{
    return p->out_c;
}

static inline int pqlr_depthwise_conv2d_inplace_ok(const pqlr_conv2d_params *p)
{
    return p->stride_h == 1 && p->stride_w == 1 && p->out_h == p->in_h && p->out_w == p->in_w &&
           p->pad_top + p->pad_bottom == p->kernel_h - 1 && p->pad_left + p->pad_right == p->kernel_w - 1;
}

static inline int32_t pqlr_depthwise_conv2d_inplace_s8_get_buffer_size(const pqlr_conv2d_params *p)
{
    return (p->pad_top + 1) * p->in_w * p->in_c;
}

pqlr_status pqlr_conv2d_1x1_inplace_s8(const pqlr_conv2d_params *p, const int8_t *input,
                                       const int8_t *weights, const int32_t *bias,
                                       const int32_t *multiplier, const int8_t *shift,
                                       int8_t *output, int8_t *scratch);
pqlr_status pqlr_depthwise_conv2d_inplace_s8(const pqlr_conv2d_params *p, const int8_t *input,
                                             const int8_t *weights, const int32_t *bias,
                                             const int32_t *multiplier, const int8_t *shift,
                                             int8_t *output, int8_t *scratch);
/* ------------------------------------------------------------------ end of in-place kernels */

#endif /* PQLR_NN_H */
