/* pqlr_shape.h: data-movement kernels (slice, pad) for int8 ("s8") and int16 ("s16") tensors.
 * Oracle: src/pqlr/ir/ops_shape.py; every kernel here is bit-exact to it.
 * Conventions (status codes) as in pqlr_nn.h.
 *
 * Both kernels take a tensor of rank 1..4 normalised to rank 4 by leading axes of size 1 (a
 * (W, C) tensor is in_dims = {1, 1, W, C}); row-major, no batch. The input and the output share
 * dtype and quantization (scale, zero point), so values are copied unchanged: no requantization,
 * no clamp. `input` and `output` must not overlap. Index arithmetic is int32: the kernels refuse
 * (PQLR_ERR_ARG) a tensor of more than INT32_MAX elements.
 * All kernels return PQLR_ERR_ARG on a NULL pointer or an impossible shape/parameter (checked before
 * anything is written), PQLR_OK otherwise. */
#ifndef PQLR_SHAPE_H
#define PQLR_SHAPE_H

#include "pqlr_nn.h"

#define PQLR_SHAPE_MAX_RANK 4

/* slice (x[b0::s0][...], counted): for every output index (i0, i1, i2, i3) < out_dims
 *   output[i0, i1, i2, i3] = input[begin[0] + i0 * step[0], ..., begin[3] + i3 * step[3]]
 * Requires in_dims, out_dims >= 1, step >= 1, 0 <= begin < in_dims and the last index read
 * begin + (out_dims - 1) * step < in_dims on every axis. Normalising axes: in = out = 1,
 * begin 0, step 1. PyTorch x[a:b:s], narrow, split and chunk are all this op. */
typedef struct {
    int32_t in_dims[PQLR_SHAPE_MAX_RANK];
    int32_t out_dims[PQLR_SHAPE_MAX_RANK];
    int32_t begin[PQLR_SHAPE_MAX_RANK];
    int32_t step[PQLR_SHAPE_MAX_RANK];
} pqlr_slice_params;

pqlr_status pqlr_slice_s8(const pqlr_slice_params *p, const int8_t *input, int8_t *output);
pqlr_status pqlr_slice_s16(const pqlr_slice_params *p, const int16_t *input, int16_t *output);

/* pad (constant): out_dims[a] = pad_before[a] + in_dims[a] + pad_after[a];
 *   output[o] = input[o - pad_before]   when pad_before[a] <= o[a] < pad_before[a] + in_dims[a] on
 *                                       every axis a,
 *             = value                   otherwise.
 * value is the stored integer written into the padding (the zero point for a zero pad, the
 * quantized constant of a ConstantPad), inside the dtype's storage range. Requires in_dims >= 1,
 * pad_before, pad_after >= 0. Normalising axes: in 1, pads 0. */
typedef struct {
    int32_t in_dims[PQLR_SHAPE_MAX_RANK];
    int32_t pad_before[PQLR_SHAPE_MAX_RANK];
    int32_t pad_after[PQLR_SHAPE_MAX_RANK];
    int32_t value;
} pqlr_pad_params;

pqlr_status pqlr_pad_s8(const pqlr_pad_params *p, const int8_t *input, int8_t *output);
pqlr_status pqlr_pad_s16(const pqlr_pad_params *p, const int16_t *input, int16_t *output);

#endif /* PQLR_SHAPE_H */
