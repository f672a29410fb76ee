/* pqlr_fft_q31.c: in-place radix-2 decimation-in-time complex FFT, int32 data, Q31 twiddles,
 * block floating point (see pqlr_frontend.h). No malloc, no floating point.
 *
 * Overflow bound: entering a stage every |component| < 2^29 + 1; a butterfly gives a +/- t with
 * |t component| <= sqrt(2) * max, so outputs stay below (1 + sqrt 2) * 2^29 < 2^31.
 */
#include "pqlr_frontend.h"

#define FFT_LIMIT ((int32_t)1 << 29)   /* max |value| allowed entering a stage */

static uint32_t max_abs(const int32_t *d, uint32_t len)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < len; ++i) {
        uint32_t a = d[i] < 0 ? (uint32_t)0 - (uint32_t)d[i] : (uint32_t)d[i];
        if (a > m) m = a;
    }
    return m;
}

int32_t pqlr_fft_q31(int32_t *data, uint32_t log2n, const int32_t *cos_q31, uint32_t stride)
{
    const uint32_t n = (uint32_t)1 << log2n;
    int32_t exponent = 0;

    /* bit-reversal permutation of the complex points */
    for (uint32_t i = 0, j = 0; i < n; ++i) {
        if (i < j) {
            int32_t tr = data[2 * i], ti = data[2 * i + 1];
            data[2 * i] = data[2 * j];
            data[2 * i + 1] = data[2 * j + 1];
            data[2 * j] = tr;
            data[2 * j + 1] = ti;
        }
        uint32_t bit = n >> 1;
        while (bit != 0 && (j & bit)) {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
    }

    for (uint32_t half = 1; half < n; half <<= 1) {
        /* block floating point: shift right (rounding) until max |v| < 2^29 */
        uint32_t m = max_abs(data, 2 * n);
        uint32_t s = 0;
        while ((m >> s) >= (uint32_t)FFT_LIMIT) ++s;
        if (s != 0) {
            const int32_t r = (int32_t)1 << (s - 1);
            for (uint32_t i = 0; i < 2 * n; ++i) data[i] = (int32_t)(((int64_t)data[i] + r) >> s);
            exponent += (int32_t)s;
        }
        const uint32_t step = n / (2 * half);             /* twiddle index stride */
        for (uint32_t j = 0; j < half; ++j) {
            const uint32_t k = j * step;                   /* w = exp(-2 pi i k / n) = c - i s */
            const int64_t c = cos_q31[k * stride];
            const int64_t sn = cos_q31[(k >= n / 4 ? k - n / 4 : n / 4 - k) * stride];   /* sin = cos(. - pi/2) */
            for (uint32_t a = j; a < n; a += 2 * half) {
                const uint32_t b = a + half;
                const int64_t br = data[2 * b], bi = data[2 * b + 1];
                int32_t tr = (int32_t)br, ti = (int32_t)bi;                 /* k = 0: w = 1 exactly */
                if (k != 0) {
                    tr = (int32_t)((br * c + bi * sn + ((int64_t)1 << 30)) >> 31);
                    ti = (int32_t)((bi * c - br * sn + ((int64_t)1 << 30)) >> 31);
                }
                const int32_t ar = data[2 * a], ai = data[2 * a + 1];
                data[2 * a] = ar + tr;
                data[2 * a + 1] = ai + ti;
                data[2 * b] = ar - tr;
                data[2 * b + 1] = ai - ti;
            }
        }
    }
    return exponent;
}
