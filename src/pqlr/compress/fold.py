"""BatchNorm folding: a BatchNorm that directly follows a Conv2d / Linear (next sibling in
registration order, as in DS-CNN's conv, bn / dw, dw_bn / pw, pw_bn and nn.Sequential; for a
low-rank pair (compress.lowrank, `.first` then `.second`) its second half) is merged into the
layer's weight and bias and replaced by nn.Identity. Eval-mode outputs are unchanged:

    gamma' = gamma / sqrt(running_var + eps)            # (C_out,)
    W'[c]  = W[c] * gamma'[c]
    b'[c]  = (b[c] - running_mean[c]) * gamma'[c] + beta[c]
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import UnsupportedError

_BN = (nn.BatchNorm1d, nn.BatchNorm2d)


def _fold_pair(layer: nn.Module, bn: nn.Module) -> nn.Module:
    """A copy of `layer` (Conv2d or Linear) with `bn` merged in (always with a bias)."""
    with torch.no_grad():
        g = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps) if bn.affine else \
            1.0 / torch.sqrt(bn.running_var.double() + bn.eps)
        beta = bn.bias.double() if bn.affine else torch.zeros_like(g)
        if isinstance(layer, nn.Conv2d):
            new = nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride,
                            layer.padding, layer.dilation, layer.groups, bias=True,
                            padding_mode=layer.padding_mode)
        else:
            new = nn.Linear(layer.in_features, layer.out_features, bias=True)
        new = new.to(layer.weight.device)
        shape = (-1,) + (1,) * (layer.weight.dim() - 1)
        new.weight.copy_((layer.weight.double() * g.view(shape)).float())
        b = layer.bias.double() if layer.bias is not None else torch.zeros_like(g)
        new.bias.copy_(((b - bn.running_mean.double()) * g + beta).float())
    new.train(layer.training)
    return new


def fold_bn(model: nn.Module) -> list[str]:
    """Fold every (Conv2d | Linear, BatchNorm) sibling pair in place; returns the folded BN names.

    A BatchNorm left over afterwards (not following a layer it can fold into) is reported by the
    quantizer's graph walk as unsupported."""
    folded = []
    for parent_name, parent in list(model.named_modules()):
        children = list(parent.named_children())
        for (name_a, a), (name_b, b) in zip(children, children[1:]):
            if isinstance(b, _BN) and isinstance(getattr(a, "second", None), (nn.Conv2d, nn.Linear)):
                owner, name_a, a = a, "second", a.second           # low-rank pair: fold into its second half
            elif isinstance(b, _BN) and isinstance(a, (nn.Conv2d, nn.Linear)):
                owner = parent
            else:
                continue
            c_out = a.out_channels if isinstance(a, nn.Conv2d) else a.out_features
            if b.num_features != c_out:
                raise UnsupportedError(f"{parent_name}.{name_b}: BatchNorm of {b.num_features} channels "
                                       f"after {name_a} with {c_out} outputs cannot be folded")
            if b.running_mean is None:
                raise UnsupportedError(f"{parent_name}.{name_b}: BatchNorm without running statistics cannot be folded")
            setattr(owner, name_a, _fold_pair(a, b))
            setattr(parent, name_b, nn.Identity())
            folded.append(f"{parent_name}.{name_b}".lstrip("."))
    return folded
