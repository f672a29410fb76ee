"""Integer convolution / fully connected / requantize ops of the IR: NumPy oracle, C call emission,
MAC counts (C kernels in runtime/src/pqlr_<op>_<dtype>.c, documented in runtime/include/pqlr_nn.h).

Ops and node conventions (feature maps HWC, shapes without batch; s8 or s16 activations, the
output dtype equals the input dtype except for requantize):
  conv2d            in (H, W, C_in) -> out (OH, OW, C_out)
  depthwise_conv2d  in (H, W, C) -> out (OH, OW, C)           channel multiplier 1
      Input rank 3, 2 or 1, the output of the same rank: (H, W, C) as is; (T, C) is the map
      (T, 1, C), a 1-D convolution over T (PyTorch's Conv1d on (C, T), deployed channels last):
      give it kernel (K, 1), stride (S, 1), dilation (D, 1), padding (top, 0, bottom, 0);
      (C,) is the map (1, 1, C). Attributes are always in this 2-D form.
      attrs: kernel (KH, KW), stride (SH, SW) = (1, 1), padding (top, left, bottom, right) = 0,
             dilation (DH, DW) = (1, 1), wbits in {8, 4, 2, 1};
             conv2d only: groups G = 1 (G divides C_in and C_out; depthwise_conv2d is G = C).
      Tap (kh, kw) of output (oy, ox) reads input (oy*SH - top + kh*DH, ox*SW - left + kw*DW);
      OH = (H + top + bottom - DH*(KH-1) - 1) // SH + 1 (likewise OW): PyTorch's F.conv2d with
      stride, padding, dilation, groups, weights (C_out, C_in/G, KH, KW).
      conv2d groups: output channel c is in group g = c // (C_out/G) and reads the Cg = C_in/G input
      channels g*Cg .. (g+1)*Cg - 1 (C_out = k*C_in with G = C_in: depthwise, multiplier k).
  fully_connected   in (..., K) -> out (..., C_out), rank 1 to 4: each of the prod(shape[:-1])
                    rows (tokens) alone.  attrs: wbits
      params: weight = PACKED uint8 (C_out, packed_row_bytes(K, wbits)) as deployed
              (primitives.pack_weights); row layout: conv2d (KH, KW, Cg) flattened (K = KH*KW*Cg,
              torch weight[c].permute(1, 2, 0)), depthwise the KH*KW taps of channel c,
              fully_connected the K inputs.
              bias int32 (C_out,) (optional), multiplier int32 and shift int8 (C_out,) or (1,)
              (requant_params(s_in, s_w, s_out) builds them).
      acc = bias + sum (x - zp_in) * w       (int32; padding reads as zp_in, adds 0)
      y = clamp(requantize(acc, m, n) + zp_out, act_min, act_max)     (64-bit, never wraps)
  MACs: conv2d OH*OW*C_out*KH*KW*Cg, depthwise OH*OW*C*KH*KW, fully_connected rows*K*C_out.
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
cannot run in place (pointwise: kernel 1x1, stride 1, no padding, groups 1; depthwise: stride 1,
output size == input size; both: dilation 1). The oracle (run) ignores the mark: in place changes
memory, never results. The optimized kernels (ir.ops_select) take plain layers only as well.
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
        "act_min", "act_max", "n_quant", "ch_begin", "ch_end", "dilation_h", "dilation_w", "groups"),
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
def _hwc(node: Node, t: Tensor) -> tuple[int, int, int]:
    """The (H, W, C) map a rank-3, -2 or -1 feature map is: (H, W, C), (T, 1, C) or (1, 1, C)."""
    views = {3: lambda s: s, 2: lambda s: (s[0], 1, s[1]), 1: lambda s: (1, 1, s[0])}
    if len(t.shape) not in views:
        raise fail(node, f"tensor {t.name} {t.shape}: needs (H, W, C), (T, C) or (C,)")
    return tuple(int(v) for v in views[len(t.shape)](t.shape))


def _groups(node: Node, c_in: int, depthwise: bool) -> int:
    """conv2d: attrs groups (default 1); depthwise_conv2d: C (an attrs groups must say the same)."""
    g = node.attrs.get("groups", c_in if depthwise else 1)
    try:
        g = int(g)
    except (TypeError, ValueError):
        raise fail(node, f"attribute groups={g!r} is not an integer") from None
    if depthwise and g != c_in:
        raise fail(node, f"groups={g}: a depthwise_conv2d has groups = channels ({c_in}); "
                         "use conv2d for other groupings")
    return g


def _conv_struct(node: Node, graph: Graph, depthwise: bool) -> dict[str, int]:
    (x,), out = io(node, graph, 1)
    same_dtype(node, [x], out)
    if len(out.shape) != len(x.shape):
        raise fail(node, f"output rank differs from the input's: {x.shape} -> {out.shape}")
    (h, w, c_in), (oh_t, ow_t, c_out) = _hwc(node, x), _hwc(node, out)
    kh, kw = pair(node, "kernel", None)
    sh, sw = pair(node, "stride", (1, 1))
    pt, pl, pb, pr = pair(node, "padding", (0, 0, 0, 0), 4)
    dh, dw = pair(node, "dilation", (1, 1))
    groups = _groups(node, c_in, depthwise)
    if min(kh, kw, sh, sw, dh, dw, groups) < 1 or min(pt, pl, pb, pr) < 0:
        raise fail(node, f"kernel {kh}x{kw}, stride {sh}x{sw}, dilation {dh}x{dw}, groups {groups}, "
                         f"padding {(pt, pl, pb, pr)} invalid")
    if c_in % groups or c_out % groups:
        raise fail(node, f"groups={groups} does not divide input channels {c_in} and output channels {c_out}")
    if h + pt + pb < dh * (kh - 1) + 1 or w + pl + pr < dw * (kw - 1) + 1:
        raise fail(node, f"kernel {kh}x{kw} at dilation {dh}x{dw} larger than the padded input {x.shape}")
    oh, ow = conv_output_size(h, kh, sh, pt, pb, dh), conv_output_size(w, kw, sw, pl, pr, dw)
    if (oh_t, ow_t) != (oh, ow) or (depthwise and c_out != c_in):
        raise fail(node, f"output {out.shape} inconsistent with input {x.shape}, kernel {kh}x{kw}, "
                         f"stride {sh}x{sw}, dilation {dh}x{dw}, padding {(pt, pl, pb, pr)}")
    m, _ = channel_quant(node, c_out)
    wbits, _, _ = _weights(node, x, c_out, kh * kw * (c_in // groups))
    return {"in_h": h, "in_w": w, "in_c": c_in, "out_h": oh, "out_w": ow, "out_c": c_out,
            "kernel_h": kh, "kernel_w": kw, "stride_h": sh, "stride_w": sw, "pad_top": pt,
            "pad_left": pl, "pad_bottom": pb, "pad_right": pr, "wbits": wbits,
            "in_zp": x.zero_point, "out_zp": out.zero_point, **clamp(node, out),
            "n_quant": m.size, "ch_begin": 0, "ch_end": c_out,
            "dilation_h": dh, "dilation_w": dw, "groups": groups}


def _conv_run_any(inputs: list[np.ndarray], node: Node, graph: Graph, depthwise: bool) -> np.ndarray:
    s = _conv_struct(node, graph, depthwise)
    x_t, out = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    kh, kw, sh, sw, dh, dw, oh, ow = (s[k] for k in ("kernel_h", "kernel_w", "stride_h", "stride_w",
                                                     "dilation_h", "dilation_w", "out_h", "out_w"))
    g, c_in, c_out = s["groups"], s["in_c"], s["out_c"]
    cg, cog = c_in // g, c_out // g                                  # per group: in, out channels
    _, w, bias = _weights(node, x_t, c_out, kh * kw * cg)
    w = w.reshape(g, cog, kh, kw, cg)                                # row c = group c // cog, (kh, kw, ci)
    x = shape_check(node, inputs[0], x_t) - s["in_zp"]               # real zero = 0
    n = x.shape[0]
    x = x.reshape(n, s["in_h"], s["in_w"], c_in)                     # (N, H, W, C_in) view of any rank
    xp = np.pad(x, ((0, 0), (s["pad_top"], s["pad_bottom"]), (s["pad_left"], s["pad_right"]), (0, 0)))
    acc = np.broadcast_to(bias, (n, oh, ow, c_out)).copy()
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw                                # tap offset in the padded input
            patch = xp[:, y0:y0 + sh * (oh - 1) + 1:sh, x0:x0 + sw * (ow - 1) + 1:sw, :]  # (N, OH, OW, C_in)
            wk = w[:, :, ky, kx, :]                                  # (G, Cog, Cg)
            if g == 1:                                               # every input channel
                acc += patch @ wk[0].T
            elif cg == 1 and cog == 1:                               # depthwise: channel c alone
                acc += patch * wk[:, 0, 0]
            else:                                                    # per group: (1, Cg) @ (Cg, Cog)
                acc += (patch.reshape(n, oh, ow, g, 1, cg) @ wk.transpose(0, 2, 1)).reshape(n, oh, ow, c_out)
    m, q = channel_quant(node, c_out)
    return finish(acc, m, q, s["out_zp"], s, out).reshape(n, *out.shape)


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
    (mirrors pqlr_conv2d_plain and pqlr_conv2d_1x1_inplace_ok / pqlr_depthwise_conv2d_inplace_ok in
    pqlr_nn.h: dilated and grouped layers never run in place)."""
    if node.op not in IN_PLACE_KERNELS or graph.tensor(node.outputs[0]).dtype != "s8":
        return None
    s = _conv_struct(node, graph, node.op == "depthwise_conv2d")
    if s["stride_h"] != 1 or s["stride_w"] != 1 or (s["dilation_h"], s["dilation_w"]) != (1, 1):
        return None
    if node.op == "conv2d":
        pads = (s["pad_top"], s["pad_left"], s["pad_bottom"], s["pad_right"])
        pointwise = (s["kernel_h"], s["kernel_w"]) == (1, 1) and pads == (0, 0, 0, 0) and s["groups"] == 1
        return s["out_c"] if pointwise else None
    if (s["out_h"], s["out_w"]) != (s["in_h"], s["in_w"]):
        return None
    return (s["pad_top"] + 1) * s["in_w"] * s["in_c"]        # ring of pad_top + 1 input rows


def _conv_scratch(node: Node, graph: Graph) -> int:
    return int(in_place_scratch_bytes(node, graph) or 0) if node.attrs.get("in_place") else 0


def _conv_macs(node: Node, graph: Graph) -> int:
    s = _conv_struct(node, graph, False)
    return s["out_h"] * s["out_w"] * s["out_c"] * s["kernel_h"] * s["kernel_w"] * (s["in_c"] // s["groups"])


def _dw_macs(node: Node, graph: Graph) -> int:
    s = _conv_struct(node, graph, True)
    return s["out_h"] * s["out_w"] * s["out_c"] * s["kernel_h"] * s["kernel_w"]


# ---------------------------------------------------------------- fully_connected
def _fc_struct(node: Node, graph: Graph) -> dict[str, int]:
    (x,), out = io(node, graph, 1)
    same_dtype(node, [x], out)
    if not 1 <= len(x.shape) <= 4 or len(out.shape) != len(x.shape) or x.shape[:-1] != out.shape[:-1]:
        raise fail(node, f"needs (..., K) -> (..., C_out) of rank 1 to 4, got {x.shape} -> {out.shape}")
    rows, k, c_out = int(np.prod(x.shape[:-1], dtype=np.int64)), x.shape[-1], out.shape[-1]
    m, _ = channel_quant(node, c_out)
    wbits, _, _ = _weights(node, x, c_out, k)
    return {"rows": rows, "in_features": k, "out_features": c_out, "wbits": wbits,
            "in_zp": x.zero_point, "out_zp": out.zero_point, **clamp(node, out),
            "n_quant": m.size, "ch_begin": 0, "ch_end": c_out}


def _fc_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _fc_struct(node, graph)
    x_t, out = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    _, w, bias = _weights(node, x_t, s["out_features"], s["in_features"])   # (C_out, K)
    x = shape_check(node, inputs[0], x_t) - s["in_zp"]                   # (N, ..., K)
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
