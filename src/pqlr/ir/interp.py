"""The NumPy integer oracle: run a Graph node by node through OPS[op].run (batched)."""
from __future__ import annotations

import numpy as np

from ..errors import PqlrError, UnsupportedError
from .graph import DTYPES, Graph
from .ops import OPS


def run_graph(graph: Graph, x: np.ndarray) -> np.ndarray:
    """x: (N, *input shape) integers of the input tensor's dtype -> (N, *output shape)."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedError(f"run_graph needs one input and one output, got {graph.inputs} -> {graph.outputs}")
    t_in = graph.tensor(graph.inputs[0])
    x = np.asarray(x)
    if tuple(x.shape[1:]) != tuple(t_in.shape):
        raise PqlrError(f"input {t_in.name}: expected (N, {', '.join(map(str, t_in.shape))}), got {x.shape}")
    values = {t_in.name: x.astype(DTYPES[t_in.dtype])}
    for node in graph.nodes:
        if node.op not in OPS:
            raise UnsupportedError(f"layer {node.name}: op {node.op!r} has no oracle")
        out = OPS[node.op].run([values[t] for t in node.inputs], node, graph)
        values[node.outputs[0]] = out
    return values[graph.outputs[0]]
