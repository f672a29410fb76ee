/* model.h: a model that misbehaves on request (input[0]), for the harness's error checks. */
#ifndef BAD_MODEL_H
#define BAD_MODEL_H

#include <stdint.h>
#include "pqlr_types.h"

#define PQLR_INPUT_BYTES 4
#define PQLR_OUTPUT_BYTES 4
#define PQLR_ARENA_BYTES 8
#define PQLR_NUM_LAYERS 1

pqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena);

#endif
