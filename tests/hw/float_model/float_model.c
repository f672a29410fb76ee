/* float_model.c: output[i] = (int8)(input[i] * 0.5f + 1.0f), computed in float on purpose. */
#include "model.h"

pqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena)
{
    (void)arena;
    for (int i = 0; i < PQLR_OUTPUT_BYTES; i++)
        output[i] = (int8_t)((float)input[i] * 0.5f + 1.0f);
    return PQLR_OK;
}
