"""The op table of the integer IR: one `OpDef` per op name, merged from the op modules.

An OpDef (ir.opkit) ties together, for one op:
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

Modules (each a family, with its C header):
  ops_nn     conv2d, depthwise_conv2d, fully_connected, requantize          pqlr_nn.h
  ops_elem   add, sub, mul (broadcasting, constant operands), prelu,
             channel_affine                                                 pqlr_elem.h
  ops_pool   avg_pool2d, adaptive_avg_pool2d, max_pool2d, adaptive_max_pool2d,
             mean                                                           pqlr_pool.h
  ops_shape  slice, pad                                                     pqlr_shape.h
  ops_tf     matmul, softmax, layernorm, lut, transpose, reshape, concat     pqlr_tf.h

`OPS: dict[str, OpDef]`; `c_kernel(node, graph)` gives the CKernel of ops that call one kernel with
an all-int32 struct (ops_nn, ops_elem, ops_pool, ops_shape), None for the others.
"""
from __future__ import annotations

import importlib

from .graph import Graph, Node
from .opkit import CKernel, OpDef

MODULES = ("ops_nn", "ops_elem", "ops_pool", "ops_shape", "ops_tf")


def _merge() -> tuple[dict[str, OpDef], dict]:
    table: dict[str, OpDef] = {}
    kernels: dict = {}
    for name in MODULES:
        try:
            mod = importlib.import_module(f"{__package__}.{name}")
        except ModuleNotFoundError as e:      # a family not part of this build
            if e.name != f"{__package__}.{name}":
                raise
            continue
        clash = sorted(set(table) & set(mod.TABLE))
        if clash:
            raise RuntimeError(f"op names defined twice ({name} and another module): {clash}")
        table.update(mod.TABLE)
        kernels.update(getattr(mod, "KERNELS", {}))
    return table, kernels


OPS, _KERNELS = _merge()


def c_kernel(node: Node, graph: Graph) -> CKernel | None:
    """The CKernel of `node` (validated), or None when its op emits C another way."""
    fn = _KERNELS.get(node.op)
    return fn(node, graph) if fn is not None else None


__all__ = ["OPS", "OpDef", "CKernel", "c_kernel", "MODULES"]
