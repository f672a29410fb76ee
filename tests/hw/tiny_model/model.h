/* model.h: a tiny real int8 model for the pqlr.hw tests: dense 24->8 + ReLU, then dense 8->4.
 * Weights/biases/multipliers are in tiny_model.c; tests/hw/tiny_ref.py holds the same numbers. */
#ifndef TINY_MODEL_H
#define TINY_MODEL_H

#include <stdint.h>
#include "pqlr_types.h"

#define PQLR_INPUT_BYTES 24
#define PQLR_OUTPUT_BYTES 4
#define PQLR_ARENA_BYTES 8
#define PQLR_NUM_LAYERS 2

pqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena);

#endif
