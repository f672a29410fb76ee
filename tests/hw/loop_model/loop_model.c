/* loop_model.c: output = 4-byte sum of a multiply-accumulate loop run input[0] times. */
#include "model.h"
#include "pqlr_profile.h"

pqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena)
{
    (void)arena;
    int32_t n = input[0], acc = input[1];
    PQLR_LAYER_BEGIN(0);
    for (int32_t i = 0; i < n; i++) {
        acc = acc * 3 + input[2];
        __asm__ volatile("" : "+r"(acc)); /* one iteration per trip: no unrolling into closed form */
    }
    PQLR_LAYER_END(0);
    for (int k = 0; k < 4; k++)
        output[k] = (int8_t)(acc >> (8 * k));
    return PQLR_OK;
}
