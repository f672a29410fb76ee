"""Graph capture: any nn.Module -> one graph of canonical ops that every PQLR stage reads.

    gm = capture(model, (1, 49, 10))     # a GraphModel: runs, trains and saves like the model
    gm.graph                             # the CGraph (capture/graph.py), ops per capture/optable.py

Below compress/ and ir/ in the tree: it knows PyTorch, nothing of quantization or deployment.
"""
from __future__ import annotations

from torch import nn

from ..errors import PqlrError
from .graph import CGraph, CNode
from .module import GraphModel
from .optable import OPS
from .trace import trace


def capture(model: nn.Module, input_shape) -> GraphModel:
    """Capture `model` for inputs of one sample's shape `input_shape` (no batch). The result
    computes what `model` computes (in eval mode) with the same module objects."""
    if isinstance(model, GraphModel):
        if tuple(input_shape) != model.input_shape:
            raise PqlrError(f"captured model takes {model.input_shape}, not {tuple(input_shape)}")
        return model
    graph, modules, consts = trace(model, input_shape)
    gm = GraphModel(graph, modules, consts)
    gm.train(model.training)
    return gm


__all__ = ["CGraph", "CNode", "GraphModel", "OPS", "capture", "trace"]
