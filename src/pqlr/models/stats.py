"""Parameter, MAC and activation counts per layer, measured by running the model once with hooks."""
from __future__ import annotations

import torch
from torch import nn

from .transformer import SelfAttention


def _leaf_macs(m: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    if isinstance(m, nn.Conv2d):
        k = m.weight[0].numel()                       # (C_in / groups) * KH * KW
        return out[0].numel() * k                     # per sample
    if isinstance(m, nn.Linear):
        return (out[0].numel() // m.out_features) * m.in_features * m.out_features
    return 0


def model_stats(model: nn.Module, input_shape=(1, 49, 10)) -> dict:
    """{'params', 'macs', 'activation_bytes_fp32', 'layers': [{name, type, params, macs, output_shape}]}.

    MACs are per inference (batch 1); attention matmuls (Q.K^T and A.V) are counted on the
    SelfAttention module."""
    layers, hooks = [], []

    def hook(name):
        def fn(m, inp, out):
            macs = _leaf_macs(m, inp[0], out)
            if isinstance(m, SelfAttention):
                T = inp[0].shape[1]
                macs = 2 * m.heads * T * T * m.head_dim
            own = sum(p.numel() for p in m.parameters(recurse=False))
            layers.append({"name": name, "type": type(m).__name__, "params": own, "macs": int(macs),
                           "output_shape": list(out.shape[1:]) if isinstance(out, torch.Tensor) else None})
        return fn

    for name, m in model.named_modules():
        if name and (not list(m.children()) or isinstance(m, SelfAttention)):
            hooks.append(m.register_forward_hook(hook(name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    outs = [l["output_shape"] for l in layers if l["output_shape"]]
    peak = max((int(torch.tensor(s).prod()) for s in outs), default=0)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "macs": sum(l["macs"] for l in layers),
        "peak_activation_elems": peak,
        "layers": layers,
    }
