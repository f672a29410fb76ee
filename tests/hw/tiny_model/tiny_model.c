/* tiny_model.c: dense 24->8 (int8 x int8 -> int32 + bias, requantize, ReLU) into the arena,
 * then dense 8->4 (requantize, clamp) into the output. Numbers drawn with numpy seed 7; the
 * NumPy reference in tests/hw/tiny_ref.py computes the same thing. */
#include "model.h"
#include "pqlr_profile.h"

static const int8_t W0[8 * 24] PROGMEM = {113, 32, 47, 101, 20, 70, 85, -71, -114, -52, -56, 95, 105, -127, -1, 82, -95, 76, -98, -9, 81, -51, -41, -57, 56, -63, 125, -15, -6, 1, 21, 13, 2, 126, 78, 74, 51, 31, -41, 125, -9, -73, 88, -87, 91, 28, -99, -117, -15, -119, -92, 3, 120, -9, 78, 106, 82, 33, -16, 3, -60, -1, -31, -65, 126, -125, -104, -79, 120, 49, 97, -77, 56, -34, -3, -128, 30, 84, 41, -89, 8, -60, 119, 97, -81, 2, 112, 88, 53, 35, -118, 61, -7, -105, -66, 10, 58, 1, 28, 95, 47, -36, 36, 25, -101, -113, 41, -29, 25, -46, -71, -90, -31, 80, -26, -31, 19, 122, -28, 23, -16, 26, -14, 35, 12, 45, 116, -90, 15, -16, -37, -67, -115, -25, 83, -104, -25, 119, 115, -73, -127, 43, -125, -52, -1, 95, -105, 41, 8, -95, 88, 88, -5, 113, 27, 103, 117, 17, -57, -91, 16, -79, 64, 109, -66, 13, -116, -82, -32, 98, 120, 36, 21, 17, -113, -32, 123, -23, -74, -67, 54, -119, 120, 96, 17, -9, 66, 12, -6, -46, -14, 64};
static const int32_t B0[8] = {-1780, -1900, 881, -512, 1214, -1879, 1628, -1509};
static const int8_t W1[4 * 8] PROGMEM = {-22, 119, -101, 40, 58, -19, -108, 6, -18, 95, 46, -40, -114, 23, -57, 47, 93, -38, 103, 4, 7, 67, 74, 104, 127, -90, -23, 110, -50, -127, 19, 64};
static const int32_t B1[4] = {243, 310, 143, -364};
#define M0 1518500250 /* requantize multiplier in [2^30, 2^31) */
#define N0 40
#define M1 1193046471
#define N1 38

/* out[o] = clamp(requantize(sum_i w[o, i] * x[i] + b[o]), lo, 127), w row-major (n_out, n_in) */
static void dense_s8(const int8_t *x, const int8_t *w, const int32_t *b, int8_t *out,
                     int n_in, int n_out, int32_t m, int32_t n, int32_t lo)
{
    for (int o = 0; o < n_out; o++) {
        int32_t acc = b[o];
        for (int i = 0; i < n_in; i++)
            acc += (int32_t)w[o * n_in + i] * (int32_t)x[i];
        out[o] = (int8_t)pqlr_clamp(pqlr_requantize(acc, m, n), lo, 127);
    }
}

pqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena)
{
    int8_t *hidden = (int8_t *)arena;
    if (!input || !output || !arena)
        return PQLR_ERR_ARG;
    PQLR_LAYER_BEGIN(0);
    dense_s8(input, W0, B0, hidden, 24, 8, M0, N0, 0); /* ReLU: clamp at 0 */
    PQLR_LAYER_END(0);
    PQLR_LAYER_BEGIN(1);
    dense_s8(hidden, W1, B1, output, 8, 4, M1, N1, -128);
    PQLR_LAYER_END(1);
    return PQLR_OK;
}
