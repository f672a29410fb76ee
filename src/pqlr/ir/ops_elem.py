"""Element-wise integer ops of the IR: NumPy oracle, builders and C call emission (C kernels in
runtime/src/pqlr_<op>_<dtype>.c, documented in runtime/include/pqlr_elem.h).

Shapes exclude the batch. A node's inputs and output share one dtype, s8 or s16; every op takes
optional attrs act_min / act_max, the output clamp (default: the output's bit range;
opkit.activation_clamp folds ReLU / ReLU6 / hardtanh in). d_x = x - zp_x throughout.

Binary ops with NumPy broadcasting: add, sub, mul
  Operands: node.inputs = [a, b] (two tensors), or node.inputs = [a] and a CONSTANT b:
  params["b"] int8 (s8) / int16 (s16) of the constant's shape with attrs b_scale, b_zero_point.
  a, b and out have one rank r in 1..4 (the lowering pads with leading 1s), every dim of a or b
  equals out's or is 1, and out is their broadcast shape. The C struct carries the shapes at rank 4:
  dims[4] (out) and in1_strides[4] / in2_strides[4] (each input's row-major element strides, 0
  where it broadcasts); the second C pointer is in2 or the constant's array (CKernel arg "in1"/"b").
  add   TFLite integer add: attrs left_shift (20 s8 / 15 s16), in1_multiplier, in1_shift,
        in2_multiplier, in2_shift, out_multiplier, out_shift from add_attrs(in1, in2, out):
            s = requantize(d_a << left_shift, m1, n1) + requantize(d_b << left_shift, m2, n2)  (int32)
            y = clamp(requantize(s, m_out, n_out) + zp_out, act_min, act_max)
        inputs rescaled to 2 max(s_a, s_b) / 2^left_shift, the sum to s_out; every int32 step is
        checked exact (refused otherwise: an s16 tensor with a non-zero zero point, a huge left_shift).
  sub   as add with s = requantize(d_a << ls, m1, n1) - requantize(d_b << ls, m2, n2); add_attrs().
  mul   attrs multiplier, shift = mul_attrs(in1, in2, out) for M = s_a s_b / s_out:
            y = clamp(requantize(d_a * d_b, m, n) + zp_out)    (|d_a d_b| < 2^31 checked: s8 255^2,
                                                                 s16 with zero points 0 2^30)
Channel ops: the input (shape of out) is viewed as (outer, C, inner) around attrs axis (the IR
axis of the channel, negative allowed, default -1): outer = prod(shape[:axis]), C = shape[axis],
inner = prod(shape[axis+1:]).
  prelu            LeakyReLU / PReLU. attrs axis, multiplier_pos, shift_pos (M = s_in / s_out);
                   params multiplier_neg int32 (C,) or (1,), shift_neg int8 same length
                   (M_c = alpha_c s_in / s_out; a negative slope stores -m of |M_c|):
            y = clamp(zp_out + (d >= 0 ? requantize(d, m_pos, n_pos) : requantize(d, m_neg[c], n_neg[c])))
                   requantize with m < 0 is still (d m + 2^(n-1)) >> n: 64-bit product, floor.
                   Build with prelu_params(alpha, in_t, out_t, axis).
  channel_affine   y = s_c x + t_c per channel (unfolded BatchNorm, SubSpectralNorm). attrs axis;
                   params gamma int8 (C,) (per-channel symmetric, s_g[c] = |s_c| / 127, sign in g),
                   beta int32 (C,) in the accumulator scale s_in s_g[c], multiplier int32 (C,) and
                   shift int8 (C,) for M_c = s_in s_g[c] / s_out:
            y = clamp(zp_out + requantize(d * g[c] + beta[c], m[c], n[c]))
                   the accumulator must fit int32: |beta[c]| + span(x) |g[c]| < 2^31 (refused
                   otherwise). Build with channel_affine_params(scale, shift, in_t, out_t, axis).
"""
from __future__ import annotations

import numpy as np

from .. import primitives as P
from ..errors import UnsupportedError
from .graph import Graph, Node, Tensor
from .opkit import (INT32_MAX, STORAGE, CKernel, clamp, elements, fail, finish, io, kernel_table,
                    no_scratch, quant_multipliers, same_dtype, scalar_quant, shape_check, span)

ADD_LEFT_SHIFT = {"s8": 20, "s16": 15}
MAX_RANK = 4                         # broadcasting ops: rank 1..4, normalised to 4 in C
CONST_DTYPE = {"s8": np.int8, "s16": np.int16}
GAMMA_MAX = 127                      # channel_affine: gamma in [-127, 127]
BETA_LIMIT = 2**30                   # channel_affine_params keeps |beta| <= 2^30 (+ span * 127 < 2^31)

_BROADCAST = ("size", "dims[4]", "in1_strides[4]", "in2_strides[4]")
# Field order of the C parameter structs in pqlr_elem.h (all int32_t; a test checks the layout).
STRUCT_FIELDS: dict[str, tuple[str, ...]] = {
    "pqlr_add_params": (
        *_BROADCAST, "in1_zp", "in2_zp", "out_zp", "left_shift", "in1_multiplier", "in1_shift",
        "in2_multiplier", "in2_shift", "out_multiplier", "out_shift", "act_min", "act_max"),
    "pqlr_mul_params": (
        *_BROADCAST, "in1_zp", "in2_zp", "out_zp", "multiplier", "shift", "act_min", "act_max"),
    "pqlr_prelu_params": (
        "outer", "channels", "inner", "n_neg", "in_zp", "out_zp", "multiplier_pos", "shift_pos",
        "act_min", "act_max"),
    "pqlr_channel_affine_params": (
        "outer", "channels", "inner", "in_zp", "out_zp", "act_min", "act_max"),
}


# ---------------------------------------------------------------- builders
def add_attrs(in1: Tensor, in2: Tensor, out: Tensor) -> dict[str, int]:
    """TFLite integer add (and sub): inputs rescaled to 2*max(s1, s2) / 2^left_shift, then to s_out.
    For a constant operand pass a Tensor describing it (its scale and zero point)."""
    ls = ADD_LEFT_SHIFT[out.dtype]
    twice_max = 2.0 * max(in1.scale, in2.scale)
    (m1,), (n1,) = quant_multipliers(in1.scale / twice_max)
    (m2,), (n2,) = quant_multipliers(in2.scale / twice_max)
    (mo,), (no,) = quant_multipliers(twice_max / ((1 << ls) * out.scale))
    return {"left_shift": ls, "in1_multiplier": int(m1), "in1_shift": int(n1),
            "in2_multiplier": int(m2), "in2_shift": int(n2),
            "out_multiplier": int(mo), "out_shift": int(no)}


def mul_attrs(in1: Tensor, in2: Tensor, out: Tensor) -> dict[str, int]:
    """multiplier / shift of M = s1 s2 / s_out."""
    (m,), (n,) = quant_multipliers(in1.scale * in2.scale / out.scale)
    return {"multiplier": int(m), "shift": int(n)}


def prelu_params(alpha, in_t: Tensor, out_t: Tensor, axis: int = -1) -> tuple[dict, dict]:
    """(params, attrs) of prelu for slope alpha: a scalar (LeakyReLU, PReLU with one parameter) or
    one per channel (C,) along `axis`. Any real slope: negative or above 1 too."""
    a = np.asarray(alpha, np.float64)
    if a.ndim > 1 or a.size < 1:
        raise UnsupportedError(f"prelu slope of shape {a.shape}: need a scalar or one per channel")
    a = a.reshape(-1)
    base = in_t.scale / out_t.scale
    (mp,), (sp,) = quant_multipliers(base)
    m, n = quant_multipliers(np.abs(a) * base)
    m = np.where(a < 0, -m.astype(np.int64), m).astype(np.int32)
    return ({"multiplier_neg": m, "shift_neg": n},
            {"axis": int(axis), "multiplier_pos": int(mp), "shift_pos": int(sp)})


def channel_affine_params(scale, shift, in_t: Tensor, out_t: Tensor, axis: int = -1,
                          name: str | None = None) -> tuple[dict, dict]:
    """(params, attrs) of channel_affine for real y = scale[c] x + shift[c] (both (C,), or scalars).

    gamma = +-127 at s_g = |scale| / 127 (the scale's precision lives in the 31-bit multiplier);
    s_g grows where |shift| / (s_in s_g) would pass 2^30 so beta fits; a zero scale gives gamma 0
    with beta carrying the shift at s_g = |shift| / (s_in 2^30) (s_g = s_out / s_in when both are 0).
    `name` (the layer) goes into the error raised for parameters that cannot be represented."""
    s, t = np.broadcast_arrays(np.atleast_1d(np.asarray(scale, np.float64)),
                               np.atleast_1d(np.asarray(shift, np.float64)))
    who = f"layer {name}: " if name else ""
    if s.ndim != 1 or not (np.all(np.isfinite(s)) and np.all(np.isfinite(t))):
        raise UnsupportedError(f"{who}channel_affine scale/shift must be finite and of shape (C,)")
    s_in = in_t.scale
    s_g = np.maximum(np.abs(s) / GAMMA_MAX, np.abs(t) / (s_in * BETA_LIMIT))
    s_g = np.where(s_g > 0, s_g, out_t.scale / s_in)
    gamma = np.clip(P.round_half_up(s / s_g), -GAMMA_MAX, GAMMA_MAX)
    beta = P.round_half_up(t / (s_in * s_g))
    if not np.all(np.isfinite(beta)) or np.any(np.abs(beta) + span(in_t) * np.abs(gamma) > INT32_MAX):
        raise UnsupportedError(f"{who}channel_affine beta does not fit int32")
    try:
        m, n = quant_multipliers(s_in * s_g / out_t.scale)
    except UnsupportedError as e:
        raise UnsupportedError(f"{who}channel_affine {e}") from None
    return ({"gamma": gamma.astype(np.int8), "beta": beta.astype(np.int32), "multiplier": m, "shift": n},
            {"axis": int(axis)})


# ---------------------------------------------------------------- broadcasting operands
def _operands(node: Node, graph: Graph) -> tuple[Tensor, Tensor, Tensor]:
    """(a, b, out); b is the second input tensor or a Tensor describing the constant params["b"]."""
    if len(node.inputs) == 1 and "b" in node.params:
        (a,), out = io(node, graph, 1)
        arr = np.asarray(node.params["b"])
        want = CONST_DTYPE.get(out.dtype)
        if want is None or arr.dtype != want:
            raise fail(node, f"constant operand b is {arr.dtype}; an {out.dtype} op needs {np.dtype(want).name}")
        if "b_scale" not in node.attrs or "b_zero_point" not in node.attrs:
            raise fail(node, "a constant operand b needs attrs b_scale and b_zero_point")
        b = Tensor(f"{node.name}.b", tuple(arr.shape), out.dtype, 16 if out.dtype == "s16" else 8,
                   float(node.attrs["b_scale"]), int(node.attrs["b_zero_point"]))
        lo, hi, _ = STORAGE[out.dtype]
        if not lo <= b.zero_point <= hi:
            raise fail(node, f"constant b zero point {b.zero_point} outside its {out.dtype} range")
    else:
        if "b" in node.params:
            raise fail(node, "has a second input and a constant operand b: give one")
        (a, b), out = io(node, graph, 2)
    same_dtype(node, [a, b], out)
    return a, b, out


def _strides(shape: tuple[int, ...]) -> list[int]:
    """Row-major element strides at rank 4, 0 where the dim is 1 (it broadcasts)."""
    full = (1,) * (MAX_RANK - len(shape)) + tuple(shape)
    out, step = [0] * MAX_RANK, 1
    for d in range(MAX_RANK - 1, -1, -1):
        out[d] = step if full[d] > 1 else 0
        step *= full[d]
    return out


def _broadcast(node: Node, a: Tensor, b: Tensor, out: Tensor) -> dict:
    """size, dims, in1_strides, in2_strides of the broadcast a (op) b -> out."""
    r = len(out.shape)
    if not 1 <= r <= MAX_RANK or len(a.shape) != r or len(b.shape) != r:
        raise fail(node, f"shapes {a.shape}, {b.shape} -> {out.shape}: ranks must be equal and in "
                         f"1..{MAX_RANK} (the lowering adds leading 1s)")
    if min(*a.shape, *b.shape, *out.shape) < 1 or out.size > INT32_MAX:
        raise fail(node, f"shapes {a.shape}, {b.shape} -> {out.shape}: empty or too large")
    for x, y, o in zip(a.shape, b.shape, out.shape):
        if x not in (1, o) or y not in (1, o) or o != max(x, y):
            raise fail(node, f"shapes {a.shape} and {b.shape} do not broadcast to {out.shape}")
    dims = [1] * (MAX_RANK - r) + list(out.shape)
    return {"size": out.size, "dims": dims, "in1_strides": _strides(a.shape), "in2_strides": _strides(b.shape)}


def _binary_inputs(inputs: list[np.ndarray], node: Node, graph: Graph, a: Tensor, b: Tensor):
    """The two operands as int64 arrays (N, *a.shape) and (N or 1, *b.shape)."""
    xa = shape_check(node, inputs[0], a)
    if len(node.inputs) == 1:
        return xa, np.asarray(node.params["b"], np.int64)[None]
    return xa, shape_check(node, inputs[1], b)


# ---------------------------------------------------------------- add, sub
def _add_struct(node: Node, graph: Graph) -> dict:
    a, b, out = _operands(node, graph)
    shapes = _broadcast(node, a, b, out)
    ls = int(node.attrs.get("left_shift", ADD_LEFT_SHIFT[out.dtype]))
    m1, n1 = scalar_quant(node, "in1_multiplier", "in1_shift")
    m2, n2 = scalar_quant(node, "in2_multiplier", "in2_shift")
    mo, no = scalar_quant(node, "out_multiplier", "out_shift")
    # Every int32 step must be exact: the shifted inputs and the sum (difference) of the rescaled ones.
    big = [span(t) << ls for t in (a, b)] if 0 <= ls <= 30 else [INT32_MAX + 1]
    scaled = [(v * m + (1 << (n - 1))) >> n for v, m, n in zip(big, (m1, m2), (n1, n2))]
    if max(big) > INT32_MAX or sum(scaled) + 2 > INT32_MAX:
        raise fail(node, f"left_shift {ls} with these multipliers and zero points overflows int32 "
                         "(use add_attrs(); s16 needs zero points 0)")
    return {**shapes, "in1_zp": a.zero_point, "in2_zp": b.zero_point, "out_zp": out.zero_point,
            "left_shift": ls, "in1_multiplier": m1, "in1_shift": n1, "in2_multiplier": m2,
            "in2_shift": n2, "out_multiplier": mo, "out_shift": no, **clamp(node, out)}


def _add_sub_run(sign: int):
    def run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
        s = _add_struct(node, graph)
        a_t, b_t, out = _operands(node, graph)
        xa, xb = _binary_inputs(inputs, node, graph, a_t, b_t)
        ra = P.requantize((xa - s["in1_zp"]) << s["left_shift"], s["in1_multiplier"], s["in1_shift"])
        rb = P.requantize((xb - s["in2_zp"]) << s["left_shift"], s["in2_multiplier"], s["in2_shift"])
        return finish(ra + sign * rb, s["out_multiplier"], s["out_shift"], s["out_zp"], s, out)
    return run


# ---------------------------------------------------------------- mul
def _mul_struct(node: Node, graph: Graph) -> dict:
    a, b, out = _operands(node, graph)
    shapes = _broadcast(node, a, b, out)
    m, n = scalar_quant(node)
    if span(a) * span(b) > INT32_MAX:
        raise fail(node, f"product of |x - zp| spans {span(a)} * {span(b)} overflows int32 (s16 needs zero points 0)")
    return {**shapes, "in1_zp": a.zero_point, "in2_zp": b.zero_point, "out_zp": out.zero_point,
            "multiplier": m, "shift": n, **clamp(node, out)}


def _mul_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _mul_struct(node, graph)
    a_t, b_t, out = _operands(node, graph)
    xa, xb = _binary_inputs(inputs, node, graph, a_t, b_t)
    return finish((xa - s["in1_zp"]) * (xb - s["in2_zp"]), s["multiplier"], s["shift"], s["out_zp"], s, out)


def _binary_kernel(op: str, struct_type: str, struct):
    def kernel(node: Node, graph: Graph) -> CKernel:
        fields = struct(node, graph)
        second = "b" if len(node.inputs) == 1 else "in1"
        return CKernel(f"pqlr_{op}_{graph.tensor(node.outputs[0]).dtype}", struct_type, fields,
                       ("in0", second, "out"))
    return kernel


# ---------------------------------------------------------------- channel ops: prelu, channel_affine
def _channel_view(node: Node, graph: Graph) -> tuple[Tensor, Tensor, dict]:
    """x, out and outer / channels / inner around attrs axis; x and out of one shape and dtype."""
    (x,), out = io(node, graph, 1)
    same_dtype(node, [x], out)
    if tuple(x.shape) != tuple(out.shape) or len(x.shape) < 1 or x.size < 1:
        raise fail(node, f"shapes {x.shape} -> {out.shape}: need one non-empty shape of rank >= 1")
    r, axis = len(x.shape), int(node.attrs.get("axis", -1))
    if not -r <= axis < r:
        raise fail(node, f"axis {axis} outside a rank-{r} tensor")
    axis %= r
    return x, out, {"outer": int(np.prod(x.shape[:axis], dtype=np.int64)), "channels": int(x.shape[axis]),
                    "inner": int(np.prod(x.shape[axis + 1:], dtype=np.int64))}


def _param(node: Node, key: str, dtype, lengths: tuple[int, ...]) -> np.ndarray:
    """params[key] as a 1-D int64 array of dtype `dtype` with one of `lengths` entries."""
    v = node.params.get(key)
    if v is None or np.asarray(v).dtype != dtype:
        raise fail(node, f"param {key!r} must be an {np.dtype(dtype).name} array")
    v = np.asarray(v)
    if v.ndim != 1 or v.size not in lengths:
        raise fail(node, f"param {key} has shape {v.shape}; need ({' or '.join(map(str, sorted(set(lengths))))},)")
    return v.astype(np.int64)


def _by_channel(v: np.ndarray) -> np.ndarray:
    """A (C,) or (1,) per-channel array shaped to broadcast over (N, outer, C, inner)."""
    return v.reshape(1, 1, -1, 1)


def _prelu_check(node: Node, graph: Graph):
    x, out, view = _channel_view(node, graph)
    mp, sp = scalar_quant(node, "multiplier_pos", "shift_pos")
    c = view["channels"]
    m = _param(node, "multiplier_neg", np.int32, (1, c))
    n = _param(node, "shift_neg", np.int8, (1, c))
    if m.size != n.size:
        raise fail(node, f"multiplier_neg / shift_neg lengths {m.size} / {n.size} differ")
    if n.min() < 1 or n.max() > 62:
        raise fail(node, "shift_neg outside [1, 62]")
    struct = {**view, "n_neg": int(m.size), "in_zp": x.zero_point, "out_zp": out.zero_point,
              "multiplier_pos": mp, "shift_pos": sp, **clamp(node, out)}
    return x, out, struct, m, n


def _prelu_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    x_t, out, s, m, n = _prelu_check(node, graph)
    x = shape_check(node, inputs[0], x_t)
    d = (x - s["in_zp"]).reshape(x.shape[0], s["outer"], s["channels"], s["inner"])
    acc = np.where(d >= 0, P.requantize(d, s["multiplier_pos"], s["shift_pos"]),
                   P.requantize(d, _by_channel(m), _by_channel(n)))
    y = np.clip(acc + s["out_zp"], s["act_min"], s["act_max"])
    return y.reshape(x.shape).astype(np.int8 if out.dtype == "s8" else np.int16)


def _prelu_kernel(node: Node, graph: Graph) -> CKernel:
    out, s = _prelu_check(node, graph)[1:3]
    return CKernel(f"pqlr_prelu_{out.dtype}", "pqlr_prelu_params", s,
                   ("in0", "multiplier_neg", "shift_neg", "out"))


def _affine_check(node: Node, graph: Graph):
    x, out, view = _channel_view(node, graph)
    c = view["channels"]
    g = _param(node, "gamma", np.int8, (c,))
    beta = _param(node, "beta", np.int32, (c,))
    m = _param(node, "multiplier", np.int32, (c,))
    n = _param(node, "shift", np.int8, (c,))
    if m.min() < 0 or n.min() < 1 or n.max() > 62:
        raise fail(node, "multiplier outside [0, 2^31) or shift outside [1, 62]")
    worst = np.abs(beta) + span(x) * np.abs(g)
    if worst.max() > INT32_MAX:
        c_bad = int(np.argmax(worst))
        raise fail(node, f"beta[{c_bad}] = {int(beta[c_bad])} out of range: |beta| + {span(x)} |gamma| "
                         "must fit int32 (the accumulator)")
    struct = {**view, "in_zp": x.zero_point, "out_zp": out.zero_point, **clamp(node, out)}
    return x, out, struct, (g, beta, m, n)


def _affine_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    x_t, out, s, (g, beta, m, n) = _affine_check(node, graph)
    x = shape_check(node, inputs[0], x_t)
    d = (x - s["in_zp"]).reshape(x.shape[0], s["outer"], s["channels"], s["inner"])
    acc = d * _by_channel(g) + _by_channel(beta)
    return finish(acc, _by_channel(m), _by_channel(n), s["out_zp"], s, out).reshape(x.shape)


def _affine_kernel(node: Node, graph: Graph) -> CKernel:
    out, s = _affine_check(node, graph)[1:3]
    return CKernel(f"pqlr_channel_affine_{out.dtype}", "pqlr_channel_affine_params", s,
                   ("in0", "gamma", "beta", "multiplier", "shift", "out"))


KERNELS = {"add": _binary_kernel("add", "pqlr_add_params", _add_struct),
           "sub": _binary_kernel("sub", "pqlr_add_params", _add_struct),
           "mul": _binary_kernel("mul", "pqlr_mul_params", _mul_struct),
           "prelu": _prelu_kernel,
           "channel_affine": _affine_kernel}

TABLE = kernel_table(KERNELS, STRUCT_FIELDS, {
    "add": (_add_sub_run(+1), no_scratch, elements),
    "sub": (_add_sub_run(-1), no_scratch, elements),
    "mul": (_mul_run, no_scratch, elements),
    "prelu": (_prelu_run, no_scratch, elements),
    "channel_affine": (_affine_run, no_scratch, elements),
})
