"""Pooling ops of the IR: NumPy oracle and C call emission (C kernels in
runtime/src/pqlr_<op>_<dtype>.c, documented in runtime/include/pqlr_pool.h).

Shapes exclude the batch. Maps are channels last, (H, W, C); a rank-2 map (H, C) reads as (H, 1, C)
(the 1-D forms MaxPool1d, AvgPool1d, AdaptiveAvg/MaxPool1d) and its output is rank 2 as well.
Input and output share the dtype (s8 or s16). Optional attrs act_min / act_max: the output clamp
(opkit.activation_clamp).

Window attrs (avg_pool2d, max_pool2d) are 2-D: kernel (KH, KW), stride (SH, SW) (default: kernel),
padding (top, left, bottom, right) (default 0), dilation (DH, DW) (max_pool2d; default 1). A single
int v means (v, v) (padding (v, v, v, v)); for a rank-2 input it means (v, 1) (padding (v, 0, v, 0)).
Tap ky of output row oy reads row oy * SH - top + ky * DH; taps outside [0, H) are padding.
    OH = (H + top + bottom - DH * (KH - 1) - 1) // SH + 1     (likewise OW)
that is PyTorch ceil_mode=False; ceil_mode=True is not supported (the lowering refuses it, and so
does a node carrying attr ceil_mode=True). Adaptive windows (attr output (OH, OW); rank 2: OH):
    rows of output oy = [floor(oy * H / OH), ceil((oy + 1) * H / OH))      (PyTorch adaptive pools)

  avg_pool2d           acc = sum over the window's in-bounds taps of (x - zp_in)  (padding adds 0)
                       y = clamp(requantize(acc, m, n) + zp_out, act_min, act_max)
      attrs kernel, stride, padding, count_include_pad (default True), and either
        multiplier, shift (attrs)     one divisor: KH*KW (count_include_pad=True), or the in-bounds
                                      count shared by every window (False); kernel pqlr_avg_pool2d
        counts int32 (K,), multiplier int32 (K,), shift int8 (K,) (params; count_include_pad=False):
                                      window (oy, ox) with r in-bounds rows and c columns uses the
                                      entry of count r*c; kernel pqlr_avg_pool2d_var
      build with avg_pool_params(); MACs: OH*OW*C*KH*KW.
  adaptive_avg_pool2d  as avg_pool2d over the adaptive windows, count = window rows * columns;
      attrs output, and either multiplier, shift (attrs; only when the windows form a uniform grid:
      every window KH x KW, starts oy*SH, ox*SW -> the avg_pool2d kernel with that kernel / stride)
      or the count table in params (kernel pqlr_adaptive_avg_pool2d). Build with
      adaptive_avg_params(); MACs: C * (sum of window sizes).
  max_pool2d           y = clamp(max over the window's in-bounds taps, act_min, act_max)
      attrs kernel, stride, padding, dilation; padding never wins (-inf in PyTorch) and a window
      wholly in the padding is refused; output scale (to a relative 1e-6) and zero point must equal
      the input's (the max commutes with the quantization; bits may differ, the clamp follows the
      output's). MACs: C * in-bounds taps of all windows (one per comparison).
  adaptive_max_pool2d  the same over the adaptive windows; attrs output.
  mean                 in of rank 1..4; attrs axes (sorted unique IR axes; default every axis but the
      last), multiplier, shift (mean_attrs / pool_attrs with window = product of the reduced dims).
      Output: the kept axes in order, reduced axes removed or kept as 1 (its size must be the
      product of the kept dims). acc = sum over the reduced axes of (x - zp_in), y as avg_pool2d.
      Axes forming a leading block (global average pooling, the mean over tokens: every axis but
      the last) use the avg_pool2d kernel, one window over the whole block; others pqlr_mean over
      the dims normalised to rank 4 with a reduce mask. MACs: the input size.
"""
from __future__ import annotations

import math

import numpy as np

from .graph import DTYPES, Graph, Node, Tensor
from .opkit import (INT32_MAX, CKernel, clamp, conv_output_size, fail, finish, io, kernel_table, no_scratch,
                    quant_multipliers, same_dtype, scalar_quant, shape_check, span)

# Field order of the C parameter structs in pqlr_pool.h (int32_t; "name[N]" an int32_t[N]; a test
# checks the layout).
_WINDOW = ("in_h", "in_w", "channels", "out_h", "out_w", "kernel_h", "kernel_w", "stride_h", "stride_w",
           "pad_top", "pad_left", "pad_bottom", "pad_right")
STRUCT_FIELDS: dict[str, tuple[str, ...]] = {
    "pqlr_avg_pool2d_params": (*_WINDOW, "in_zp", "out_zp", "multiplier", "shift", "act_min", "act_max"),
    "pqlr_avg_pool2d_var_params": (*_WINDOW, "in_zp", "out_zp", "n_counts", "act_min", "act_max"),
    "pqlr_adaptive_avg_pool2d_params": ("in_h", "in_w", "channels", "out_h", "out_w", "in_zp", "out_zp",
                                        "n_counts", "act_min", "act_max"),
    "pqlr_max_pool2d_params": (*_WINDOW, "dilation_h", "dilation_w", "act_min", "act_max"),
    "pqlr_adaptive_max_pool2d_params": ("in_h", "in_w", "channels", "out_h", "out_w", "act_min", "act_max"),
    "pqlr_mean_params": ("dims[4]", "reduce[4]", "in_zp", "out_zp", "multiplier", "shift", "act_min",
                         "act_max"),
}
_TABLE_ARGS = ("in0", "counts", "multiplier", "shift", "out")     # kernels taking the count table


# ---------------------------------------------------------------- builders
def pool_attrs(in_t: Tensor, out_t: Tensor, window: int) -> dict[str, int]:
    """avg_pool2d / mean multiplier, shift for M = s_in / (s_out * window)."""
    (m,), (n,) = quant_multipliers(in_t.scale / (out_t.scale * window))
    return {"multiplier": int(m), "shift": int(n)}


def _count_params(in_t: Tensor, out_t: Tensor, counts: np.ndarray) -> dict[str, np.ndarray]:
    """The count table for the distinct window counts: counts int32, multiplier int32, shift int8."""
    distinct = np.unique(counts).astype(np.int64)
    m, n = quant_multipliers(in_t.scale / (out_t.scale * distinct))
    return {"counts": distinct.astype(np.int32), "multiplier": m, "shift": n}


def _probe(op: str, in_t: Tensor, out_t: Tensor, attrs: dict) -> tuple[Node, Graph]:
    """A one-node graph for a builder's checks (messages name the output tensor)."""
    node = Node(out_t.name, op, [in_t.name], [out_t.name], dict(attrs))
    return node, Graph({in_t.name: in_t, out_t.name: out_t}, [node], [in_t.name], [out_t.name])


def avg_pool_params(in_t: Tensor, out_t: Tensor, kernel, stride=None, padding=0,
                    count_include_pad: bool = True) -> tuple[dict, dict[str, np.ndarray]]:
    """(attrs, params) of an avg_pool2d node: one multiplier in attrs when every window divides by
    the same count (always for count_include_pad=True), else the count table in params."""
    attrs = {"kernel": kernel, "stride": kernel if stride is None else stride, "padding": padding,
             "count_include_pad": bool(count_include_pad)}
    node, graph = _probe("avg_pool2d", in_t, out_t, attrs)
    s = _window(node, graph, dilated=False)
    attrs.update(kernel=(s["kernel_h"], s["kernel_w"]), stride=(s["stride_h"], s["stride_w"]),
                 padding=tuple(s[k] for k in ("pad_top", "pad_left", "pad_bottom", "pad_right")))
    counts = np.outer(s["rows"], s["cols"]) if not count_include_pad else np.array([s["kernel_h"] * s["kernel_w"]])
    if counts.min() < 1:
        raise fail(node, "a window lies wholly in the padding (count_include_pad=False divides by 0)")
    if np.unique(counts).size == 1:
        return {**attrs, **pool_attrs(in_t, out_t, int(counts.flat[0]))}, {}
    return attrs, _count_params(in_t, out_t, counts)


def adaptive_avg_params(in_t: Tensor, out_t: Tensor) -> tuple[dict, dict[str, np.ndarray]]:
    """(attrs, params) of an adaptive_avg_pool2d node to out_t's spatial size: one multiplier in attrs
    when the windows form a uniform grid (e.g. H % OH == 0), else the count table in params."""
    output = tuple(out_t.shape[:2]) if len(out_t.shape) == 3 else (out_t.shape[0], 1)
    node, graph = _probe("adaptive_avg_pool2d", in_t, out_t, {"output": output})
    s = _adaptive(node, graph)
    grid = _uniform_grid(s)
    if grid is not None:
        return {"output": output, **pool_attrs(in_t, out_t, grid[0] * grid[1])}, {}
    return {"output": output}, _count_params(in_t, out_t, np.outer(s["rows"], s["cols"]))


def mean_attrs(in_t: Tensor, out_t: Tensor, axes=None) -> dict:
    """attrs of a mean node over the IR `axes` (any order; default: every axis but the last)."""
    attrs = {} if axes is None else {"axes": tuple(sorted(int(a) for a in np.atleast_1d(axes)))}
    node, graph = _probe("mean", in_t, out_t, attrs)
    axes = _axes(node, in_t)
    attrs = {"axes": axes, **pool_attrs(in_t, out_t, int(np.prod([in_t.shape[a] for a in axes], dtype=np.int64)))}
    _mean(*_probe("mean", in_t, out_t, attrs))                    # the op's own checks
    return attrs


# ---------------------------------------------------------------- shared geometry
def _ints(node: Node, key: str, default, n: int, rank2: bool) -> tuple[int, ...]:
    """Attribute `key` as n ints: an int (or 1-tuple) v is (v,) * n, or (v, 1) / (v, 0, v, 0) for a
    rank-2 input (its W axis has size 1)."""
    v = node.attrs.get(key, default)
    if v is None:
        raise fail(node, f"missing attribute {key!r}")
    try:
        v = tuple(int(a) for a in (v if isinstance(v, (tuple, list, np.ndarray)) else (v,)))
    except (TypeError, ValueError):
        raise fail(node, f"attribute {key}={v!r} is not a list of integers") from None
    if len(v) == 1:
        v = ((v[0], 1) if n == 2 else (v[0], 0, v[0], 0)) if rank2 else v * n
    if len(v) != n:
        raise fail(node, f"attribute {key}={v} needs {n} values")
    return v


def _map(node: Node, graph: Graph) -> tuple[Tensor, Tensor, tuple[int, int, int], tuple[int, ...]]:
    """Input, output, the input as (H, W, C), and the output's (OH, OW)."""
    (x,), out = io(node, graph, 1)
    same_dtype(node, [x], out)
    if (len(x.shape) not in (2, 3) or len(out.shape) != len(x.shape) or out.shape[-1] != x.shape[-1]
            or min(x.shape) < 1 or max(x.size, out.size) > INT32_MAX):
        raise fail(node, f"needs an (H, W, C) or (H, C) input and an output of that rank with equal "
                         f"channels (fewer than 2^31 elements), got {x.shape} -> {out.shape}")
    hwc = tuple(x.shape) if len(x.shape) == 3 else (x.shape[0], 1, x.shape[1])
    return x, out, hwc, (tuple(out.shape[:2]) if len(out.shape) == 3 else (out.shape[0], 1))


def _taps(size: int, n_out: int, k: int, s: int, pad: int, d: int) -> np.ndarray:
    """In-bounds taps of each output position along one axis: o*s - pad + j*d in [0, size), j < k."""
    pos = np.arange(n_out)[:, None] * s - pad + np.arange(k)[None, :] * d
    return ((pos >= 0) & (pos < size)).sum(axis=1)


def _window(node: Node, graph: Graph, dilated: bool) -> dict:
    """Struct fields of a kernel / stride / padding (/ dilation) window, plus rows / cols: the
    in-bounds taps of each output row / column (numpy arrays, not struct fields)."""
    x, out, (h, w, c), out_hw = _map(node, graph)
    rank2 = len(x.shape) == 2
    if node.attrs.get("ceil_mode", False):
        raise fail(node, "ceil_mode=True is not supported")
    kh, kw = _ints(node, "kernel", None, 2, rank2)
    sh, sw = _ints(node, "stride", (kh, kw), 2, rank2)
    pads = _ints(node, "padding", 0, 4, rank2)
    dh, dw = _ints(node, "dilation", 1, 2, rank2) if dilated else (1, 1)
    ph, pw = h + pads[0] + pads[2], w + pads[1] + pads[3]          # padded sizes
    if (min(kh, kw, sh, sw, dh, dw) < 1 or min(pads) < 0 or ph < dh * (kh - 1) + 1 or pw < dw * (kw - 1) + 1
            or max(ph, pw) > INT32_MAX):
        raise fail(node, f"kernel {kh}x{kw}, stride {sh}x{sw}, padding {pads}, dilation {dh}x{dw} "
                         f"impossible for input {x.shape}")
    oh = conv_output_size(h, kh, sh, pads[0], pads[2], dh)
    ow = conv_output_size(w, kw, sw, pads[1], pads[3], dw)
    if out_hw != (oh, ow):
        raise fail(node, f"output {out.shape} inconsistent with input {x.shape}, kernel {kh}x{kw}, "
                         f"stride {sh}x{sw}, padding {pads}, dilation {dh}x{dw} (gives {oh}x{ow})")
    s = {"in_h": h, "in_w": w, "channels": c, "out_h": oh, "out_w": ow, "kernel_h": kh, "kernel_w": kw,
         "stride_h": sh, "stride_w": sw, "pad_top": pads[0], "pad_left": pads[1], "pad_bottom": pads[2],
         "pad_right": pads[3], "rows": _taps(h, oh, kh, sh, pads[0], dh), "cols": _taps(w, ow, kw, sw, pads[1], dw)}
    if dilated:
        s.update(dilation_h=dh, dilation_w=dw)
    return s


def _bounds(size: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive windows [start, end) along one axis (PyTorch): floor(i*size/n), ceil((i+1)*size/n)."""
    i = np.arange(n_out, dtype=np.int64)
    return i * size // n_out, ((i + 1) * size + n_out - 1) // n_out


def _adaptive(node: Node, graph: Graph) -> dict:
    """Struct fields of an adaptive window, plus the window bounds (y0, y1, x0, x1) and sizes (rows, cols)."""
    x, out, (h, w, c), out_hw = _map(node, graph)
    oh, ow = _ints(node, "output", None, 2, len(x.shape) == 2)
    if (oh, ow) != out_hw or min(oh, ow) < 1:
        raise fail(node, f"attr output {(oh, ow)} does not match output {out.shape} (OH, OW >= 1)")
    if max((h + 1) * oh, (w + 1) * ow) > INT32_MAX:       # the C computes the bounds in int32
        raise fail(node, f"adaptive pooling {h}x{w} -> {oh}x{ow} is too large: (H + 1) * OH >= 2^31")
    (y0, y1), (x0, x1) = _bounds(h, oh), _bounds(w, ow)
    return {"in_h": h, "in_w": w, "channels": c, "out_h": oh, "out_w": ow,
            "y0": y0, "y1": y1, "x0": x0, "x1": x1, "rows": y1 - y0, "cols": x1 - x0}


def _uniform_grid(s: dict) -> tuple[int, int, int, int] | None:
    """(KH, KW, SH, SW) when every adaptive window is KH x KW starting at (oy*SH, ox*SW), SH, SW >= 1."""
    out = []
    for a, b, n in ((s["y0"], s["y1"], s["out_h"]), (s["x0"], s["x1"], s["out_w"])):
        k = int(b[0] - a[0])
        step = int(a[1] - a[0]) if n > 1 else k
        if step < 1 or np.any(b - a != k) or np.any(a != np.arange(n) * step):
            return None
        out.append((k, step))
    return out[0][0], out[1][0], out[0][1], out[1][1]


def _count_table(node: Node, counts: np.ndarray, x: Tensor) -> tuple[int, np.ndarray, np.ndarray]:
    """Check params counts / multiplier / shift against the window counts (OH, OW); returns K and
    each window's multiplier and shift (OH, OW, 1)."""
    p = node.params
    for key, dt in (("counts", np.int32), ("multiplier", np.int32), ("shift", np.int8)):
        if key not in p or np.asarray(p[key]).dtype != dt or np.asarray(p[key]).ndim != 1:
            raise fail(node, f"param {key!r} must be a 1-D {np.dtype(dt).name} array (the count table)")
    t, m, n = (np.asarray(p[k]).astype(np.int64) for k in ("counts", "multiplier", "shift"))
    if not t.size == m.size == n.size >= 1:
        raise fail(node, f"count table lengths {t.size}/{m.size}/{n.size} differ or are 0")
    if t.min() < 1 or np.unique(t).size != t.size:
        raise fail(node, f"table counts {t.tolist()} must be distinct and >= 1")
    if int(t.max()) * span(x) > INT32_MAX:
        raise fail(node, f"a window of {int(t.max())} elements overflows the int32 sum")
    if m.min() < 0 or m.max() > INT32_MAX or n.min() < 1 or n.max() > 62:
        raise fail(node, "multiplier outside [0, 2^31) or shift outside [1, 62]")
    missing = sorted(set(np.unique(counts).tolist()) - set(t.tolist()))
    if missing:
        raise fail(node, f"window counts {missing} are not in the count table {t.tolist()}"
                         + (" (0: a window lies wholly in the padding)" if 0 in missing else ""))
    idx = np.searchsorted(np.sort(t), counts)
    order = np.argsort(t)
    return int(t.size), m[order][idx][..., None], n[order][idx][..., None]


def _qfields(node: Node, x: Tensor, out: Tensor) -> dict[str, int]:
    return {"in_zp": x.zero_point, "out_zp": out.zero_point, **clamp(node, out)}


def _fields(s: dict, names: str) -> dict[str, int]:
    return {k: int(s[k]) for k in STRUCT_FIELDS[names] if k in s}


def _tensors(node: Node, graph: Graph) -> tuple[Tensor, Tensor]:
    return graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])


# ---------------------------------------------------------------- oracle helpers
def _as_map(node: Node, graph: Graph, x: np.ndarray, s: dict) -> np.ndarray:
    """A batch (N, *in.shape) as int64 (N, H, W, C)."""
    return shape_check(node, x, graph.tensor(node.inputs[0])).reshape(
        x.shape[0], s["in_h"], s["in_w"], s["channels"])


def _tap_views(xp: np.ndarray, s: dict):
    """The (N, OH, OW, C) view of the padded map read by each tap (ky, kx)."""
    dh, dw = s.get("dilation_h", 1), s.get("dilation_w", 1)
    sh, sw, oh, ow = s["stride_h"], s["stride_w"], s["out_h"], s["out_w"]
    for ky in range(s["kernel_h"]):
        for kx in range(s["kernel_w"]):
            yield xp[:, ky * dh:ky * dh + sh * (oh - 1) + 1:sh, kx * dw:kx * dw + sw * (ow - 1) + 1:sw, :]


def _pad(x: np.ndarray, s: dict, value: int) -> np.ndarray:
    return np.pad(x, ((0, 0), (s["pad_top"], s["pad_bottom"]), (s["pad_left"], s["pad_right"]), (0, 0)),
                  constant_values=value)


def _adaptive_windows(x: np.ndarray, s: dict, reduce) -> np.ndarray:
    """reduce(window (N, r, c, C), axis=(1, 2)) for every adaptive window -> (N, OH, OW, C)."""
    y = np.zeros((x.shape[0], s["out_h"], s["out_w"], s["channels"]), np.int64)
    for oy in range(s["out_h"]):
        for ox in range(s["out_w"]):
            y[:, oy, ox] = reduce(x[:, s["y0"][oy]:s["y1"][oy], s["x0"][ox]:s["x1"][ox]], axis=(1, 2))
    return y


def _out(y: np.ndarray, node: Node, graph: Graph) -> np.ndarray:
    return y.reshape((y.shape[0], *graph.tensor(node.outputs[0]).shape))


# ---------------------------------------------------------------- avg_pool2d
def _avg(node: Node, graph: Graph) -> tuple[str, dict, tuple | None]:
    """("uniform" | "var", struct fields and geometry, (K, m, n) of the count table or None)."""
    s = _window(node, graph, dilated=False)
    x, out = _tensors(node, graph)
    s.update(_qfields(node, x, out))
    cip = bool(node.attrs.get("count_include_pad", True))
    counts = np.outer(s["rows"], s["cols"])
    if "counts" in node.params:
        if cip:
            raise fail(node, "a count table needs count_include_pad=False")
        k, m, n = _count_table(node, counts, x)
        return "var", {**s, "n_counts": k}, (k, m, n)
    if not cip and np.unique(counts).size != 1:
        raise fail(node, f"count_include_pad=False with windows of {np.unique(counts).size} different "
                         "counts needs the count table in params (avg_pool_params())")
    if not cip and counts.min() < 1:
        raise fail(node, "a window lies wholly in the padding (count_include_pad=False divides by 0)")
    if s["kernel_h"] * s["kernel_w"] * span(x) > INT32_MAX:
        raise fail(node, f"window {s['kernel_h']}x{s['kernel_w']} overflows the int32 sum")
    m, n = scalar_quant(node)
    return "uniform", {**s, "multiplier": m, "shift": n}, None


def _avg_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    kind, s, table = _avg(node, graph)
    xp = _pad(_as_map(node, graph, inputs[0], s) - s["in_zp"], s, 0)
    acc = sum(_tap_views(xp, s))
    m, n = (s["multiplier"], s["shift"]) if table is None else table[1:]
    return _out(finish(acc, m, n, s["out_zp"], s, graph.tensor(node.outputs[0])), node, graph)


def _avg_kernel(node: Node, graph: Graph) -> CKernel:
    kind, s, _ = _avg(node, graph)
    dt = graph.tensor(node.outputs[0]).dtype
    if kind == "var":
        return CKernel(f"pqlr_avg_pool2d_var_{dt}", "pqlr_avg_pool2d_var_params",
                       _fields(s, "pqlr_avg_pool2d_var_params"), _TABLE_ARGS)
    return CKernel(f"pqlr_avg_pool2d_{dt}", "pqlr_avg_pool2d_params", _fields(s, "pqlr_avg_pool2d_params"),
                   ("in0", "out"))


def _avg_macs(node: Node, graph: Graph) -> int:
    _, s, _ = _avg(node, graph)
    return s["out_h"] * s["out_w"] * s["channels"] * s["kernel_h"] * s["kernel_w"]


# ---------------------------------------------------------------- adaptive_avg_pool2d
def _adaptive_avg(node: Node, graph: Graph) -> tuple[str, dict, tuple | None]:
    s = _adaptive(node, graph)
    x, out = _tensors(node, graph)
    s.update(_qfields(node, x, out))
    if "counts" in node.params:
        k, m, n = _count_table(node, np.outer(s["rows"], s["cols"]), x)
        return "var", {**s, "n_counts": k}, (k, m, n)
    grid = _uniform_grid(s)
    if grid is None:
        raise fail(node, f"adaptive windows of {s['in_h']}x{s['in_w']} -> {s['out_h']}x{s['out_w']} differ in "
                         "size: they need the count table in params (adaptive_avg_params())")
    kh, kw, sh, sw = grid
    if kh * kw * span(x) > INT32_MAX:
        raise fail(node, f"window {kh}x{kw} overflows the int32 sum")
    m, n = scalar_quant(node)
    return "uniform", {**s, "kernel_h": kh, "kernel_w": kw, "stride_h": sh, "stride_w": sw, "pad_top": 0,
                       "pad_left": 0, "pad_bottom": 0, "pad_right": 0, "multiplier": m, "shift": n}, None


def _adaptive_avg_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    kind, s, table = _adaptive_avg(node, graph)
    acc = _adaptive_windows(_as_map(node, graph, inputs[0], s) - s["in_zp"], s, np.sum)
    m, n = (s["multiplier"], s["shift"]) if table is None else table[1:]
    return _out(finish(acc, m, n, s["out_zp"], s, graph.tensor(node.outputs[0])), node, graph)


def _adaptive_avg_kernel(node: Node, graph: Graph) -> CKernel:
    kind, s, _ = _adaptive_avg(node, graph)
    dt = graph.tensor(node.outputs[0]).dtype
    if kind == "var":
        return CKernel(f"pqlr_adaptive_avg_pool2d_{dt}", "pqlr_adaptive_avg_pool2d_params",
                       _fields(s, "pqlr_adaptive_avg_pool2d_params"), _TABLE_ARGS)
    return CKernel(f"pqlr_avg_pool2d_{dt}", "pqlr_avg_pool2d_params", _fields(s, "pqlr_avg_pool2d_params"),
                   ("in0", "out"))


def _adaptive_macs(node: Node, graph: Graph) -> int:
    s = _adaptive(node, graph)
    return int(s["rows"].sum() * s["cols"].sum()) * s["channels"]


# ---------------------------------------------------------------- max_pool2d, adaptive_max_pool2d
def _same_quant(node: Node, x: Tensor, out: Tensor) -> None:
    if x.zero_point != out.zero_point or not math.isclose(x.scale, out.scale, rel_tol=1e-6):
        raise fail(node, f"output scale/zero point {out.scale:.6g}/{out.zero_point} must equal the input's "
                         f"{x.scale:.6g}/{x.zero_point} (max pooling does not requantize)")


def _max(node: Node, graph: Graph) -> dict:
    s = _window(node, graph, dilated=True)
    x, out = _tensors(node, graph)
    _same_quant(node, x, out)
    if s["rows"].min() < 1 or s["cols"].min() < 1:
        pads = tuple(s[k] for k in ("pad_top", "pad_left", "pad_bottom", "pad_right"))
        raise fail(node, f"a window lies wholly in the padding (padding {pads}, kernel {s['kernel_h']}x"
                         f"{s['kernel_w']}, dilation {s['dilation_h']}x{s['dilation_w']})")
    return {**s, **clamp(node, out)}


def _max_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _max(node, graph)
    xp = _pad(_as_map(node, graph, inputs[0], s), s, -(1 << 40))     # padding never wins
    y = np.maximum.reduce(list(_tap_views(xp, s)))
    y = np.clip(y, s["act_min"], s["act_max"]).astype(DTYPES[graph.tensor(node.outputs[0]).dtype])
    return _out(y, node, graph)


def _max_kernel(node: Node, graph: Graph) -> CKernel:
    return CKernel(f"pqlr_max_pool2d_{graph.tensor(node.outputs[0]).dtype}", "pqlr_max_pool2d_params",
                   _fields(_max(node, graph), "pqlr_max_pool2d_params"), ("in0", "out"))


def _max_macs(node: Node, graph: Graph) -> int:
    s = _max(node, graph)
    return int(s["rows"].sum() * s["cols"].sum()) * s["channels"]


def _adaptive_max(node: Node, graph: Graph) -> dict:
    s = _adaptive(node, graph)
    x, out = _tensors(node, graph)
    _same_quant(node, x, out)
    return {**s, **clamp(node, out)}


def _adaptive_max_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _adaptive_max(node, graph)
    y = _adaptive_windows(_as_map(node, graph, inputs[0], s), s, np.max)
    y = np.clip(y, s["act_min"], s["act_max"]).astype(DTYPES[graph.tensor(node.outputs[0]).dtype])
    return _out(y, node, graph)


def _adaptive_max_kernel(node: Node, graph: Graph) -> CKernel:
    return CKernel(f"pqlr_adaptive_max_pool2d_{graph.tensor(node.outputs[0]).dtype}",
                   "pqlr_adaptive_max_pool2d_params",
                   _fields(_adaptive_max(node, graph), "pqlr_adaptive_max_pool2d_params"), ("in0", "out"))


def _adaptive_max_macs(node: Node, graph: Graph) -> int:
    return _adaptive_macs(node, graph)


# ---------------------------------------------------------------- mean
def _axes(node: Node, x: Tensor) -> tuple[int, ...]:
    """attr axes (an int or ints; default every axis but the last), checked sorted, unique, in range."""
    r = len(x.shape)
    axes = node.attrs.get("axes", tuple(range(r - 1)))
    try:
        axes = tuple(int(a) for a in (axes if isinstance(axes, (tuple, list, np.ndarray)) else (axes,)))
    except (TypeError, ValueError):
        raise fail(node, f"attribute axes={node.attrs.get('axes')!r} is not a list of integers") from None
    if list(axes) != sorted(set(axes)) or any(not 0 <= a < r for a in axes):
        raise fail(node, f"axes {axes} must be sorted, unique and in [0, {r}) for input {x.shape}")
    return axes


def _mean(node: Node, graph: Graph) -> dict:
    """axes, count and the quantization fields of a mean node (checked)."""
    (x,), out = io(node, graph, 1)
    same_dtype(node, [x], out)
    r = len(x.shape)
    if not 1 <= r <= 4 or min(x.shape) < 1 or x.size > INT32_MAX:
        raise fail(node, f"mean needs an input of rank 1 to 4 (fewer than 2^31 elements), got {x.shape}")
    axes = _axes(node, x)
    kept = [d for a, d in enumerate(x.shape) if a not in axes]
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    if out.size != int(np.prod(kept, dtype=np.int64)):
        raise fail(node, f"mean over axes {axes} of {x.shape} keeps {tuple(kept)}, but the output is {out.shape}")
    if count * span(x) > INT32_MAX:
        raise fail(node, f"a mean over {count} elements overflows the int32 sum")
    m, n = scalar_quant(node)
    return {"shape": tuple(x.shape), "axes": axes, "count": count, **_qfields(node, x, out),
            "multiplier": m, "shift": n}


def _mean_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _mean(node, graph)
    x = shape_check(node, inputs[0], graph.tensor(node.inputs[0])) - s["in_zp"]
    acc = x.sum(axis=tuple(a + 1 for a in s["axes"]))
    return _out(finish(acc, s["multiplier"], s["shift"], s["out_zp"], s, graph.tensor(node.outputs[0])), node, graph)


def _mean_kernel(node: Node, graph: Graph) -> CKernel:
    s = _mean(node, graph)
    shape, axes, dt = s["shape"], s["axes"], graph.tensor(node.outputs[0]).dtype
    k = len(axes)
    q = {f: s[f] for f in ("in_zp", "out_zp", "multiplier", "shift", "act_min", "act_max")}
    if axes == tuple(range(k)):             # a leading block: one window over it, today's call
        c = int(np.prod(shape[k:], dtype=np.int64))
        h, w = (1, 1) if k == 0 else (shape[0], 1) if k == 1 else (int(np.prod(shape[:k - 1])), shape[k - 1])
        return CKernel(f"pqlr_avg_pool2d_{dt}", "pqlr_avg_pool2d_params", {
            "in_h": h, "in_w": w, "channels": c, "out_h": 1, "out_w": 1, "kernel_h": h, "kernel_w": w,
            "stride_h": 1, "stride_w": 1, "pad_top": 0, "pad_left": 0, "pad_bottom": 0, "pad_right": 0, **q},
            ("in0", "out"))
    pad = 4 - len(shape)
    return CKernel(f"pqlr_mean_{dt}", "pqlr_mean_params", {
        "dims": [1] * pad + list(shape), "reduce": [0] * pad + [int(a in axes) for a in range(len(shape))], **q},
        ("in0", "out"))


def _mean_macs(node: Node, graph: Graph) -> int:
    _mean(node, graph)
    return graph.tensor(node.inputs[0]).size


KERNELS = {"avg_pool2d": _avg_kernel, "adaptive_avg_pool2d": _adaptive_avg_kernel, "max_pool2d": _max_kernel,
           "adaptive_max_pool2d": _adaptive_max_kernel, "mean": _mean_kernel}

TABLE = kernel_table(KERNELS, STRUCT_FIELDS, {
    "avg_pool2d": (_avg_run, no_scratch, _avg_macs),
    "adaptive_avg_pool2d": (_adaptive_avg_run, no_scratch, _adaptive_macs),
    "max_pool2d": (_max_run, no_scratch, _max_macs),
    "adaptive_max_pool2d": (_adaptive_max_run, no_scratch, _adaptive_max_macs),
    "mean": (_mean_run, no_scratch, _mean_macs),
})
