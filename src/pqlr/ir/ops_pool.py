"""Pooling ops of the IR: NumPy oracle and C call emission (C kernels in
runtime/src/pqlr_<op>_<dtype>.c, documented in runtime/include/pqlr_pool.h).

  avg_pool2d        in (H, W, C) -> out (OH, OW, C); attrs kernel, stride (= kernel), padding,
                    multiplier, shift (1/(KH*KW) folded in: pool_attrs()); padding counts as zp_in
                    (PyTorch count_include_pad=True).
  mean              in (H, W, C) or (T, C) -> out of C elements ((C,) or (1, 1, C)): global average
                    pool / mean over tokens; attrs multiplier, shift (pool_attrs with window H*W or T).
      acc = sum over the window of (x - zp_in); y = clamp(requantize(acc, m, n) + zp_out, ...)
Optional attrs act_min / act_max: the output clamp (opkit.activation_clamp).
"""
from __future__ import annotations

import numpy as np

from .graph import Graph, Node, Tensor
from .opkit import (INT32_MAX, CKernel, clamp, conv_output_size, fail, finish, io, kernel_table, no_scratch,
                    pair, quant_multipliers, same_dtype, scalar_quant, shape_check, span)

# Field order of the C parameter structs in pqlr_pool.h (all int32_t; a test checks the layout).
STRUCT_FIELDS: dict[str, tuple[str, ...]] = {
    "pqlr_avg_pool2d_params": (
        "in_h", "in_w", "channels", "out_h", "out_w", "kernel_h", "kernel_w", "stride_h", "stride_w",
        "pad_top", "pad_left", "pad_bottom", "pad_right", "in_zp", "out_zp", "multiplier", "shift",
        "act_min", "act_max"),
}


def pool_attrs(in_t: Tensor, out_t: Tensor, window: int) -> dict[str, int]:
    """avg_pool2d / mean multiplier, shift for M = s_in / (s_out * window)."""
    (m,), (n,) = quant_multipliers(in_t.scale / (out_t.scale * window))
    return {"multiplier": int(m), "shift": int(n)}


# ---------------------------------------------------------------- avg_pool2d, mean
def _pool_struct(node: Node, graph: Graph) -> dict[str, int]:
    (x,), out = io(node, graph, 1)
    same_dtype(node, [x], out)
    if node.op == "mean":
        if len(x.shape) not in (2, 3) or out.size != x.shape[-1]:
            raise fail(node, f"mean needs (H, W, C) or (T, C) -> C values, got {x.shape} -> {out.shape}")
        h, w, c = x.shape if len(x.shape) == 3 else (x.shape[0], 1, x.shape[1])
        (kh, kw), (sh, sw), pads, (oh, ow) = (h, w), (1, 1), (0, 0, 0, 0), (1, 1)
    else:
        if len(x.shape) != 3 or len(out.shape) != 3 or out.shape[2] != x.shape[2]:
            raise fail(node, f"needs HWC input and output with equal channels, got {x.shape} -> {out.shape}")
        (h, w, c), (kh, kw) = x.shape, pair(node, "kernel", None)
        sh, sw = pair(node, "stride", (kh, kw))
        pads = pair(node, "padding", (0, 0, 0, 0), 4)
        if min(kh, kw, sh, sw) < 1 or min(pads) < 0 or h + pads[0] + pads[2] < kh or w + pads[1] + pads[3] < kw:
            raise fail(node, f"kernel {kh}x{kw}, stride {sh}x{sw}, padding {pads} invalid for {x.shape}")
        oh, ow = conv_output_size(h, kh, sh, pads[0], pads[2]), conv_output_size(w, kw, sw, pads[1], pads[3])
        if out.shape[:2] != (oh, ow):
            raise fail(node, f"output {out.shape} inconsistent with input {x.shape}, kernel {kh}x{kw}, "
                              f"stride {sh}x{sw}, padding {pads}")
    if kh * kw * span(x) > INT32_MAX:
        raise fail(node, f"window {kh}x{kw} overflows the int32 sum")
    m, n = scalar_quant(node)
    return {"in_h": h, "in_w": w, "channels": c, "out_h": oh, "out_w": ow, "kernel_h": kh,
            "kernel_w": kw, "stride_h": sh, "stride_w": sw, "pad_top": pads[0], "pad_left": pads[1],
            "pad_bottom": pads[2], "pad_right": pads[3], "in_zp": x.zero_point,
            "out_zp": out.zero_point, "multiplier": m, "shift": n, **clamp(node, out)}


def _pool_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _pool_struct(node, graph)
    x_t, out = graph.tensor(node.inputs[0]), graph.tensor(node.outputs[0])
    x = shape_check(node, inputs[0], x_t) - s["in_zp"]
    x = x.reshape(x.shape[0], s["in_h"], s["in_w"], s["channels"])     # (N, H, W, C)
    xp = np.pad(x, ((0, 0), (s["pad_top"], s["pad_bottom"]), (s["pad_left"], s["pad_right"]), (0, 0)))
    kh, kw, sh, sw, oh, ow = (s[k] for k in ("kernel_h", "kernel_w", "stride_h", "stride_w", "out_h", "out_w"))
    acc = np.zeros((x.shape[0], oh, ow, s["channels"]), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            acc += xp[:, ky:ky + sh * (oh - 1) + 1:sh, kx:kx + sw * (ow - 1) + 1:sw, :]
    y = finish(acc, s["multiplier"], s["shift"], s["out_zp"], s, out)
    return y.reshape((x.shape[0], *out.shape))


def _pool_kernel(node: Node, graph: Graph) -> CKernel:
    return CKernel(f"pqlr_avg_pool2d_{graph.tensor(node.outputs[0]).dtype}", "pqlr_avg_pool2d_params",
                   _pool_struct(node, graph), ("in0", "out"))


def _pool_macs(node: Node, graph: Graph) -> int:
    s = _pool_struct(node, graph)
    return s["out_h"] * s["out_w"] * s["channels"] * s["kernel_h"] * s["kernel_w"]



KERNELS = {"avg_pool2d": _pool_kernel, "mean": _pool_kernel}

TABLE = kernel_table(KERNELS, STRUCT_FIELDS, {
    "avg_pool2d": (_pool_run, no_scratch, _pool_macs),
    "mean": (_pool_run, no_scratch, _pool_macs),
})
