/* pqlr_shape.h: data-movement kernels (slice, pad) for int8 ("s8") and int16 ("s16") tensors.
 * Oracle: src/pqlr/ir/ops_shape.py; every kernel here is bit-exact to it.
 * Conventions (status codes) as in pqlr_nn.h. */
#ifndef PQLR_SHAPE_H
#define PQLR_SHAPE_H

#include "pqlr_nn.h"

#endif /* PQLR_SHAPE_H */
