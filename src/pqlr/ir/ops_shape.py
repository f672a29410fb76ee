"""Data-movement ops of the IR (slice, pad): NumPy oracle and C call emission (C kernels in
runtime/src/pqlr_<op>_<dtype>.c, documented in runtime/include/pqlr_shape.h).

Both ops take one tensor x of rank 1..4 (shapes exclude the batch) to an output y of the same rank,
dtype, scale and zero point (y.bits >= x.bits); values are copied unchanged (no requantization, no
clamp). The C structs hold the shapes normalised to rank 4 by leading axes of size 1.

  slice   attrs begin (r ints, 0 <= begin < dim), step (r ints >= 1; default all 1). The output
          shape gives the count n per axis:
              y[i0, i1, ...] = x[begin0 + i0 * step0, begin1 + i1 * step1, ...]
          and the last index read, begin + (n - 1) * step, must lie inside x on every axis.
          PyTorch x[a:b:s], narrow, split and chunk lower to it (slice_attrs, narrow_attrs,
          split_attrs, chunk_attrs below).
  pad     attrs pads (r pairs (before, after), each >= 0), value (the stored integer written into
          the padding, inside the output's bit range; default the zero point = a zero pad):
              y.shape[a] = before_a + x.shape[a] + after_a
              y[o] = x[o - before] where every axis is inside, else value
          F.pad / ConstantPad / ZeroPad lower to it (pad_attrs, torch_pad_pairs, pad_value).
Both: MACs 0, no scratch.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import primitives as P
from ..errors import UnsupportedError
from .graph import DTYPES, Graph, Node, Tensor
from .opkit import INT32_MAX, CKernel, fail, io, kernel_table, no_macs, no_scratch, pair, same_dtype, shape_check

MAX_RANK = 4
# Field order of the C parameter structs in pqlr_shape.h (all int32_t; a test checks the layout).
STRUCT_FIELDS: dict[str, tuple[str, ...]] = {
    "pqlr_slice_params": ("in_dims[4]", "out_dims[4]", "begin[4]", "step[4]"),
    "pqlr_pad_params": ("in_dims[4]", "pad_before[4]", "pad_after[4]", "value"),
}


# ---------------------------------------------------------------- builders ("decide")
def _axis(in_shape: Sequence[int], axis: int) -> int:
    r = len(in_shape)
    if not -r <= axis < r:
        raise UnsupportedError(f"axis {axis} out of range for shape {tuple(in_shape)}")
    return axis % r


def slice_attrs(in_shape: Sequence[int], index: Sequence[slice]) -> tuple[dict, tuple[int, ...]]:
    """x[index] with Python slice semantics (None, negative, clipped bounds; axes not named are
    kept whole) -> (slice attrs, output shape). An empty result is refused."""
    in_shape = tuple(int(d) for d in in_shape)
    if len(index) > len(in_shape) or not all(isinstance(s, slice) for s in index):
        raise UnsupportedError(f"index {index!r} is not a tuple of at most {len(in_shape)} slices")
    begin, step, shape = [], [], []
    for d, s in zip(in_shape, [*index, *[slice(None)] * (len(in_shape) - len(index))]):
        r = range(*s.indices(d))
        if r.step < 1 or len(r) == 0:
            raise UnsupportedError(f"slice {s} of an axis of {d} is empty or reversed")
        begin.append(r.start)
        step.append(r.step)
        shape.append(len(r))
    return {"begin": tuple(begin), "step": tuple(step)}, tuple(shape)


def narrow_attrs(in_shape: Sequence[int], axis: int, start: int, length: int) -> tuple[dict, tuple[int, ...]]:
    """x.narrow(axis, start, length) (start may be negative, as in PyTorch)."""
    a, d = _axis(in_shape, axis), int(in_shape[_axis(in_shape, axis)])
    start = start + d if start < 0 else start
    if not (0 <= start and length >= 1 and start + length <= d):
        raise UnsupportedError(f"narrow({axis}, {start}, {length}) outside an axis of {d}")
    return slice_attrs(in_shape, [slice(None)] * a + [slice(start, start + length)])


def split_attrs(in_shape: Sequence[int], axis: int, split_size_or_sections) -> list[tuple[dict, tuple[int, ...]]]:
    """torch.split(x, split_size_or_sections, axis): one (attrs, output shape) per piece, in order."""
    a, d = _axis(in_shape, axis), int(in_shape[_axis(in_shape, axis)])
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size < 1:
            raise UnsupportedError(f"split size {size} must be >= 1")
        sizes = [min(size, d - s) for s in range(0, d, size)]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != d or min(sizes, default=0) < 1:
            raise UnsupportedError(f"sections {sizes} do not split an axis of {d} into non-empty pieces")
    starts = np.cumsum([0, *sizes[:-1]])
    return [slice_attrs(in_shape, [slice(None)] * a + [slice(int(s), int(s) + n)]) for s, n in zip(starts, sizes)]


def chunk_attrs(in_shape: Sequence[int], axis: int, chunks: int) -> list[tuple[dict, tuple[int, ...]]]:
    """torch.chunk(x, chunks, axis): pieces of ceil(dim / chunks) (the last smaller; possibly fewer
    than `chunks` pieces, as PyTorch does)."""
    if chunks < 1:
        raise UnsupportedError(f"chunks={chunks} must be >= 1")
    d = int(in_shape[_axis(in_shape, axis)])
    return split_attrs(in_shape, axis, -(-d // chunks))


def torch_pad_pairs(pad: Sequence[int], rank: int) -> tuple[tuple[int, int], ...]:
    """F.pad's flat `pad` (last axis first: (left, right, top, bottom, ...)) -> one (before, after)
    pair per axis of a rank-`rank` tensor, in axis order (axes it does not name get (0, 0))."""
    pad = [int(p) for p in pad]
    if len(pad) % 2 or len(pad) // 2 > rank:
        raise UnsupportedError(f"F.pad list {pad} does not fit a tensor of rank {rank}")
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]
    return tuple([(0, 0)] * (rank - len(pairs)) + pairs)


def pad_value(t: Tensor, real: float = 0.0) -> int:
    """The stored integer of the real constant `real` at t's qparams (round half up); refused when
    it falls outside t's bit range (the padded tensor shares t's qparams)."""
    q = t.zero_point + int(P.round_half_up(real / t.scale))
    lo, hi = P.act_range(t.bits)
    if not lo <= q <= hi:
        raise UnsupportedError(f"pad constant {real} is {q} at the qparams of {t.name}, outside [{lo}, {hi}]")
    return q


def pad_attrs(in_shape: Sequence[int], pads: Sequence[Sequence[int]], value: int) -> tuple[dict, tuple[int, ...]]:
    """pad attrs for per-axis (before, after) pairs and the stored value -> (attrs, output shape).
    Negative pads (F.pad cropping) are refused: lower them as a slice."""
    pads = tuple((int(b), int(a)) for b, a in pads)
    if len(pads) != len(in_shape) or min((v for p in pads for v in p), default=0) < 0:
        raise UnsupportedError(f"pads {pads} are not one non-negative pair per axis of {tuple(in_shape)}")
    return {"pads": pads, "value": int(value)}, tuple(int(d) + b + a for d, (b, a) in zip(in_shape, pads))


# ---------------------------------------------------------------- shared checks
def _io(node: Node, graph: Graph) -> tuple[Tensor, Tensor]:
    """x and y of a data-movement node: one input, rank 1..4 on both, same dtype/scale/zero point."""
    (x,), out = io(node, graph, 1)
    same_dtype(node, [x], out)
    if x.scale != out.scale or x.zero_point != out.zero_point or out.bits < x.bits:
        raise fail(node, f"input {x.name} (scale {x.scale:.6g}, zero point {x.zero_point}, {x.bits} bits) and "
                         f"output {out.name} (scale {out.scale:.6g}, zero point {out.zero_point}, {out.bits} bits) "
                         "must share qparams (insert a requantize)")
    if not 1 <= len(x.shape) <= MAX_RANK or len(out.shape) != len(x.shape):
        raise fail(node, f"shapes {tuple(x.shape)} -> {tuple(out.shape)}: need equal ranks in 1..{MAX_RANK}")
    if min(*x.shape, *out.shape) < 1 or max(x.size, out.size) > INT32_MAX:
        raise fail(node, f"shapes {tuple(x.shape)} -> {tuple(out.shape)}: every dim >= 1, "
                         f"at most {INT32_MAX} elements")
    return x, out


def _rank4(values: Sequence[int], fill: int) -> list[int]:
    """Normalise a per-axis list to rank 4 by leading `fill` entries."""
    return [fill] * (MAX_RANK - len(values)) + [int(v) for v in values]


# ---------------------------------------------------------------- slice
def _slice_check(node: Node, graph: Graph) -> tuple[Tensor, Tensor, tuple[int, ...], tuple[int, ...]]:
    x, out = _io(node, graph)
    r = len(x.shape)
    begin, step = pair(node, "begin", None, r), pair(node, "step", (1,) * r, r)
    for a, (d, n, b, s) in enumerate(zip(x.shape, out.shape, begin, step)):
        if s < 1 or not 0 <= b < d or b + (n - 1) * s >= d:
            raise fail(node, f"axis {a}: {n} elements from begin {b} by step {s} read outside 0..{d - 1} "
                             f"(input {tuple(x.shape)}, output {tuple(out.shape)})")
    return x, out, begin, step


def _slice_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    x_t, out, begin, step = _slice_check(node, graph)
    y = shape_check(node, inputs[0], x_t)                       # (N, *x.shape)
    for a, (b, s, n) in enumerate(zip(begin, step, out.shape)):
        y = np.take(y, b + s * np.arange(n), axis=a + 1)        # y[.., i, ..] = x[.., b + i * s, ..]
    return y.astype(DTYPES[out.dtype])


def _slice_kernel(node: Node, graph: Graph) -> CKernel:
    x, out, begin, step = _slice_check(node, graph)
    return CKernel(f"pqlr_slice_{out.dtype}", "pqlr_slice_params",
                   {"in_dims": _rank4(x.shape, 1), "out_dims": _rank4(out.shape, 1),
                    "begin": _rank4(begin, 0), "step": _rank4(step, 1)}, ("in0", "out"))


# ---------------------------------------------------------------- pad
def _pad_check(node: Node, graph: Graph) -> tuple[Tensor, Tensor, tuple[tuple[int, int], ...], int]:
    x, out = _io(node, graph)
    raw = node.attrs.get("pads")
    try:
        pads = np.asarray(raw, dtype=np.float64)
        ok = pads.shape == (len(x.shape), 2) and bool(np.all(np.isfinite(pads) & (pads == np.round(pads))))
    except (TypeError, ValueError):
        ok = False
    if not ok or pads.min() < 0:
        raise fail(node, f"pads={raw!r}: need {len(x.shape)} pairs (before, after) of integers >= 0")
    pads_t = tuple((int(b), int(a)) for b, a in pads)
    if tuple(out.shape) != tuple(d + b + a for d, (b, a) in zip(x.shape, pads_t)):
        raise fail(node, f"input {tuple(x.shape)} padded by {pads_t} is not the output {tuple(out.shape)}")
    value = node.attrs.get("value", out.zero_point)
    lo, hi = P.act_range(out.bits)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not lo <= value <= hi:
        raise fail(node, f"pad value {value!r} is not an integer in the output's range [{lo}, {hi}]")
    return x, out, pads_t, int(value)


def _pad_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    x_t, out, pads, value = _pad_check(node, graph)
    x = shape_check(node, inputs[0], x_t)
    y = np.full((x.shape[0], *out.shape), value, np.int64)
    y[(slice(None), *(slice(b, b + d) for d, (b, _) in zip(x_t.shape, pads)))] = x
    return y.astype(DTYPES[out.dtype])


def _pad_kernel(node: Node, graph: Graph) -> CKernel:
    x, out, pads, value = _pad_check(node, graph)
    return CKernel(f"pqlr_pad_{out.dtype}", "pqlr_pad_params",
                   {"in_dims": _rank4(x.shape, 1), "pad_before": _rank4([b for b, _ in pads], 0),
                    "pad_after": _rank4([a for _, a in pads], 0), "value": value}, ("in0", "out"))


KERNELS = {"slice": _slice_kernel, "pad": _pad_kernel}

TABLE = kernel_table(KERNELS, STRUCT_FIELDS, {
    "slice": (_slice_run, no_scratch, no_macs),
    "pad": (_pad_run, no_scratch, no_macs),
})
