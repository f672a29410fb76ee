"""Parameters, MACs and activation sizes per node of a captured model (what `pqlr info` prints).

MACs are multiply-accumulates per inference (batch 1) of the layers that papers count: conv (1-D and
2-D, grouped and depthwise: out elements x in-channels-per-group x kernel taps), linear (out
elements x in features) and matmul (H x M x K x P). Everything else (BatchNorm, activations, adds,
pooling, softmax, LayerNorm) is counted apart as element operations (one per output element, pooling
one per window element) so the two figures can be compared with published MAC counts.

`module_stats` counts a model that cannot be captured (a GRU, an attention module: not deployable
yet) by running it once with a hook on every leaf module: the same formulas, plus the recurrent
layers (time steps x the weight matrices' elements) and nn.MultiheadAttention (projections, scores,
weighted sum). Functional calls in forward() are not seen there; the result says so.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import PqlrError
from .module import GraphModel


def _prod(s) -> int:
    return int(math.prod(s))


def _steps(x: torch.Tensor, batch_first: bool) -> int:
    """Sequence length of a recurrent/attention input: (B, T, F) if batch_first, else (T, B, F) or (T, F)."""
    return int(x.shape[1] if x.dim() == 3 and batch_first else x.shape[0])


def layer_macs(mod: nn.Module, args: tuple, out_elems: int) -> int | None:
    """Multiply-accumulates of one call of a weighted module with positional `args` (batched
    tensors) and `out_elems` output elements per sample; None for a module that does no MACs."""
    if isinstance(mod, nn.modules.conv._ConvNd):
        return out_elems * int(mod.weight[0].numel())
    if isinstance(mod, nn.Linear):
        return out_elems * int(mod.in_features)
    if isinstance(mod, nn.RNNBase):            # each step: every weight matrix (layer, direction) times a vector
        return _steps(args[0], mod.batch_first) * sum(int(w.numel()) for k, w in mod.named_parameters()
                                                      if k.startswith("weight_"))
    if isinstance(mod, nn.MultiheadAttention):  # q, k, v and out projections, scores, weighted sum
        lq, lk = _steps(args[0], mod.batch_first), _steps(args[1], mod.batch_first)
        e = mod.embed_dim
        return lq * e * e + lk * e * (mod.kdim + mod.vdim) + lq * e * e + 2 * lq * lk * e
    return None


def node_macs(gm: GraphModel, node) -> tuple[int, int]:
    """(MACs, element ops) of one node."""
    out = _prod(node.shape)
    if node.op in ("conv", "linear"):
        return layer_macs(gm.module(node.module), (), out), 0
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


@torch.no_grad()
def module_stats(model: nn.Module, input_shape) -> dict:
    """graph_stats' figures for a model that does not capture: one forward pass of a single sample
    with a hook on every leaf module and on every recurrent and attention module (layers in call
    order, a module called twice counted twice)."""
    layers, hooks, seen = [], [], set()

    def hook(name):
        def f(mod, args, kwargs, out):
            args = (*args, *(v for k, v in kwargs.items() if k in ("input", "query", "key")))
            y = out[0] if isinstance(out, tuple) else out
            elems = _prod(y.shape[1:]) if isinstance(y, torch.Tensor) and y.dim() else 1
            macs = layer_macs(mod, args, elems)
            params = 0 if name in seen else sum(p.numel() for p in mod.parameters())
            seen.add(name)
            layers.append({"name": name, "op": "module", "type": type(mod).__name__, "params": int(params),
                           "macs": int(macs or 0), "element_ops": 0 if macs is not None else int(elems),
                           "output_shape": list(y.shape[1:]) if isinstance(y, torch.Tensor) else [], "source": ""})
        return f

    whole = ()                                      # modules counted as one (their children are not called)
    for name, mod in model.named_modules():
        if not name or name.startswith(whole):
            continue
        if isinstance(mod, (nn.RNNBase, nn.MultiheadAttention)):
            whole += (name + ".",)
        elif any(True for _ in mod.children()):
            continue
        hooks.append(mod.register_forward_hook(hook(name), with_kwargs=True))
    was = model.training
    try:
        model.eval()
        model(torch.randn(1, *input_shape))
    except Exception as e:  # the user's forward: whatever it raises, one line
        raise PqlrError(f"the model fails on one sample of shape {tuple(input_shape)}: {type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''}") from None
    finally:
        model.train(was)
        for h in hooks:
            h.remove()
    return {"params": sum(p.numel() for p in model.parameters()), "macs": sum(l["macs"] for l in layers),
            "element_ops": sum(l["element_ops"] for l in layers),
            "peak_activation_elems": max((_prod(l["output_shape"]) for l in layers), default=0), "layers": layers}
