"""Integer CNN ops of the IR: NumPy oracle, C call emission, MAC counts (C kernels in
runtime/src/pqlr_<op>_<dtype>.c, documented in runtime/include/pqlr_nn.h).

Ops and node conventions (feature maps HWC, shapes without batch; s8 or s16 activations, the
output dtype equals the input dtype except for requantize):
  conv2d            in (H, W, C_in) -> out (OH, OW, C_out)
  depthwise_conv2d  in (H, W, C) -> out (OH, OW, C)           channel multiplier 1
      attrs: kernel (KH, KW), stride (SH, SW) = (1, 1), padding (top, left, bottom, right) = 0,
             wbits in {8, 4, 2, 1}; OH = (H + top + bottom - KH) // SH + 1 (likewise OW).
  fully_connected   in (K,) or (T, K) -> out (C_out,) or (T, C_out), per row (token).  attrs: wbits
      params: weight = PACKED uint8 (C_out, packed_row_bytes(K, wbits)) as deployed
              (primitives.pack_weights); row layout: conv2d (KH, KW, C_in) flattened, depthwise the
              KH*KW taps of channel c, fully_connected the K inputs.
              bias int32 (C_out,) (optional), multiplier int32 and shift int32 (C_out,) or (1,)
              (requant_params(s_in, s_w, s_out) builds them).
      acc = bias + sum (x - zp_in) * w       (int32; padding reads as zp_in, adds 0)
      y = clamp(requantize(acc, m, n) + zp_out, act_min, act_max)     (64-bit, never wraps)
  add               in1, in2, out of one shape, each with its own qparams (TFLite-style):
      attrs: left_shift (20 s8 / 15 s16), in1_multiplier, in1_shift, in2_multiplier, in2_shift,
             out_multiplier, out_shift -- build them with add_attrs().
      a = (x1 - zp1) << left_shift; s = requantize(a, m1, n1) + requantize(b, m2, n2)  (int32)
      y = clamp(requantize(s, m_out, n_out) + zp_out, act_min, act_max)
  avg_pool2d        in (H, W, C) -> out (OH, OW, C); attrs kernel, stride (= kernel), padding,
                    multiplier, shift (1/(KH*KW) folded in: pool_attrs()); padding counts as zp_in
                    (PyTorch count_include_pad=True).
  mean              in (H, W, C) or (T, C) -> out of C elements ((C,) or (1, 1, C)): global average
                    pool / mean over tokens; attrs multiplier, shift (pool_attrs with window H*W or T).
      acc = sum over the window of (x - zp_in); y = clamp(requantize(acc, m, n) + zp_out, ...)
  requantize        any shape -> same size, other qparams/dtype; attrs multiplier, shift
                    (requantize_attrs()); y = clamp(requantize(x - zp_in, m, n) + zp_out, ...).
Every op takes optional attrs act_min / act_max (the output clamp: ReLU, ReLU6, 4-bit range;
activation_clamp() builds them), default = primitives.act_range(out.bits).
Layers whose int32 accumulator could overflow (|bias| + accumulator_bound > 2^31 - 1) or whose
parameters are out of range raise UnsupportedError naming the layer.

c_call: symbols maps "weight", "bias", "multiplier", "shift" to C identifiers; for a weight tile,
symbols may also hold "ch_begin" / "ch_end" (integer literals): the kernel then computes only those
output channels and symbols["weight"] points at the packed row of channel ch_begin. The call is
`{ static const <struct> p = {...}; PQLR_CHECK(pqlr_<op>_<dtype>(&p, ...)); }`; c_kernel(node, graph)
gives the same kernel name, struct values and argument order as data (tests call it via ctypes).
No reference kernel needs scratch (scratch_bytes = 0).

In place (s8 only): a conv2d / depthwise_conv2d node copy marked attrs["in_place"] = True (set by
deploy.plan.run_node for the layers the arena planner runs in place; never stored in a graph) calls
pqlr_conv2d_1x1_inplace_s8 / pqlr_depthwise_conv2d_inplace_s8 instead: same struct and results,
output == input allowed, one more argument `scratch` (symbols["scratch"], the planned arena
buffer of in_place_scratch_bytes). in_place_scratch_bytes(node, graph) is None for layers that
cannot run in place (pointwise: kernel 1x1, stride 1, no padding; depthwise: stride 1, output size
== input size). The oracle (run) ignores the mark: in place changes memory, never results.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np

from .. import primitives as P
from ..errors import UnsupportedError
from .graph import DTYPES, Graph, Node, Tensor
from .ops import OpDef

INT32_MAX = 2**31 - 1
STORAGE = {"s8": (-128, 127, "int8_t"), "s16": (-32768, 32767, "int16_t")}
ADD_LEFT_SHIFT = {"s8": 20, "s16": 15}

# Field order of the C parameter structs in pqlr_nn.h (all int32_t; a test checks the layout).
STRUCT_FIELDS: dict[str, tuple[str, ...]] = {
    "pqlr_conv2d_params": (
        "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "kernel_h", "kernel_w", "stride_h",
        "stride_w", "pad_top", "pad_left", "pad_bottom", "pad_right", "wbits", "in_zp", "out_zp",
        "act_min", "act_max", "n_quant", "ch_begin", "ch_end"),
    "pqlr_fully_connected_params": (
        "rows", "in_features", "out_features", "wbits", "in_zp", "out_zp", "act_min", "act_max",
        "n_quant", "ch_begin", "ch_end"),
    "pqlr_add_params": (
        "size", "in1_zp", "in2_zp", "out_zp", "left_shift", "in1_multiplier", "in1_shift",
        "in2_multiplier", "in2_shift", "out_multiplier", "out_shift", "act_min", "act_max"),
    "pqlr_avg_pool2d_params": (
        "in_h", "in_w", "channels", "out_h", "out_w", "kernel_h", "kernel_w", "stride_h", "stride_w",
        "pad_top", "pad_left", "pad_bottom", "pad_right", "in_zp", "out_zp", "multiplier", "shift",
        "act_min", "act_max"),
    "pqlr_requantize_params": ("size", "in_zp", "out_zp", "multiplier", "shift", "act_min", "act_max"),
}


# ---------------------------------------------------------------- builders ("decide")
def quant_multipliers(real) -> tuple[np.ndarray, np.ndarray]:
    """Real multipliers (array) -> int32 multiplier and int8 shift arrays (primitives.quantize_multiplier).
    The shift is in [1, 62], so one byte per channel holds it (int32 would be 3 wasted flash bytes each)."""
    pairs = [P.quantize_multiplier(float(r)) for r in np.atleast_1d(np.asarray(real, np.float64))]
    return (np.array([m for m, _ in pairs], np.int32), np.array([n for _, n in pairs], np.int8))


def requant_params(in_scale: float, w_scales, out_scale: float) -> dict[str, np.ndarray]:
    """conv / depthwise / fully_connected params multiplier, shift for M = s_in * s_w[c] / s_out."""
    m, n = quant_multipliers(in_scale * np.asarray(w_scales, np.float64) / out_scale)
    return {"multiplier": m, "shift": n}


def add_attrs(in1: Tensor, in2: Tensor, out: Tensor) -> dict[str, int]:
    """TFLite integer add: inputs rescaled to 2*max(s1, s2) / 2^left_shift, then to s_out."""
    ls = ADD_LEFT_SHIFT[out.dtype]
    twice_max = 2.0 * max(in1.scale, in2.scale)
    (m1,), (n1,) = quant_multipliers(in1.scale / twice_max)
    (m2,), (n2,) = quant_multipliers(in2.scale / twice_max)
    (mo,), (no,) = quant_multipliers(twice_max / ((1 << ls) * out.scale))
    return {"left_shift": ls, "in1_multiplier": int(m1), "in1_shift": int(n1),
            "in2_multiplier": int(m2), "in2_shift": int(n2),
            "out_multiplier": int(mo), "out_shift": int(no)}


def pool_attrs(in_t: Tensor, out_t: Tensor, window: int) -> dict[str, int]:
    """avg_pool2d / mean multiplier, shift for M = s_in / (s_out * window)."""
    (m,), (n,) = quant_multipliers(in_t.scale / (out_t.scale * window))
    return {"multiplier": int(m), "shift": int(n)}


def requantize_attrs(in_t: Tensor, out_t: Tensor) -> dict[str, int]:
    (m,), (n,) = quant_multipliers(in_t.scale / out_t.scale)
    return {"multiplier": int(m), "shift": int(n)}


def activation_clamp(out: Tensor, kind: str | None) -> dict[str, int]:
    """act_min / act_max for no activation, "relu" or "relu6" at the output's qparams."""
    lo, hi = P.act_range(out.bits)
    if kind in ("relu", "relu6"):
        lo = max(lo, out.zero_point)
    if kind == "relu6":
        hi = min(hi, out.zero_point + int(P.round_half_up(6.0 / out.scale)))
    elif kind not in (None, "relu"):
        raise UnsupportedError(f"activation {kind!r} cannot be folded into an output clamp")
    return {"act_min": int(lo), "act_max": int(hi)}


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int) -> int:
    return (size + pad_before + pad_after - kernel) // stride + 1


# ---------------------------------------------------------------- checks shared by run and c_call
def _fail(node: Node, msg: str) -> UnsupportedError:
    return UnsupportedError(f"layer {node.name} ({node.op}): {msg}")


def _io(node: Node, graph: Graph, n_in: int) -> tuple[list[Tensor], Tensor]:
    if len(node.inputs) != n_in or len(node.outputs) != 1:
        raise _fail(node, f"expects {n_in} input(s) and 1 output, got {len(node.inputs)} and {len(node.outputs)}")
    ins = [graph.tensor(t) for t in node.inputs]
    out = graph.tensor(node.outputs[0])
    for t in [*ins, out]:
        if t.dtype not in STORAGE:
            raise _fail(node, f"tensor {t.name} has dtype {t.dtype!r}; only s8 and s16 are supported")
        lo, hi, _ = STORAGE[t.dtype]
        if not lo <= t.zero_point <= hi:
            raise _fail(node, f"tensor {t.name} zero point {t.zero_point} outside its {t.dtype} range")
    return ins, out


def _same_dtype(node: Node, ins: list[Tensor], out: Tensor) -> str:
    for t in ins:
        if t.dtype != out.dtype:
            raise _fail(node, f"input {t.name} is {t.dtype} but output {out.name} is {out.dtype} "
                              "(insert a requantize)")
    return out.dtype


def _pair(node: Node, key: str, default: tuple[int, ...] | None, n: int = 2) -> tuple[int, ...]:
    v = node.attrs.get(key, default)
    if v is None:
        raise _fail(node, f"missing attribute {key!r}")
    v = tuple(int(a) for a in (v if isinstance(v, (tuple, list, np.ndarray)) else (v,) * n))
    if len(v) != n:
        raise _fail(node, f"attribute {key}={v} needs {n} values")
    return v


def _clamp(node: Node, out: Tensor) -> dict[str, int]:
    lo, hi = P.act_range(out.bits)
    lo, hi = int(node.attrs.get("act_min", lo)), int(node.attrs.get("act_max", hi))
    s_lo, s_hi, _ = STORAGE[out.dtype]
    if not s_lo <= lo <= hi <= s_hi:
        raise _fail(node, f"output clamp [{lo}, {hi}] is not inside the {out.dtype} range")
    return {"act_min": lo, "act_max": hi}


def _span(t: Tensor) -> int:
    """max |x - zero_point| over the storage range of t."""
    lo, hi, _ = STORAGE[t.dtype]
    return max(hi - t.zero_point, t.zero_point - lo)


def _scalar_quant(node: Node, m_key: str = "multiplier", n_key: str = "shift") -> tuple[int, int]:
    m, n = int(node.attrs.get(m_key, -1)), int(node.attrs.get(n_key, 0))
    if not (0 <= m <= INT32_MAX and 1 <= n <= 62):
        raise _fail(node, f"{m_key}={m}, {n_key}={n} outside m in [0, 2^31), n in [1, 62]")
    return m, n


def _channel_quant(node: Node, out_c: int) -> tuple[np.ndarray, np.ndarray]:
    for key, dt in (("multiplier", np.int32), ("shift", np.int8)):
        if key not in node.params or np.asarray(node.params[key]).dtype != dt:
            raise _fail(node, f"param {key!r} must be an {np.dtype(dt).name} array (deployed as {np.dtype(dt).name}_t)")
    m = node.params["multiplier"].astype(np.int64).ravel()
    n = node.params["shift"].astype(np.int64).ravel()
    if m.shape != n.shape or m.size not in (1, out_c):
        raise _fail(node, f"multiplier/shift lengths {m.size}/{n.size}; need 1 or {out_c}")
    if m.min() < 0 or m.max() > INT32_MAX or n.min() < 1 or n.max() > 62:
        raise _fail(node, "multiplier outside [0, 2^31) or shift outside [1, 62]")
    return m, n


def _weights(node: Node, in_t: Tensor, rows: int, k: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Validated (wbits, unpacked int64 weights (rows, k), int64 bias (rows,))."""
    wbits = int(node.attrs.get("wbits", 8))
    if wbits not in P.WEIGHT_BITS:
        raise _fail(node, f"wbits={wbits}; supported {P.WEIGHT_BITS}")
    packed = node.params.get("weight")
    if packed is None:
        raise _fail(node, "missing param 'weight'")
    if packed.dtype != np.uint8 or packed.shape != (rows, P.packed_row_bytes(k, wbits)):
        raise _fail(node, f"weight {packed.dtype} {packed.shape}; expected packed uint8 "
                          f"({rows}, {P.packed_row_bytes(k, wbits)}) for K={k} at {wbits} bit")
    bias = node.params.get("bias")
    if bias is not None and (np.asarray(bias).dtype != np.int32 or np.shape(bias) != (rows,)):
        raise _fail(node, f"bias must be int32 of shape ({rows},)")
    bias = np.zeros(rows, np.int64) if bias is None else bias.astype(np.int64)
    bound = P.accumulator_bound(k, 16 if in_t.dtype == "s16" else 8, wbits)
    if int(np.abs(bias).max(initial=0)) + bound > INT32_MAX:
        raise _fail(node, f"int32 accumulator may overflow: |bias| + bound {bound} for K={k} "
                          f"({in_t.dtype} x {wbits}-bit) exceeds 2^31 - 1")
    return wbits, P.unpack_weights(packed, wbits, k).astype(np.int64), bias


def _finish(acc: np.ndarray, m, n, zp_out: int, clamp: dict[str, int], out: Tensor) -> np.ndarray:
    y = P.requantize(acc, m, n) + zp_out
    return np.clip(y, clamp["act_min"], clamp["act_max"]).astype(DTYPES[out.dtype])


def _shape_check(node: Node, x: np.ndarray, t: Tensor) -> np.ndarray:
    if tuple(x.shape[1:]) != tuple(t.shape):
        raise _fail(node, f"input batch {x.shape} does not match tensor {t.name} {t.shape}")
    return x.astype(np.int64)


def _tile(struct: dict[str, int], symbols: dict[str, str], n_ch: int) -> dict[str, int]:
    b, e = int(symbols.get("ch_begin", 0)), int(symbols.get("ch_end", n_ch))
    if not 0 <= b < e <= n_ch:
        raise UnsupportedError(f"weight tile channels [{b}, {e}) outside [0, {n_ch})")
    return {**struct, "ch_begin": b, "ch_end": e}


@dataclass(frozen=True)
class CKernel:
    """One C kernel call: `fn(&p, <args>)` with `p` a `struct_type` initialised from `fields`.

    args name the pointer arguments in order: "in0", "in1" (inputs), "out" (output) and param names
    ("weight", "bias", "multiplier", "shift"); a param absent from node.params is passed as NULL."""
    fn: str
    struct_type: str
    fields: dict[str, int]
    args: tuple[str, ...]


def c_kernel(node: Node, graph: Graph) -> CKernel:
    """The C kernel, its parameter struct values and argument order for `node` (validated)."""
    return _KERNELS[node.op](node, graph)


def _c_call(node: Node, graph: Graph, ins: list[str], out: str, symbols: dict[str, str]) -> str:
    k = c_kernel(node, graph)
    fields = k.fields
    if "ch_begin" in fields:
        fields = _tile(fields, symbols, fields["ch_end"])
    names = STRUCT_FIELDS[k.struct_type]
    assert set(fields) == set(names), set(fields) ^ set(names)
    exprs = {"out": out, **{f"in{i}": e for i, e in enumerate(ins)}}
    if "scratch" in k.args:                       # in-place kernels: the planned scratch buffer
        if "scratch" not in symbols:
            raise _fail(node, "runs in place but no scratch buffer was planned")
        exprs["scratch"] = symbols["scratch"]
    for a in k.args:
        if a not in exprs:
            exprs[a] = "NULL" if a not in node.params else (
                f"(const int8_t *){symbols[a]}" if a == "weight" else symbols[a])
    init = textwrap.fill(", ".join(f".{f}={fields[f]}" for f in names), 92, break_on_hyphens=False,
                         initial_indent=" " * 8, subsequent_indent=" " * 8).replace("=", " = ")
    call = f"{k.fn}(&p, {', '.join(exprs[a] for a in k.args)})"
    return f"{{\n    static const {k.struct_type} p = {{\n{init}}};\n    PQLR_CHECK({call});\n}}"


# ---------------------------------------------------------------- conv2d, depthwise_conv2d
def _conv_struct(node: Node, graph: Graph, depthwise: bool) -> dict[str, int]:
    (x,), out = _io(node, graph, 1)
    _same_dtype(node, [x], out)
    if len(x.shape) != 3 or len(out.shape) != 3:
        raise _fail(node, f"needs HWC input and output, got {x.shape} -> {out.shape}")
    kh, kw = _pair(node, "kernel", None)
    sh, sw = _pair(node, "stride", (1, 1))
    pt, pl, pb, pr = _pair(node, "padding", (0, 0, 0, 0), 4)
    if min(kh, kw, sh, sw) < 1 or min(pt, pl, pb, pr) < 0:
        raise _fail(node, f"kernel {kh}x{kw}, stride {sh}x{sw}, padding {(pt, pl, pb, pr)} invalid")
    (h, w, c_in), c_out = x.shape, out.shape[2]
    if h + pt + pb < kh or w + pl + pr < kw:
        raise _fail(node, f"kernel {kh}x{kw} larger than the padded input {x.shape}")
    oh, ow = conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr)
    if out.shape[:2] != (oh, ow) or (depthwise and c_out != c_in):
        raise _fail(node, f"output {out.shape} inconsistent with input {x.shape}, kernel {kh}x{kw}, "
                          f"stride {sh}x{sw}, padding {(pt, pl, pb, pr)}")
    m, _ = _channel_quant(node, c_out)
    wbits, _, _ = _weights(node, x, c_out, kh * kw * (1 if depthwise else c_in))
    return {"in_h": h, "in_w": w, "in_c": c_in, "out_h": oh, "out_w": ow, "out_c": c_out,
            "kernel_h": kh, "kernel_w": kw, "stride_h": sh, "stride_w": sw, "pad_top": pt,
            "pad_left": pl, "pad_bottom": pb, "pad_right": pr, "wbits": wbits,
            "in_zp": x.zero_point, "out_zp": out.zero_point, **_clamp(node, out),
            "n_quant": m.size, "ch_begin": 0, "ch_end": c_out}


def _conv_run_any(inputs: list[np.ndarray], node: Node, graph: Graph, depthwise: bool) -> np.ndarray:
    s = _conv_struct(node, graph, depthwise)
    x_t, out = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    kh, kw, sh, sw, oh, ow = (s[k] for k in ("kernel_h", "kernel_w", "stride_h", "stride_w", "out_h", "out_w"))
    k = kh * kw * (1 if depthwise else s["in_c"])
    _, w, bias = _weights(node, x_t, s["out_c"], k)
    w = w.reshape(s["out_c"], kh, kw, -1)                          # (C_out, KH, KW, C_in or 1)
    x = _shape_check(node, inputs[0], x_t) - s["in_zp"]            # (N, H, W, C_in), real zero = 0
    xp = np.pad(x, ((0, 0), (s["pad_top"], s["pad_bottom"]), (s["pad_left"], s["pad_right"]), (0, 0)))
    acc = np.broadcast_to(bias, (x.shape[0], oh, ow, s["out_c"])).copy()
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]  # (N, OH, OW, C_in)
            acc += patch * w[:, ky, kx, 0] if depthwise else patch @ w[:, ky, kx, :].T
    m, n = _channel_quant(node, s["out_c"])
    return _finish(acc, m, n, s["out_zp"], s, out)


def _conv_kernel(node: Node, graph: Graph) -> CKernel:
    dw = node.op == "depthwise_conv2d"
    fn = f"pqlr_{node.op}_{graph.tensor(node.outputs[0]).dtype}"
    args = ("in0", "weight", "bias", "multiplier", "shift", "out")
    if node.attrs.get("in_place"):
        if in_place_scratch_bytes(node, graph) is None:
            raise _fail(node, "marked in_place but no in-place kernel fits this layer")
        fn, args = IN_PLACE_KERNELS[node.op], (*args, "scratch")
    return CKernel(fn, "pqlr_conv2d_params", _conv_struct(node, graph, dw), args)


# in-place kernels (pqlr_nn.h, end): op -> kernel; scratch bytes per in_place_scratch_bytes
IN_PLACE_KERNELS = {"conv2d": "pqlr_conv2d_1x1_inplace_s8",
                    "depthwise_conv2d": "pqlr_depthwise_conv2d_inplace_s8"}


def in_place_scratch_bytes(node: Node, graph: Graph) -> int | None:
    """Scratch bytes of the in-place kernel of `node`, or None when it cannot run in place
    (mirrors pqlr_conv2d_1x1_inplace_ok / pqlr_depthwise_conv2d_inplace_ok in pqlr_nn.h)."""
    if node.op not in IN_PLACE_KERNELS or graph.tensor(node.outputs[0]).dtype != "s8":
        return None
    s = _conv_struct(node, graph, node.op == "depthwise_conv2d")
    if s["stride_h"] != 1 or s["stride_w"] != 1:
        return None
    if node.op == "conv2d":
        pads = (s["pad_top"], s["pad_left"], s["pad_bottom"], s["pad_right"])
        return s["out_c"] if (s["kernel_h"], s["kernel_w"]) == (1, 1) and pads == (0, 0, 0, 0) else None
    if (s["out_h"], s["out_w"]) != (s["in_h"], s["in_w"]):
        return None
    return (s["pad_top"] + 1) * s["in_w"] * s["in_c"]        # ring of pad_top + 1 input rows


def _conv_scratch(node: Node, graph: Graph) -> int:
    return int(in_place_scratch_bytes(node, graph) or 0) if node.attrs.get("in_place") else 0


def _conv_macs(node: Node, graph: Graph) -> int:
    s = _conv_struct(node, graph, False)
    return s["out_h"] * s["out_w"] * s["out_c"] * s["kernel_h"] * s["kernel_w"] * s["in_c"]


def _dw_macs(node: Node, graph: Graph) -> int:
    s = _conv_struct(node, graph, True)
    return s["out_h"] * s["out_w"] * s["out_c"] * s["kernel_h"] * s["kernel_w"]


# ---------------------------------------------------------------- fully_connected
def _fc_struct(node: Node, graph: Graph) -> dict[str, int]:
    (x,), out = _io(node, graph, 1)
    _same_dtype(node, [x], out)
    if len(x.shape) not in (1, 2) or len(out.shape) != len(x.shape) or x.shape[:-1] != out.shape[:-1]:
        raise _fail(node, f"needs (K,) -> (C_out,) or (T, K) -> (T, C_out), got {x.shape} -> {out.shape}")
    rows, k, c_out = (x.shape[0] if len(x.shape) == 2 else 1), x.shape[-1], out.shape[-1]
    m, _ = _channel_quant(node, c_out)
    wbits, _, _ = _weights(node, x, c_out, k)
    return {"rows": rows, "in_features": k, "out_features": c_out, "wbits": wbits,
            "in_zp": x.zero_point, "out_zp": out.zero_point, **_clamp(node, out),
            "n_quant": m.size, "ch_begin": 0, "ch_end": c_out}


def _fc_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _fc_struct(node, graph)
    x_t, out = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    _, w, bias = _weights(node, x_t, s["out_features"], s["in_features"])   # (C_out, K)
    x = _shape_check(node, inputs[0], x_t) - s["in_zp"]                   # (N, [T,] K)
    m, n = _channel_quant(node, s["out_features"])
    return _finish(x @ w.T + bias, m, n, s["out_zp"], s, out)


def _fc_kernel(node: Node, graph: Graph) -> CKernel:
    return CKernel(f"pqlr_fully_connected_{graph.tensor(node.outputs[0]).dtype}",
                   "pqlr_fully_connected_params", _fc_struct(node, graph),
                   ("in0", "weight", "bias", "multiplier", "shift", "out"))


def _fc_macs(node: Node, graph: Graph) -> int:
    s = _fc_struct(node, graph)
    return s["rows"] * s["in_features"] * s["out_features"]


# ---------------------------------------------------------------- add
def _add_struct(node: Node, graph: Graph) -> dict[str, int]:
    (a, b), out = _io(node, graph, 2)
    _same_dtype(node, [a, b], out)
    if not a.shape == b.shape == out.shape:
        raise _fail(node, f"shapes {a.shape} + {b.shape} -> {out.shape} must be equal (no broadcasting)")
    ls = int(node.attrs.get("left_shift", ADD_LEFT_SHIFT[out.dtype]))
    m1, n1 = _scalar_quant(node, "in1_multiplier", "in1_shift")
    m2, n2 = _scalar_quant(node, "in2_multiplier", "in2_shift")
    mo, no = _scalar_quant(node, "out_multiplier", "out_shift")
    # Every int32 step must be exact: the shifted inputs and the sum of the rescaled inputs.
    big = [_span(t) << ls for t in (a, b)] if 0 <= ls <= 30 else [INT32_MAX + 1]
    scaled = [(v * m + (1 << (n - 1))) >> n for v, m, n in zip(big, (m1, m2), (n1, n2))]
    if max(big) > INT32_MAX or sum(scaled) + 2 > INT32_MAX:
        raise _fail(node, f"left_shift {ls} with these multipliers overflows int32 (use add_attrs())")
    return {"size": out.size, "in1_zp": a.zero_point, "in2_zp": b.zero_point, "out_zp": out.zero_point,
            "left_shift": ls, "in1_multiplier": m1, "in1_shift": n1, "in2_multiplier": m2,
            "in2_shift": n2, "out_multiplier": mo, "out_shift": no, **_clamp(node, out)}


def _add_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _add_struct(node, graph)
    a_t, b_t = (graph.tensor(t) for t in node.inputs)
    a = (_shape_check(node, inputs[0], a_t) - s["in1_zp"]) << s["left_shift"]
    b = (_shape_check(node, inputs[1], b_t) - s["in2_zp"]) << s["left_shift"]
    acc = P.requantize(a, s["in1_multiplier"], s["in1_shift"]) + P.requantize(b, s["in2_multiplier"], s["in2_shift"])
    return _finish(acc, s["out_multiplier"], s["out_shift"], s["out_zp"], s, graph.tensor(node.outputs[0]))


def _add_kernel(node: Node, graph: Graph) -> CKernel:
    return CKernel(f"pqlr_add_{graph.tensor(node.outputs[0]).dtype}", "pqlr_add_params",
                   _add_struct(node, graph), ("in0", "in1", "out"))


# ---------------------------------------------------------------- avg_pool2d, mean
def _pool_struct(node: Node, graph: Graph) -> dict[str, int]:
    (x,), out = _io(node, graph, 1)
    _same_dtype(node, [x], out)
    if node.op == "mean":
        if len(x.shape) not in (2, 3) or out.size != x.shape[-1]:
            raise _fail(node, f"mean needs (H, W, C) or (T, C) -> C values, got {x.shape} -> {out.shape}")
        h, w, c = x.shape if len(x.shape) == 3 else (x.shape[0], 1, x.shape[1])
        (kh, kw), (sh, sw), pads, (oh, ow) = (h, w), (1, 1), (0, 0, 0, 0), (1, 1)
    else:
        if len(x.shape) != 3 or len(out.shape) != 3 or out.shape[2] != x.shape[2]:
            raise _fail(node, f"needs HWC input and output with equal channels, got {x.shape} -> {out.shape}")
        (h, w, c), (kh, kw) = x.shape, _pair(node, "kernel", None)
        sh, sw = _pair(node, "stride", (kh, kw))
        pads = _pair(node, "padding", (0, 0, 0, 0), 4)
        if min(kh, kw, sh, sw) < 1 or min(pads) < 0 or h + pads[0] + pads[2] < kh or w + pads[1] + pads[3] < kw:
            raise _fail(node, f"kernel {kh}x{kw}, stride {sh}x{sw}, padding {pads} invalid for {x.shape}")
        oh, ow = conv_output_size(h, kh, sh, pads[0], pads[2]), conv_output_size(w, kw, sw, pads[1], pads[3])
        if out.shape[:2] != (oh, ow):
            raise _fail(node, f"output {out.shape} inconsistent with input {x.shape}, kernel {kh}x{kw}, "
                              f"stride {sh}x{sw}, padding {pads}")
    if kh * kw * _span(x) > INT32_MAX:
        raise _fail(node, f"window {kh}x{kw} overflows the int32 sum")
    m, n = _scalar_quant(node)
    return {"in_h": h, "in_w": w, "channels": c, "out_h": oh, "out_w": ow, "kernel_h": kh,
            "kernel_w": kw, "stride_h": sh, "stride_w": sw, "pad_top": pads[0], "pad_left": pads[1],
            "pad_bottom": pads[2], "pad_right": pads[3], "in_zp": x.zero_point,
            "out_zp": out.zero_point, "multiplier": m, "shift": n, **_clamp(node, out)}


def _pool_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _pool_struct(node, graph)
    x_t, out = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    x = _shape_check(node, inputs[0], x_t) - s["in_zp"]
    x = x.reshape(x.shape[0], s["in_h"], s["in_w"], s["channels"])     # (N, H, W, C)
    xp = np.pad(x, ((0, 0), (s["pad_top"], s["pad_bottom"]), (s["pad_left"], s["pad_right"]), (0, 0)))
    kh, kw, sh, sw, oh, ow = (s[k] for k in ("kernel_h", "kernel_w", "stride_h", "stride_w", "out_h", "out_w"))
    acc = np.zeros((x.shape[0], oh, ow, s["channels"]), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            acc += xp[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]
    y = _finish(acc, s["multiplier"], s["shift"], s["out_zp"], s, out)
    return y.reshape((x.shape[0], *out.shape))


def _pool_kernel(node: Node, graph: Graph) -> CKernel:
    return CKernel(f"pqlr_avg_pool2d_{graph.tensor(node.outputs[0]).dtype}", "pqlr_avg_pool2d_params",
                   _pool_struct(node, graph), ("in0", "out"))


def _pool_macs(node: Node, graph: Graph) -> int:
    s = _pool_struct(node, graph)
    return s["out_h"] * s["out_w"] * s["channels"] * s["kernel_h"] * s["kernel_w"]


# ---------------------------------------------------------------- requantize
def _rq_struct(node: Node, graph: Graph) -> dict[str, int]:
    (x,), out = _io(node, graph, 1)
    if x.size != out.size:
        raise _fail(node, f"sizes differ: {x.shape} -> {out.shape}")
    m, n = _scalar_quant(node)
    return {"size": out.size, "in_zp": x.zero_point, "out_zp": out.zero_point,
            "multiplier": m, "shift": n, **_clamp(node, out)}


def _rq_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _rq_struct(node, graph)
    x_t, out = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    x = _shape_check(node, inputs[0], x_t) - s["in_zp"]
    y = _finish(x, s["multiplier"], s["shift"], s["out_zp"], s, out)
    return y.reshape((x.shape[0], *out.shape))


def _rq_kernel(node: Node, graph: Graph) -> CKernel:
    a, b = graph.tensor(node.inputs[0]).dtype, graph.tensor(node.outputs[0]).dtype
    fn = f"pqlr_requantize_{a}" if a == b else f"pqlr_requantize_{a}_{b}"
    return CKernel(fn, "pqlr_requantize_params", _rq_struct(node, graph), ("in0", "out"))


def _elements(node: Node, graph: Graph) -> int:
    return graph.tensor(node.outputs[0]).size


def _no_scratch(node: Node, graph: Graph) -> int:
    return 0


_KERNELS = {"conv2d": _conv_kernel, "depthwise_conv2d": _conv_kernel, "fully_connected": _fc_kernel,
            "add": _add_kernel, "avg_pool2d": _pool_kernel, "mean": _pool_kernel, "requantize": _rq_kernel}

NN_OPS: dict[str, OpDef] = {
    "conv2d": OpDef("conv2d", lambda i, n, g: _conv_run_any(i, n, g, False), _c_call, _conv_scratch, _conv_macs),
    "depthwise_conv2d": OpDef("depthwise_conv2d", lambda i, n, g: _conv_run_any(i, n, g, True), _c_call,
                              _conv_scratch, _dw_macs),
    "fully_connected": OpDef("fully_connected", _fc_run, _c_call, _no_scratch, _fc_macs),
    "add": OpDef("add", _add_run, _c_call, _no_scratch, _elements),
    "avg_pool2d": OpDef("avg_pool2d", _pool_run, _c_call, _no_scratch, _pool_macs),
    "mean": OpDef("mean", _pool_run, _c_call, _no_scratch, _pool_macs),
    "requantize": OpDef("requantize", _rq_run, _c_call, _no_scratch, _elements),
}
