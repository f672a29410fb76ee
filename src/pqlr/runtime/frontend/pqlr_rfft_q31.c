/* pqlr_rfft_q31.c: real FFT of n = 2^log2n int32 samples through one n/2-point complex FFT
 * (pqlr_fft_q31) and the split step, in place, block floating point. No malloc, no floating point.
 *
 * The n reals, read as n/2 interleaved complex z[m] = x[2m] + i x[2m+1], give Z = FFT(z); then with
 * A = Z[k], B = Z[n/2 - k], W = exp(-2 pi i / n):
 *     X[k] = E + W^k O,   E = (A + conj B) / 2,   O = (A - conj B) / (2i)
 * computed from the unhalved sums in 64 bits and rounded once. Before the split the block is
 * shifted to keep |v| < 2^29, so |X| components stay below (1 + sqrt 2) * 2^29 < 2^31.
 */
#include "pqlr_frontend.h"

int32_t pqlr_rfft_q31(int32_t *data, uint32_t log2n, const int32_t *cos_q31)
{
    const uint32_t n = (uint32_t)1 << log2n, half = n / 2;
    int32_t exponent = pqlr_fft_q31(data, log2n - 1, cos_q31, 2);   /* table is for n points */

    uint32_t m = 0, s = 0;
    for (uint32_t i = 0; i < n; ++i) {
        const uint32_t a = data[i] < 0 ? (uint32_t)0 - (uint32_t)data[i] : (uint32_t)data[i];
        if (a > m) m = a;
    }
    while ((m >> s) >= ((uint32_t)1 << 29)) ++s;
    if (s != 0) {
        const int64_t r = (int64_t)1 << (s - 1);
        for (uint32_t i = 0; i < n; ++i) data[i] = (int32_t)(((int64_t)data[i] + r) >> s);
        exponent += (int32_t)s;
    }

    /* k = 0 and n/2 are real: X[0] = Re Z0 + Im Z0 and X[n/2] = Re Z0 - Im Z0, packed in slot 0 */
    const int32_t z0r = data[0], z0i = data[1];
    data[0] = z0r + z0i;
    data[1] = z0r - z0i;
    for (uint32_t k = 1; k <= half / 2; ++k) {
        const uint32_t j = half - k;
        const int64_t ar = data[2 * k], ai = data[2 * k + 1], br = data[2 * j], bi = data[2 * j + 1];
        const int64_t er2 = ar + br, ei2 = ai - bi;        /* 2E */
        const int64_t or2 = ai + bi, oi2 = br - ar;        /* 2O */
        const int64_t c = cos_q31[k];                       /* W^k = c - i s */
        const int64_t sn = cos_q31[n / 4 - k];              /* sin(2 pi k / n), k <= n/4 */
        const int64_t round = (int64_t)1 << 31;
        data[2 * k] = (int32_t)((er2 * ((int64_t)1 << 31) + c * or2 + sn * oi2 + round) >> 32);
        data[2 * k + 1] = (int32_t)((ei2 * ((int64_t)1 << 31) + c * oi2 - sn * or2 + round) >> 32);
        if (j != k) {   /* X[n/2 - k]: E' = conj E, O' = conj O, W^(n/2-k) = -(c + i s) */
            data[2 * j] = (int32_t)((er2 * ((int64_t)1 << 31) - c * or2 - sn * oi2 + round) >> 32);
            data[2 * j + 1] = (int32_t)((-ei2 * ((int64_t)1 << 31) + c * oi2 - sn * or2 + round) >> 32);
        }
    }
    return exponent;
}
