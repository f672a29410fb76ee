"""Element-wise integer ops of the IR: NumPy oracle and C call emission (C kernels in
runtime/src/pqlr_<op>_<dtype>.c, documented in runtime/include/pqlr_elem.h).

  add               in1, in2, out of one shape, each with its own qparams (TFLite-style):
      attrs: left_shift (20 s8 / 15 s16), in1_multiplier, in1_shift, in2_multiplier, in2_shift,
             out_multiplier, out_shift -- build them with add_attrs().
      a = (x1 - zp1) << left_shift; s = requantize(a, m1, n1) + requantize(b, m2, n2)  (int32)
      y = clamp(requantize(s, m_out, n_out) + zp_out, act_min, act_max)
Optional attrs act_min / act_max: the output clamp (opkit.activation_clamp).
"""
from __future__ import annotations

import numpy as np

from .. import primitives as P
from .graph import Graph, Node, Tensor
from .opkit import (INT32_MAX, CKernel, clamp, elements, fail, finish, io, kernel_table, no_scratch,
                    quant_multipliers, same_dtype, scalar_quant, shape_check, span)

ADD_LEFT_SHIFT = {"s8": 20, "s16": 15}

# Field order of the C parameter structs in pqlr_elem.h (all int32_t; a test checks the layout).
STRUCT_FIELDS: dict[str, tuple[str, ...]] = {
    "pqlr_add_params": (
        "size", "in1_zp", "in2_zp", "out_zp", "left_shift", "in1_multiplier", "in1_shift",
        "in2_multiplier", "in2_shift", "out_multiplier", "out_shift", "act_min", "act_max"),
}


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


# ---------------------------------------------------------------- add
def _add_struct(node: Node, graph: Graph) -> dict[str, int]:
    (a, b), out = io(node, graph, 2)
    same_dtype(node, [a, b], out)
    if not a.shape == b.shape == out.shape:
        raise fail(node, f"shapes {a.shape} + {b.shape} -> {out.shape} must be equal (no broadcasting)")
    ls = int(node.attrs.get("left_shift", ADD_LEFT_SHIFT[out.dtype]))
    m1, n1 = scalar_quant(node, "in1_multiplier", "in1_shift")
    m2, n2 = scalar_quant(node, "in2_multiplier", "in2_shift")
    mo, no = scalar_quant(node, "out_multiplier", "out_shift")
    # Every int32 step must be exact: the shifted inputs and the sum of the rescaled inputs.
    big = [span(t) << ls for t in (a, b)] if 0 <= ls <= 30 else [INT32_MAX + 1]
    scaled = [(v * m + (1 << (n - 1))) >> n for v, m, n in zip(big, (m1, m2), (n1, n2))]
    if max(big) > INT32_MAX or sum(scaled) + 2 > INT32_MAX:
        raise fail(node, f"left_shift {ls} with these multipliers overflows int32 (use add_attrs())")
    return {"size": out.size, "in1_zp": a.zero_point, "in2_zp": b.zero_point, "out_zp": out.zero_point,
            "left_shift": ls, "in1_multiplier": m1, "in1_shift": n1, "in2_multiplier": m2,
            "in2_shift": n2, "out_multiplier": mo, "out_shift": no, **clamp(node, out)}


def _add_run(inputs: list[np.ndarray], node: Node, graph: Graph) -> np.ndarray:
    s = _add_struct(node, graph)
    a_t, b_t = (graph.tensor(t) for t in node.inputs)
    a = (shape_check(node, inputs[0], a_t) - s["in1_zp"]) << s["left_shift"]
    b = (shape_check(node, inputs[1], b_t) - s["in2_zp"]) << s["left_shift"]
    acc = P.requantize(a, s["in1_multiplier"], s["in1_shift"]) + P.requantize(b, s["in2_multiplier"], s["in2_shift"])
    return finish(acc, s["out_multiplier"], s["out_shift"], s["out_zp"], s, graph.tensor(node.outputs[0]))


def _add_kernel(node: Node, graph: Graph) -> CKernel:
    return CKernel(f"pqlr_add_{graph.tensor(node.outputs[0]).dtype}", "pqlr_add_params",
                   _add_struct(node, graph), ("in0", "in1", "out"))



KERNELS = {"add": _add_kernel}

TABLE = kernel_table(KERNELS, STRUCT_FIELDS, {"add": (_add_run, no_scratch, elements)})
