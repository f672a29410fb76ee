"""Model inputs as the deployed graph takes them: float samples in PyTorch layout -> the quantized
input tensor in the IR's layout (graph.meta["input_layout"]: the PyTorch shape and the permutation
the lowering chose, e.g. an image (3, H, W) arrives channels last as (H, W, 3))."""
from __future__ import annotations

import numpy as np
import torch

from ..errors import PqlrError
from ..ir.graph import Graph
from ..primitives import quantize_act


def input_layout(graph: Graph) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(PyTorch sample shape, perm) of the graph input; graphs without the record take (1, frames,
    feats) features as (frames, feats, 1), as PQLR's first graphs did."""
    t = graph.tensor(graph.inputs[0])
    lay = graph.meta.get("input_layout") or {}
    shape, perm = lay.get("torch_shape"), lay.get("perm")
    if shape is None or perm is None:
        if len(t.shape) == 3 and t.shape[2] == 1:
            return (1, t.shape[0], t.shape[1]), (1, 2, 0)
        return tuple(t.shape), tuple(range(len(t.shape)))
    shape, perm = tuple(int(s) for s in shape), tuple(int(p) for p in perm)
    if sorted(perm) != list(range(len(shape))) or tuple(shape[p] for p in perm) != tuple(t.shape):
        raise PqlrError(f"graph input layout {shape} / {perm} does not match its tensor {t.shape}")
    return shape, perm


def input_int8(graph: Graph, x) -> np.ndarray:
    """Float inputs (N, *PyTorch sample shape) -> the graph's quantized input (N, *IR input shape)."""
    shape, perm = input_layout(graph)
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if tuple(x.shape[1:]) != shape:
        raise PqlrError(f"inputs of shape {tuple(x.shape)} for a model taking (N, {', '.join(map(str, shape))})")
    t = graph.tensor(graph.inputs[0])
    x = np.transpose(x, (0, *(p + 1 for p in perm)))
    return quantize_act(x, t.scale, t.zero_point, t.bits).reshape((len(x), *t.shape))
