"""BatchNorm folding, a pass on the captured graph: a BatchNorm whose input is produced by a conv or
linear node that nothing else reads (and whose module no other node uses) is merged into that
layer's weight and bias, and the BatchNorm node is removed. Eval-mode outputs are unchanged:

    g[c]  = gamma[c] / sqrt(running_var[c] + eps)          # (C_out,)
    W'[c] = W[c] * g[c]
    b'[c] = (b[c] - running_mean[c]) * g[c] + beta[c]

The BatchNorm's channel is dim 0 (without the batch): a conv's output channels always; a linear's
outputs only when its output is a vector (F,) -- a BatchNorm1d on a linear's (C, L) output
normalises C, not the linear's features, and stays. A BatchNorm that stays becomes a per-channel
affine op in the quantized program (SubSpectralNorm, a norm after an add, ...).
"""
from __future__ import annotations

import torch
from torch import nn

from ..capture import GraphModel


def _foldable(gm: GraphModel, bn) -> bool:
    src = gm.graph.node(bn.inputs[0])
    if src.op not in ("conv", "linear") or len(gm.graph.consumers(src.name)) != 1 or src.name == gm.graph.output:
        return False
    if sum(1 for n in gm.graph.nodes if n.module == src.module) != 1:
        return False                                   # a shared layer: its other use would change
    if src.op == "linear" and len(src.shape) != 1:
        return False
    return gm.module(bn.module).num_features == src.shape[0]


@torch.no_grad()
def _merge(layer: nn.Module, bn: nn.Module) -> None:
    g = (bn.weight.double() if bn.affine else 1.0) / torch.sqrt(bn.running_var.double() + bn.eps)
    beta = bn.bias.double() if bn.affine else torch.zeros_like(g)
    shape = (-1,) + (1,) * (layer.weight.dim() - 1)
    layer.weight.copy_((layer.weight.double() * g.view(shape)).to(layer.weight.dtype))
    b = layer.bias.double() if layer.bias is not None else torch.zeros_like(g)
    new_b = ((b - bn.running_mean.double()) * g + beta).to(layer.weight.dtype)
    if layer.bias is None:
        layer.bias = nn.Parameter(new_b)
    else:
        layer.bias.copy_(new_b)


def fold_bn(gm: GraphModel) -> list[str]:
    """Fold every foldable BatchNorm of `gm` in place; returns the folded BatchNorm node names."""
    folded = []
    for bn in list(gm.graph.by_op("batchnorm")):
        if not _foldable(gm, bn):
            continue
        src = bn.inputs[0]
        _merge(gm.module(gm.graph.node(src).module), gm.module(bn.module))
        gm.graph.replace_uses(bn.name, src)
        gm.graph.remove(bn.name)
        if not any(n.module == bn.module for n in gm.graph.nodes):
            gm.set_module(bn.module, None)
        folded.append(bn.name)
    return folded
