/* bad_model.c: input[0] = 1 writes past the arena, 2 returns PQLR_ERR_ARG, 3 writes past the
 * output, 4 begins layer 0 without ending it, 5 executes a trapping instruction; anything else
 * copies input to output. */
#include "model.h"
#include "pqlr_profile.h"

pqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena)
{
    volatile uint8_t *a = arena;
    volatile int8_t *o = output;
    PQLR_LAYER_BEGIN(0);
    switch (input[0]) {
    case 1:
        a[PQLR_ARENA_BYTES + 1] = 1;
        break;
    case 2:
        return PQLR_ERR_ARG;
    case 3:
        o[PQLR_OUTPUT_BYTES] = 1;
        break;
    case 4:
        return PQLR_OK;
    case 5:
        __builtin_trap();
    default:
        break;
    }
    for (int i = 0; i < PQLR_OUTPUT_BYTES; i++)
        output[i] = input[i];
    PQLR_LAYER_END(0);
    return PQLR_OK;
}
