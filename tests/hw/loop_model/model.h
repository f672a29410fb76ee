/* model.h: a one-layer "model" whose work is a loop run input[0] (0..127) times; the pqlr.hw
 * tests use it to check that counted instructions grow exactly linearly with the trip count. */
#ifndef LOOP_MODEL_H
#define LOOP_MODEL_H

#include <stdint.h>
#include "pqlr_types.h"

#define PQLR_INPUT_BYTES 4
#define PQLR_OUTPUT_BYTES 4
#define PQLR_ARENA_BYTES 0
#define PQLR_NUM_LAYERS 1

pqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena);

#endif
