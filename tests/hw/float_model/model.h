/* model.h: a model that uses float arithmetic, so the soft-float scan has something to find. */
#ifndef FLOAT_MODEL_H
#define FLOAT_MODEL_H

#include <stdint.h>
#include "pqlr_types.h"

#define PQLR_INPUT_BYTES 4
#define PQLR_OUTPUT_BYTES 4
#define PQLR_ARENA_BYTES 0
#define PQLR_NUM_LAYERS 0

pqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena);

#endif
