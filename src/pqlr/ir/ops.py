"""The op table of the integer IR: one `OpDef` per op name, merged from the CNN ops (ops_nn)
and the transformer ops (ops_tf).

An OpDef ties together, for one op:
  run(inputs, node, graph) -> output
      batched NumPy oracle; inputs are (N, *tensor.shape) int8/int16 arrays (per Tensor.dtype),
      the result is (N, *out.shape) in the output Tensor's dtype. Integer math per pqlr.primitives.
  c_call(node, graph, input_exprs, output_expr, symbols) -> str
      the C statement(s) running the node on ONE sample. `input_exprs` / `output_expr` are C
      expressions of pointer type (const int8_t * / int16_t * per dtype); `symbols` maps each
      node.params name to the C identifier of the const array emitted for it. The returned string is
      one self-contained block `{ static const <params struct> p = {...}; PQLR_CHECK(<kernel>(...)); }`
      (block scope, so several calls never clash); PQLR_CHECK is defined in pqlr.h and returns the
      kernel's pqlr_status from the enclosing function when it is not PQLR_OK.
  scratch_bytes(node, graph) -> int   caller-owned scratch the C kernel needs (0 for none)
  macs(node, graph) -> int            multiply-accumulates (element-wise ops: one per element)

`OPS: dict[str, OpDef]` (read as `from pqlr.ir.ops import OPS`) is built on first access.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .graph import Graph, Node


@dataclass(frozen=True)
class OpDef:
    name: str
    run: Callable[[list[np.ndarray], Node, Graph], np.ndarray]
    c_call: Callable[[Node, Graph, list[str], str, dict[str, str]], str]
    scratch_bytes: Callable[[Node, Graph], int]
    macs: Callable[[Node, Graph], int]


def _merge() -> dict[str, OpDef]:
    from .ops_nn import NN_OPS

    table: dict[str, OpDef] = dict(NN_OPS)
    try:
        from .ops_tf import TF_OPS
    except ModuleNotFoundError as e:  # the transformer ops are optional until ops_tf exists
        if e.name != f"{__package__}.ops_tf":
            raise
        TF_OPS = {}
    clash = sorted(set(table) & set(TF_OPS))
    if clash:
        raise RuntimeError(f"op names defined twice (ops_nn and ops_tf): {clash}")
    table.update(TF_OPS)
    return table


_TABLE: dict[str, OpDef] = {}


def __getattr__(name: str):
    """`OPS` is built on first use, so ops_nn / ops_tf can import OpDef from here (no cycle)."""
    if name == "OPS":
        if not _TABLE:
            _TABLE.update(_merge())
        return _TABLE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
