"""Build-time choice of the C kernel variant: "reference" (the plain kernels of pqlr_nn.h) or "opt"
(the faster, bit-exact kernels of pqlr_nn_opt.h: runtime/src/pqlr_<op>_s8_opt.c).

Only the kernel name in the emitted call changes; parameter struct, arguments and results are
the same (tests/ir/test_ops_opt.py). Kernels without an optimized variant keep the reference:
everything but conv2d / depthwise_conv2d / fully_connected / avg_pool2d+mean in s8, including the
in-place kernels the arena planner picks for pointwise / depthwise layers (deploy.plan), so a
speed-first build plans those layers out of place (bench/kernels_rv32.py shows the arena cost).
The choice is per layer: an optimized kernel takes only the layers OPT_TAKES says it handles
(convolutions: dilation 1, and groups 1 for conv2d; it would return PQLR_ERR_ARG for the others),
so a dilated or grouped convolution keeps its reference kernel in an "opt" build.

    c_call(node, graph, ins, out, symbols, variant="opt") -> str     like OpDef.c_call
    layer_kernel(node, graph, variant) -> str     the C function the node's call uses
    with use_variant("opt"): ...      code generation inside uses the chosen variant (it swaps the
                                      c_call of the ops table entries and restores them on exit)

The "opt" block declares the kernel's prototype at block scope, so generated code compiles
whether or not pqlr.h includes pqlr_nn_opt.h.
"""
from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from typing import Iterator

from ..errors import PqlrError
from .graph import Graph, Node
from .opkit import CKernel
from .ops import OPS, c_kernel

VARIANTS = ("reference", "opt")

# reference kernel -> (optimized kernel, its parameter list)
_WEIGHTED = ("const {} *, const int8_t *, const int8_t *, const int32_t *, const int32_t *, "
             "const int8_t *, int8_t *")
OPT_KERNELS: dict[str, tuple[str, str]] = {
    "pqlr_conv2d_s8": ("pqlr_conv2d_s8_opt", _WEIGHTED.format("pqlr_conv2d_params")),
    "pqlr_depthwise_conv2d_s8": ("pqlr_depthwise_conv2d_s8_opt", _WEIGHTED.format("pqlr_conv2d_params")),
    "pqlr_fully_connected_s8": ("pqlr_fully_connected_s8_opt", _WEIGHTED.format("pqlr_fully_connected_params")),
    "pqlr_avg_pool2d_s8": ("pqlr_avg_pool2d_s8_opt", "const pqlr_avg_pool2d_params *, const int8_t *, int8_t *"),
}


def _plain_conv(fields: dict) -> bool:
    """pqlr_conv2d_plain(p, 0) in pqlr_nn.h: no dilation, no groups."""
    return fields["dilation_h"] == 1 and fields["dilation_w"] == 1 and fields["groups"] == 1


def _plain_depthwise(fields: dict) -> bool:
    """pqlr_conv2d_plain(p, 1): no dilation (groups is the channel count)."""
    return fields["dilation_h"] == 1 and fields["dilation_w"] == 1


# reference kernel -> which layers (their struct values) its optimized kernel takes; absent: all
OPT_TAKES = {"pqlr_conv2d_s8": _plain_conv, "pqlr_depthwise_conv2d_s8": _plain_depthwise}


def _check(variant: str) -> None:
    if variant not in VARIANTS:
        raise PqlrError(f"kernel variant {variant!r}; choose one of {', '.join(VARIANTS)}")


def kernel_name(fn: str, variant: str) -> str:
    """The C function a call to reference kernel `fn` uses under `variant`, for a layer its
    optimized kernel takes (layer_kernel decides for a given layer)."""
    _check(variant)
    return OPT_KERNELS[fn][0] if variant == "opt" and fn in OPT_KERNELS else fn


def layer_kernel(node: Node, graph: Graph, variant: str) -> str | None:
    """The C function the call of `node` uses under `variant` (None: an op without one kernel)."""
    _check(variant)
    k = c_kernel(node, graph)
    return None if k is None else _chosen(k, variant)


def _chosen(k: CKernel, variant: str) -> str:
    """kernel_name(k.fn, variant) if the optimized kernel takes this layer, else k.fn."""
    takes = OPT_TAKES.get(k.fn)
    return k.fn if takes is not None and not takes(k.fields) else kernel_name(k.fn, variant)


def c_call(node: Node, graph: Graph, ins: list[str], out: str, symbols: dict[str, str],
           variant: str = "opt") -> str:
    """OPS[node.op].c_call with the kernel of `variant`."""
    return _rename(OPS[node.op].c_call(node, graph, ins, out, symbols), node, graph, variant)


def _rename(text: str, node: Node, graph: Graph, variant: str) -> str:
    k = c_kernel(node, graph)
    if k is None:
        return text
    fn, new = k.fn, _chosen(k, variant)
    if new == fn:
        return text
    call = f"PQLR_CHECK({fn}(&p, "
    if text.count(call) != 1 or not text.startswith("{\n"):
        raise PqlrError(f"layer {node.name}: unexpected c_call text for {fn}")
    proto = f"    pqlr_status {new}({OPT_KERNELS[fn][1]});\n"
    return "{\n" + proto + text[2:].replace(call, f"PQLR_CHECK({new}(&p, ")


@contextmanager
def use_variant(variant: str) -> Iterator[None]:
    """Within the block, OPS[op].c_call emits `variant` kernels (code generation, verify_graph)."""
    _check(variant)
    saved = dict(OPS)
    try:
        if variant != "reference":
            for name, op in saved.items():
                base = op.c_call
                OPS[name] = dataclasses.replace(
                    op, c_call=lambda n, g, i, o, s, _b=base: _rename(_b(n, g, i, o, s), n, g, variant))
        yield
    finally:
        OPS.clear()
        OPS.update(saved)
