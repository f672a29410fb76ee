"""Parameters, MACs and activation sizes per node of a captured model (what `pqlr info` prints).

MACs are multiply-accumulates per inference (batch 1) of the layers that papers count: conv (1-D and
2-D, grouped and depthwise: out elements x in-channels-per-group x kernel taps), linear (out
elements x in features) and matmul (H x M x K x P). Everything else (BatchNorm, activations, adds,
pooling, softmax, LayerNorm) is counted apart as element operations (one per output element, pooling
one per window element) so the two figures can be compared with published MAC counts.
"""
from __future__ import annotations

import math

from .module import GraphModel


def _prod(s) -> int:
    return int(math.prod(s))


def node_macs(gm: GraphModel, node) -> tuple[int, int]:
    """(MACs, element ops) of one node."""
    out = _prod(node.shape)
    if node.op == "conv":
        return out * int(gm.module(node.module).weight[0].numel()), 0
    if node.op == "linear":
        return out * int(gm.module(node.module).in_features), 0
    if node.op == "matmul":
        a = gm.graph.node(node.inputs[0]).shape
        return out * int(a[-1]), 0
    if node.op in ("maxpool", "avgpool"):
        return 0, out * _prod(node.attrs["kernel"])
    if node.op in ("adaptive_avgpool", "adaptive_maxpool", "mean"):
        return 0, _prod(gm.graph.node(node.inputs[0]).shape)
    if node.op in ("input", "const", "reshape", "permute", "slice", "dropout", "cat", "pad"):
        return 0, 0
    return 0, out


def node_params(gm: GraphModel, node, seen: set) -> int:
    """Parameters of the node's module (counted once for a module used twice) or its constant."""
    if node.module and node.module not in seen:
        seen.add(node.module)
        return sum(p.numel() for p in gm.module(node.module).parameters())
    if node.op == "const" and "key" in node.attrs and node.attrs["key"] not in seen:
        seen.add(node.attrs["key"])
        return _prod(gm.const(node).shape)
    return 0


def graph_stats(gm: GraphModel) -> dict:
    """{'params', 'macs', 'element_ops', 'peak_activation_elems', 'layers': [{name, op, type, params,
    macs, element_ops, output_shape, source}]} in graph order."""
    layers, seen = [], set()
    for n in gm.graph.nodes:
        if n.op == "input":
            continue
        macs, elem = node_macs(gm, n)
        kind = type(gm.module(n.module)).__name__ if n.module else n.attrs.get("fn", n.op)
        layers.append({"name": n.name, "op": n.op, "type": kind, "params": node_params(gm, n, seen),
                       "macs": macs, "element_ops": elem, "output_shape": list(n.shape), "source": n.source})
    return {"params": sum(p.numel() for p in gm.parameters()),
            "macs": sum(l["macs"] for l in layers),
            "element_ops": sum(l["element_ops"] for l in layers),
            "peak_activation_elems": max((_prod(n.shape) for n in gm.graph.nodes), default=0),
            "layers": layers}
