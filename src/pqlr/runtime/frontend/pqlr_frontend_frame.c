/* pqlr_frontend_frame.c: one audio frame (int16 PCM) -> one row of int8 model-input features.
 *
 * The only file that instantiates the generated tables (PQLR_FRONTEND_DEFINE_TABLES).
 * Units (see pqlr_frontend.h): x = pcm / 32768, so pcm * hann_q31 = x * w * 2^46; after the
 * normalising right shift s and the FFT exponent e, X = data * 2^(e + s - 46), and a mel energy is
 * M * 2^E with E = 2 (e + s - 46) + sP - 20 (sP: the filter's power shift, 20: Q20 weights).
 */
#define PQLR_FRONTEND_DEFINE_TABLES
#include "pqlr_frontend.h"

#define POWER_BITS 36   /* a filter's loudest bin keeps 36 bits; acc < 2^36 * sum(w_q20) < 2^63 */

static int64_t hann_q31(uint32_t n)     /* the periodic Hann window is symmetric: w[n] = w[win - n] */
{
    return pqlr_fe_window_q31[n <= PQLR_FE_WIN / 2 ? n : PQLR_FE_WIN - n];
}

static uint64_t bin_power(const int32_t *d, uint32_t k)   /* |X[k]|^2 < 2^62, packed real FFT */
{
    if (k == 0) return (uint64_t)((int64_t)d[0] * d[0]);                         /* X[0] real */
    if (k == PQLR_FE_NFFT / 2) return (uint64_t)((int64_t)d[1] * d[1]);          /* X[n/2] real */
    const int64_t re = d[2 * k], im = d[2 * k + 1];
    return (uint64_t)(re * re) + (uint64_t)(im * im);
}

static uint32_t bitlen64(uint64_t v)   /* number of significant bits, 0 for v = 0 */
{
    uint32_t n = 0;
    if (v >> 32) { n += 32; v >>= 32; }
    if (v >> 16) { n += 16; v >>= 16; }
    if (v >> 8) { n += 8; v >>= 8; }
    if (v >> 4) { n += 4; v >>= 4; }
    if (v >> 2) { n += 2; v >>= 2; }
    if (v >> 1) { n += 1; v >>= 1; }
    return n + (uint32_t)v;
}

/* log2(v * 2^e) in Q20, v > 0: leading-bit position + table lookup on the next 7 bits, linear
 * interpolation on the following 24 (max table error ~1.1e-5 in log2). */
static int32_t log2_q20(uint64_t v, int32_t e)
{
    const uint32_t nb = bitlen64(v);
    const uint64_t y = (v << (64 - nb)) << 1;        /* drop the leading 1: fraction in Q64 */
    const uint32_t idx = (uint32_t)(y >> 57);        /* top 7 fraction bits */
    const int64_t rem = (int64_t)((y >> 33) & 0xFFFFFF);   /* next 24 bits */
    const int64_t t0 = pqlr_fe_log2_q30[idx], t1 = pqlr_fe_log2_q30[idx + 1];
    const int64_t frac_q30 = t0 + (((t1 - t0) * rem + ((int64_t)1 << 23)) >> 24);
    const int32_t whole = (int32_t)nb - 1 + e;
    return whole * ((int32_t)1 << 20) + (int32_t)((frac_q30 + 512) >> 10);
}

/* log2(M * 2^E + log_floor) in Q20: both as 63-bit pseudo-floats (top bit 62), aligned and added. */
static int32_t log2_mel_q20(uint64_t m, int32_t e)
{
    uint64_t a = PQLR_FE_FLOOR_MANT;
    int32_t ea = PQLR_FE_FLOOR_EXP;
    if (m != 0) {
        const uint32_t up = 63 - bitlen64(m);        /* m < 2^63 by the accumulator bound */
        const uint64_t b = m << up;
        const int32_t eb = e - (int32_t)up;
        if (eb >= ea) {
            const uint32_t d = (uint32_t)(eb - ea);
            a = b + (d < 64 ? a >> d : 0);
            ea = eb;
        } else {
            const uint32_t d = (uint32_t)(ea - eb);
            a = a + (d < 64 ? b >> d : 0);
        }
    }
    return log2_q20(a, ea);
}

void pqlr_frontend_frame(const int16_t *frame, int8_t *out, int32_t *d)
{
    int32_t lg[PQLR_FE_N_MELS];          /* log2(mel + floor), Q20 */

    /* 1. window: pcm * hann_q31 = x * w * 2^46 (64-bit), then one shift puts the peak in [2^28, 2^29) */
    uint64_t peak = 0;
    for (uint32_t n = 0; n < PQLR_FE_WIN; ++n) {
        const int64_t v = (int64_t)frame[n] * hann_q31(n);
        const uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
        if (a > peak) peak = a;
    }
    for (uint32_t i = 0; i < PQLR_FE_NFFT; ++i) d[i] = 0;

    if (peak == 0) {
        for (uint32_t m = 0; m < PQLR_FE_N_MELS; ++m) lg[m] = log2_mel_q20(0, 0);   /* the floor */
    } else {
        const int32_t shift = (int32_t)bitlen64(peak) - 29;           /* right shift (< 0: left) */
        for (uint32_t n = 0; n < PQLR_FE_WIN; ++n) {
            const int64_t v = (int64_t)frame[n] * hann_q31(n);
            d[n] = shift > 0 ? (int32_t)((v + ((int64_t)1 << (shift - 1))) >> shift)
                                 : (int32_t)(v * ((int64_t)1 << -shift));
        }
        /* 2. real FFT with block floating point (packed: slot 0 holds X[0], X[n/2]) */
        const int32_t e = pqlr_rfft_q31(d, PQLR_FE_LOG2_NFFT, pqlr_fe_cos_q31);

        /* 3-5. per mel filter: power re^2 + im^2 shifted so the filter's loudest bin fits POWER_BITS
         * (full relative precision for quiet filters next to loud ones), Q20 triangle weights,
         * uint64 sum, then log2(sum * 2^E + floor) */
        const int32_t base_exp = 2 * (e + shift - 46) - 20;
        uint32_t w = 0;
        for (uint32_t m = 0; m < PQLR_FE_N_MELS; ++m) {
            const uint32_t k0 = pqlr_fe_mel_start[m], k1 = k0 + pqlr_fe_mel_len[m];
            uint64_t pmax = 0, acc = 0;
            for (uint32_t k = k0; k < k1; ++k) {
                const uint64_t p = bin_power(d, k);
                if (p > pmax) pmax = p;
            }
            int32_t sp = (int32_t)bitlen64(pmax) - POWER_BITS;
            if (sp < 0) sp = 0;
            for (uint32_t k = k0; k < k1; ++k, ++w) acc += (uint64_t)pqlr_fe_mel_w_q20[w] * (bin_power(d, k) >> sp);
            lg[m] = log2_mel_q20(acc, base_exp + sp);
        }
    }

    /* 6. projection to quantized features: (ln 2 / scale) * DCT rows (or the identity) */
    for (uint32_t c = 0; c < PQLR_FE_N_OUT; ++c) {
        int64_t acc = 0;
#if PQLR_FE_KIND_MFCC
        for (uint32_t m = 0; m < PQLR_FE_N_MELS; ++m) acc += (int64_t)pqlr_fe_proj[c][m] * lg[m];
#else
        acc = (int64_t)PQLR_FE_LOGMEL_MULT * lg[c];
#endif
        const int64_t q = (acc + ((int64_t)1 << (PQLR_FE_PROJ_SHIFT - 1))) >> PQLR_FE_PROJ_SHIFT;
        const int64_t v = q + PQLR_FE_ZERO_POINT;
        out[c] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
    }
}
