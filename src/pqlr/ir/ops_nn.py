"""Integer convolution / fully connected / requantize ops of the IR: NumPy oracle, C call emission,
MAC counts (C kernels in runtime/src/pqlr_<op>_<dtype>.c, documented in runtime/include/pqlr_nn.h).

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
              bias int32 (C_out,) (optional), multiplier int32 and shift int8 (C_out,) or (1,)
              (requant_params(s_in, s_w, s_out) builds them).
      acc = bias + sum (x - zp_in) * w       (int32; padding reads as zp_in, adds 0)
      y = clamp(requantize(acc, m, n) + zp_out, act_min, act_max)     (64-bit, never wraps)
  requantize        any shape -> same size, other qparams/dtype; attrs multiplier, shift
                    (requantize_attrs()); y = clamp(requantize(x - zp_in, m, n) + zp_out, ...).
Every op takes optional attrs act_min / act_max (the output clamp: ReLU, ReLU6, 4-bit range;
opkit.activation_clamp() builds them), default = primitives.act_range(out.bits).
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

import numpy as np

from .. import primitives as P
from .graph import Graph, Node, Tensor
from .opkit import (INT32_MAX, CKernel, activation_clamp, channel_quant, clamp, conv_output_size, elements,  # noqa: F401
                    fail, finish, io, kernel_table, no_scratch, pair, quant_multipliers, same_dtype,
                    scalar_quant, shape_check)

# Field order of the C parameter structs in pqlr_nn.h (all int32_t; a test checks the layout).
STRUCT_FIELDS: dict[str, tuple[str, ...]] = {
    "pqlr_conv2d_params": (
        "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "kernel_h", "kernel_w", "stride_h",
        "stride_w", "pad_top", "pad_left", "pad_bottom", "pad_right", "wbits", "in_zp", "out_zp",
        "act_min", "act_max", "n_quant", "ch_begin", "ch_end"),
    "pqlr_fully_connected_params": (
        "rows", "in_features", "out_features", "wbits", "in_zp", "out_zp", "act_min", "act_max",
        "n_quant", "ch_begin", "ch_end"),
    "pqlr_requantize_params": ("size", "in_zp", "out_zp", "multiplier", "shift", "act_min", "act_max"),
}


# ---------------------------------------------------------------- builders ("decide")
def requant_params(in_scale: float, w_scales, out_scale: float) -> dict[str, np.ndarray]:
    """conv / depthwise / fully_connected params multiplier, shift for M = s_in * s_w[c] / s_out."""
    m, n = quant_multipliers(in_scale * np.asarray(w_scales, np.float64) / out_scale)
    return {"multiplier": m, "shift": n}


def requantize_attrs(in_t: Tensor, out_t: Tensor, factor: float = 1.0) -> dict[str, int]:
    """requantize multiplier, shift for y = factor * x (factor >= 0; 1 = a plain change of qparams)."""
    (m,), (n,) = quant_multipliers(factor * in_t.scale / out_t.scale)
    return {"multiplier": int(m), "shift": int(n)}


def _weights(node: Node, in_t: Tensor, rows: int, k: int) -> tuple[int, np.ndarray, np.ndarray]:
    """Validated (wbits, unpacked int64 weights (rows, k), int64 bias (rows,))."""
    wbits = int(node.attrs.get("wbits", 8))
    if wbits not in P.WEIGHT_BITS:
        raise fail(node, f"wbits={wbits}; supported {P.WEIGHT_BITS}")
    packed = node.params.get("weight")
    if packed is None:
        raise fail(node, "missing param 'weight'")
    if packed.dtype != np.uint8 or packed.shape != (rows, P.packed_row_bytes(k, wbits)):
        raise fail(node, f"weight {packed.dtype} {packed.shape}; expected packed uint8 "
                         f"({rows}, {P.packed_row_bytes(k, wbits)}) for K={k} at {wbits} bit")
    bias = node.params.get("bias")
    if bias is not None and (np.asarray(bias).dtype != np.int32 or np.shape(bias) != (rows,)):
        raise fail(node, f"bias must be int32 of shape ({rows},)")
    bias = np.zeros(rows, np.int64) if bias is None else bias.astype(np.int64)
    bound = P.accumulator_bound(k, 16 if in_t.dtype == "s16" else 8, wbits)
    if int(np.abs(bias).max(initial=0)) + bound > INT32_MAX:
        raise fail(node, f"int32 accumulator may overflow: |bias| + bound {bound} for K={k} "
                         f"({in_t.dtype} x {wbits}-bit) exceeds 2^31 - 1")
    return wbits, P.unpack_weights(packed, wbits, k).astype(np.int64), bias


# ---------------------------------------------------------------- conv2d, depthwise_conv2d
def _conv_struct(node: Node, graph: Graph, depthwise: bool) -> dict[str, int]:
    (x,), out = io(node, graph, 1)
    same_dtype(node, [x], out)
    if len(x.shape) != 3 or len(out.shape) != 3:
        raise fail(node, f"needs HWC input and output, got {x.shape} -> {out.shape}")
    kh, kw = pair(node, "kernel", None)
    sh, sw = pair(node, "stride", (1, 1))
    pt, pl, pb, pr = pair(node, "padding", (0, 0, 0, 0), 4)
    if min(kh, kw, sh, sw) < 1 or min(pt, pl, pb, pr) < 0:
        raise fail(node, f"kernel {kh}x{kw}, stride {sh}x{sw}, padding {(pt, pl, pb, pr)} invalid")
    (h, w, c_in), c_out = x.shape, out.shape[2]
    if h + pt + pb < kh or w + pl + pr < kw:
        raise fail(node, f"kernel {kh}x{kw} larger than the padded input {x.shape}")
    oh, ow = conv_output_size(h, kh, sh, pt, pb), conv_output_size(w, kw, sw, pl, pr)
    if out.shape[:2] != (oh, ow) or (depthwise and c_out != c_in):
        raise fail(node, f"output {out.shape} inconsistent with input {x.shape}, kernel {kh}x{kw}, "
                          f"stride {sh}x{sw}, padding {(pt, pl, pb, pr)}")
    m, _ = channel_quant(node, c_out)
    wbits, _, _ = _weights(node, x, c_out, kh * kw * (1 if depthwise else c_in))
    return {"in_h": h, "in_w": w, "in_c": c_in, "out_h": oh, "out_w": ow, "out_c": c_out,
            "kernel_h": kh, "kernel_w": kw, "stride_h": sh, "stride_w": sw, "pad_top": pt,
            "pad_left": pl, "pad_bottom": pb, "pad_right": pr, "wbits": wbits,
            "in_zp": x.zero_point, "out_zp": out.zero_point, **clamp(node, out),
            "n_quant": m.size, "ch_begin": 0, "ch_end": c_out}


def _conv_run_any(inputs: list[np.ndarray], node: Node, graph: Graph, depthwise: bool) -> np.ndarray:
    s = _conv_struct(node, graph, depthwise)
    x_t, out = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    kh, kw, sh, sw, oh, ow = (s[k] for k in ("kernel_h", "kernel_w", "stride_h", "stride_w", "out_h", "out_w"))
    k = kh * kw * (1 if depthwise else s["in_c"])
    _, w, bias = _weights(node, x_t, s["out_c"], k)
    w = w.reshape(s["out_c"], kh, kw, -1)                          # (C_out, KH, KW, C_in or 1)
    x = shape_check(node, inputs[0], x_t) - s["in_zp"]            # (N, H, W, C_in), real zero = 0
    xp = np.pad(x, ((0, 0), (s["pad_top"], s["pad_bottom"]), (s["pad_left"], s["pad_right"]), (0, 0)))
    acc = np.broadcast_to(bias, (x.shape[0], oh, ow, s["out_c"])).copy()
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]  # (N, OH, OW, C_in)
            acc += patch * w[:, ky, kx, 0] if depthwise else patch @ w[:, ky, kx, :].T
    m, n = channel_quant(node, s["out_c"])
    return finish(acc, m, n, s["out_zp"], s, out)


def _conv_kernel(node: Node, graph: Graph) -> CKernel:
    dw = node.op == "depthwise_conv2d"
    fn = f"pqlr_{node.op}_{graph.tensor(node.outputs[0]).dtype}"
    args = ("in0", "weight", "bias", "multiplier", "shift", "out")
    if node.attrs.get("in_place"):
        if in_place_scratch_bytes(node, graph) is None:
            raise fail(node, "marked in_place but no in-place kernel fits this layer")
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
    (x,), out = io(node, graph, 1)
    same_dtype(node, [x], out)
    if len(x.shape) not in (1, 2) or len(out.shape) != len(x.shape) or x.shape[:-1] != out.shape[:-1]:
        raise fail(node, f"needs (K,) -> (C_out,) or (T, K) -> (T, C_out), got {x.shape} -> {out.shape}")
    rows, k, c_out = (x.shape[0] if len(x.shape) == 2 else 1), x.shape[-1], out.shape[-1]
    m, _ = channel_quant(node, c_out)
    wbits, _, _ = _weights(node, x, c_out, k)
    return {"rows": rows, "in_features": k, "out_features": c_out, "wbits": wbits,
            "in_zp": x.zero_point, "out_zp": out.zero_point, **clamp(node, out),
            "n_quant": m.size, "ch_begin": 0, "ch_end": c_out}


def _fc_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _fc_struct(node, graph)
    x_t, out = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    _, w, bias = _weights(node, x_t, s["out_features"], s["in_features"])   # (C_out, K)
    x = shape_check(node, inputs[0], x_t) - s["in_zp"]                   # (N, [T,] K)
    m, n = channel_quant(node, s["out_features"])
    return finish(x @ w.T + bias, m, n, s["out_zp"], s, out)


def _fc_kernel(node: Node, graph: Graph) -> CKernel:
    return CKernel(f"pqlr_fully_connected_{graph.tensor(node.outputs[0]).dtype}",
                   "pqlr_fully_connected_params", _fc_struct(node, graph),
                   ("in0", "weight", "bias", "multiplier", "shift", "out"))


def _fc_macs(node: Node, graph: Graph) -> int:
    s = _fc_struct(node, graph)
    return s["rows"] * s["in_features"] * s["out_features"]


# ---------------------------------------------------------------- requantize
def _rq_struct(node: Node, graph: Graph) -> dict[str, int]:
    (x,), out = io(node, graph, 1)
    if x.size != out.size:
        raise fail(node, f"sizes differ: {x.shape} -> {out.shape}")
    m, n = scalar_quant(node)
    return {"size": out.size, "in_zp": x.zero_point, "out_zp": out.zero_point,
            "multiplier": m, "shift": n, **clamp(node, out)}


def _rq_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _rq_struct(node, graph)
    x_t, out = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    x = shape_check(node, inputs[0], x_t) - s["in_zp"]
    y = finish(x, s["multiplier"], s["shift"], s["out_zp"], s, out)
    return y.reshape((x.shape[0], *out.shape))


def _rq_kernel(node: Node, graph: Graph) -> CKernel:
    a, b = graph.tensor(node.inputs[0]).dtype, graph.tensor(node.outputs[0]).dtype
    fn = f"pqlr_requantize_{a}" if a == b else f"pqlr_requantize_{a}_{b}"
    return CKernel(fn, "pqlr_requantize_params", _rq_struct(node, graph), ("in0", "out"))



def _conv_run(inputs, node, graph):
    return _conv_run_any(inputs, node, graph, False)


def _dw_run(inputs, node, graph):
    return _conv_run_any(inputs, node, graph, True)


KERNELS = {"conv2d": _conv_kernel, "depthwise_conv2d": _conv_kernel, "fully_connected": _fc_kernel,
           "requantize": _rq_kernel}

TABLE = kernel_table(KERNELS, STRUCT_FIELDS, {
    "conv2d": (_conv_run, _conv_scratch, _conv_macs),
    "depthwise_conv2d": (_dw_run, _conv_scratch, _dw_macs),
    "fully_connected": (_fc_run, no_scratch, _fc_macs),
    "requantize": (_rq_run, no_scratch, elements),
})
NN_OPS = TABLE


def c_kernel(node: Node, graph: Graph) -> CKernel:
    """The C kernel, its parameter struct values and argument order for `node` (validated)."""
    return KERNELS[node.op](node, graph)
