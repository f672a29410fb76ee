/* pqlr_frontend.h: fixed-point MFCC / log-mel audio frontend (int16 PCM -> int8 model input).
 *
 * Computes, in integers only, what src/pqlr/data/features.py (`features_numpy`) computes in float,
 * then quantizes it to the model's int8 input exactly like pqlr.primitives.quantize_act:
 *     out = clamp(floor(feature / scale + 0.5) + zero_point, -128, 127)
 * Steps per frame (win samples, one every hop):
 *   1. x[n] * hann[n]          int16 * Q31 (half table, symmetric) -> int64, then one rounding shift
 *                               to int32 with max |x| in [2^28, 2^29)
 *   2. real FFT                 n/2-point radix-2 complex FFT + split step (pqlr_rfft_q31), int32
 *                               data, Q31 twiddles, block floating point: before each stage the
 *                               block is shifted right just enough to keep max |v| < 2^29 (no overflow,
 *                               full precision for quiet and loud frames alike); exponent tracked
 *   3. power re^2 + im^2        uint64, per mel filter shifted so its loudest bin fits 36 bits
 *   4. mel = sum fb[k] * P[k]   Q20 triangles, uint64 accumulator, value = M * 2^E (E per filter)
 *   5. log2(mel + log_floor)    pseudo-float add of the floor, log2 = leading-bit position plus a
 *                               129-entry Q30 table with linear interpolation, result Q20
 *   6. projection               (ln 2 / scale) * DCT-II rows (or the identity for log-mel) as int32
 *                               Q(PQLR_FE_PROJ_SHIFT - 20), int64 accumulate, round half up, + zp
 * All constants come from the generated pqlr_frontend_tables.h (pqlr.deploy.frontend, from a
 * FeatureConfig, the input scale and zero point). No malloc, no floating point, C99.
 *
 * Streaming: pqlr_frontend_push() takes one hop of new samples; once ceil(win/hop) hops are in, every
 * push completes one frame (frame t covers samples [t*hop, t*hop + win), as in the Python reference)
 * and appends it to a ring of the last PQLR_FE_N_FRAMES frames. pqlr_frontend_window() copies the
 * ring out oldest-first as the (n_frames, n_features) model input.
 */
#ifndef PQLR_FRONTEND_H
#define PQLR_FRONTEND_H

#include <stdint.h>
#include "pqlr_types.h"
#include "pqlr_frontend_tables.h"

/* samples kept for streaming: the smallest whole number of hops that covers one window */
#define PQLR_FE_BUF_HOPS    ((PQLR_FE_WIN + PQLR_FE_HOP - 1) / PQLR_FE_HOP)
#define PQLR_FE_BUF_SAMPLES (PQLR_FE_BUF_HOPS * PQLR_FE_HOP)
#define PQLR_FE_FRAME_BYTES PQLR_FE_N_OUT                       /* int8 features per frame */
#define PQLR_FE_WINDOW_BYTES (PQLR_FE_N_FRAMES * PQLR_FE_N_OUT) /* one model input */

typedef struct {
    int32_t  fft[PQLR_FE_NFFT];                     /* scratch: real FFT in place */
    int16_t  samples[PQLR_FE_BUF_SAMPLES];          /* newest PQLR_FE_BUF_SAMPLES samples, oldest first */
    int8_t   frames[PQLR_FE_N_FRAMES][PQLR_FE_N_OUT]; /* ring of quantized feature frames */
    int8_t   silence[PQLR_FE_N_OUT];                /* features of an all-zero frame (ring filler) */
    uint32_t filled;                                /* hops in `samples` (saturates at BUF_HOPS) */
    uint32_t head;                                  /* ring slot the next frame goes to */
    uint32_t count;                                 /* valid frames in the ring (<= PQLR_FE_N_FRAMES) */
} pqlr_frontend_state;

/* Reset the stream (no frames, no samples). */
void pqlr_frontend_init(pqlr_frontend_state *s);

/* Push PQLR_FE_HOP new samples. Returns 1 when a new feature frame was added to the ring, 0 while
 * the first window is still filling, PQLR_ERR_ARG on NULL. */
int pqlr_frontend_push(pqlr_frontend_state *s, const int16_t *hop_samples);

/* Copy the ring, oldest frame first, to dst[PQLR_FE_WINDOW_BYTES] ((n_frames, n_features) row-major);
 * returns the number of valid frames (the model window is complete when it equals PQLR_FE_N_FRAMES);
 * slots not yet filled are written as the quantized feature of digital silence. */
uint32_t pqlr_frontend_window(const pqlr_frontend_state *s, int8_t *dst);

/* One frame: frame[PQLR_FE_WIN] -> out[PQLR_FE_N_OUT]; scratch[PQLR_FE_NFFT]. */
void pqlr_frontend_frame(const int16_t *frame, int8_t *out, int32_t *scratch);

/* Whole clip: wave[PQLR_FE_CLIP_SAMPLES] -> out[PQLR_FE_WINDOW_BYTES], using s->fft as scratch. */
pqlr_status pqlr_frontend_clip(pqlr_frontend_state *s, const int16_t *wave, int8_t *out);

/* In-place radix-2 DIT complex FFT of n = 2^log2n points, data = interleaved (re, im) int32, every
 * |value| < 2^29 on entry. cos_q31[i * stride] = round(cos(2 pi i / n) * 2^31) clamped to INT32_MAX,
 * i = 0..n/2-1. Block floating point: returns e such that FFT(input) = data * 2^e. */
int32_t pqlr_fft_q31(int32_t *data, uint32_t log2n, const int32_t *cos_q31, uint32_t stride);

/* In-place real FFT of n = 2^log2n int32 samples (|x| < 2^29), through an n/2-point complex FFT.
 * cos_q31[i] = cos(2 pi i / n) in Q31, i = 0..n/2-1. Output packed, X = data * 2^e (e returned):
 * data[0] = X[0], data[1] = X[n/2] (both real), data[2k], data[2k+1] = Re, Im X[k], k = 1..n/2-1. */
int32_t pqlr_rfft_q31(int32_t *data, uint32_t log2n, const int32_t *cos_q31);

#endif /* PQLR_FRONTEND_H */
