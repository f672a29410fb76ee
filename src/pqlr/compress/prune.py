"""Pruning of a captured model. Structured (channels, heads, neurons removed for real) and, as
options, unstructured magnitude and 2:4 semi-structured masks (zeros that dense kernels still multiply).

Three questions in three places, as in Torch-Pruning: which units are coupled (compress/groups.py,
from the graph), which matter (`importance`: "bn" = network slimming's BatchNorm gammas, Liu et al.
2017, arXiv:1708.06519, the default where a group has BatchNorms; "l2" = the group's L2 norm, the
weight rows that produce a unit and the columns that read it, the default elsewhere), and how a model
is cut (`cut`: slice every module and constant the group touches, update the graph's shapes).
`choose_keep` ranks units globally per kind (channels, heads) after normalising each group by its
mean, cuts the lowest `sparse` fraction and keeps a floor per group. `slimming_penalty` is the
sparsity-training regulariser: L1 on the gammas of BatchNorms in prunable groups, group lasso on the
producing weight rows of the other groups.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..capture import GraphModel
from ..errors import PqlrError
from .groups import Group, find_groups

METHODS = ("structured", "magnitude", "2:4")
IMPORTANCE = ("auto", "bn", "l2")


@dataclass(frozen=True)
class PruneConfig:
    sparse: float = 0.7          # fraction of channels / units (structured) or weights (magnitude) removed
    method: str = "structured"
    importance: str = "auto"     # "auto" (BatchNorm gammas where a group has them, else L2), "bn", "l2"
    l1: float = 1e-4             # slimming penalty weight on |gamma| (or group norms without BatchNorm)
    floor: float = 0.1           # structured: every group keeps at least this fraction (and >= 1 unit)
    head_floor: float = 0.5      # attention heads: every block keeps at least this fraction of its heads.
                                 # Heads are few and coarse: at --sparse 0.7 a block left with 1 of 4
                                 # heads cost kws_chinese 4-6 points after fine-tuning, 2 of 4 did not

    def __post_init__(self):
        if not 0.0 <= self.sparse < 1.0:
            raise PqlrError(f"--sparse must be in [0, 1), got {self.sparse}")
        if self.method not in METHODS:
            raise PqlrError(f"prune method must be one of {METHODS}, got {self.method!r}")
        if self.importance not in IMPORTANCE:
            raise PqlrError(f"prune importance must be one of {IMPORTANCE}, got {self.importance!r}")
        if self.l1 < 0 or not 0.0 < self.floor <= 1.0 or not 0.0 < self.head_floor <= 1.0:
            raise PqlrError(f"bad prune l1={self.l1} / floor={self.floor} / head_floor={self.head_floor}")


# ------------------------------------------------------------------ decide: importance and choice
def _layer_units(gm: GraphModel, gr: Group, layer: str, how: str) -> list[torch.Tensor]:
    """Per atom, the weight rows (how="rows") or columns ("cols") of `layer` it owns."""
    g = gm.graph
    nodes = [n for n in g.nodes if n.module == layer]
    out = []
    for atom in gr.atoms:
        idx = set()
        for n in nodes:
            if how == "rows":
                d = 0 if n.op == "conv" else len(n.shape) - 1
                idx |= {i for t, dd, i in atom.units if t == n.name and dd == d}
            else:
                x = g.node(n.inputs[0])
                d = 0 if n.op == "conv" else len(x.shape) - 1
                idx |= {i for t, dd, i in atom.units if t == x.name and dd == d}
        out.append(torch.tensor(sorted(idx), dtype=torch.long))
    return out


def _weight_slice(mod: nn.Module, how: str, idx: torch.Tensor) -> torch.Tensor:
    w = mod.weight
    if how == "rows" or getattr(mod, "groups", 1) != 1:      # depthwise: its columns are its rows
        return w.index_select(0, idx)
    return w.index_select(1, idx)


def _l2(gm: GraphModel, gr: Group) -> torch.Tensor:
    total = torch.zeros(len(gr))
    for layer, how in gr.producers:
        mod = gm.module(layer)
        for k, idx in enumerate(_layer_units(gm, gr, layer, how)):
            if idx.numel():
                total[k] += _weight_slice(mod, how, idx).detach().double().pow(2).sum().float()
    return total.sqrt()


def _bn(gm: GraphModel, gr: Group) -> torch.Tensor:
    total = torch.zeros(len(gr))
    for name in gr.norms:
        gamma = gm.module(gm.graph.node(name).module).weight.detach().abs()
        for k, atom in enumerate(gr.atoms):
            total[k] += sum(float(gamma[i]) for t, d, i in atom.units if t == name and d == 0)
    return total


def importance(gm: GraphModel, groups: list[Group], criterion: str = "auto") -> dict[str, torch.Tensor]:
    """group name -> per-atom importance."""
    out = {}
    for gr in groups:
        use_bn = criterion == "bn" or (criterion == "auto" and gr.norms)
        if criterion == "bn" and not gr.norms:
            raise PqlrError(f"importance 'bn': group {gr.name} has no BatchNorm (use --prune-importance l2)")
        out[gr.name] = _bn(gm, gr) if use_bn else _l2(gm, gr)
    return out


def choose_keep(scores: dict[str, torch.Tensor], kinds: dict[str, str], sparse: float, floor: float,
                kind_floors: dict[str, float] | None = None) -> dict[str, torch.Tensor]:
    """Global ranking per kind: drop the lowest `sparse` fraction of units over all groups of a kind,
    keeping >= max(1, ceil(floor * n)) per group (`kind_floors` overrides floor for a kind, e.g.
    "heads"). Returns group -> sorted indices of the atoms kept."""
    keep, by_kind = {}, {}
    for g in scores:
        by_kind.setdefault(kinds[g], []).append(g)
    for kind, groups in by_kind.items():
        kind_floor = max(floor, (kind_floors or {}).get(kind, floor))
        normed = {g: scores[g] / (scores[g].mean() + 1e-12) for g in groups}   # layers compete fairly
        allv = torch.cat([normed[g] for g in groups])
        n_cut = int(round(sparse * allv.numel()))
        thresh = torch.sort(allv).values[n_cut - 1] if n_cut > 0 else -float("inf")
        for g in groups:
            s = normed[g]
            n_min = max(1, int(-(-kind_floor * s.numel() // 1)))
            idx = torch.nonzero(s > thresh).flatten()
            if idx.numel() < n_min:
                idx = torch.topk(s, n_min).indices
            keep[g] = torch.sort(idx).values
    return keep


class SlimmingPenalty:
    """cfg.l1 x (L1 on the gammas of BatchNorms in prunable groups + group lasso on the producing
    weight rows of groups without BatchNorm). Called with the model being trained."""

    def __init__(self, gm: GraphModel, groups: list[Group], l1: float):
        self.l1 = l1
        self.norms = sorted({gm.graph.node(n).module for gr in groups for n in gr.norms})
        self.rows = [(layer, torch.nn.utils.rnn.pad_sequence(idx, batch_first=True, padding_value=-1))
                     for gr in groups if not gr.norms for layer, how in gr.producers if how == "rows"
                     for idx in [_layer_units(gm, gr, layer, "rows")]]

    def __call__(self, gm: GraphModel) -> torch.Tensor:
        total = torch.zeros(())
        for layer in self.norms:
            total = total + gm.module(layer).weight.abs().sum()
        for layer, idx in self.rows:                        # (atoms, units) row indices, -1 = padding
            w = gm.module(layer).weight
            sq = w.reshape(w.shape[0], -1).pow(2).sum(dim=1)
            per = torch.where(idx >= 0, sq[idx.clamp(min=0)], torch.zeros(()))
            total = total + (per.sum(dim=1) + 1e-12).sqrt().sum()
        return self.l1 * total


# ------------------------------------------------------------------ do: cut
def _new_param(old: torch.Tensor, value: torch.Tensor) -> nn.Parameter | torch.Tensor:
    if isinstance(old, nn.Parameter):
        return nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad)
    return value.detach().clone()


@torch.no_grad()
def cut(gm: GraphModel, groups: list[Group], keep: dict[str, torch.Tensor]) -> GraphModel:
    """Remove every atom not kept, in place: modules, constants and node shapes shrink together."""
    g = gm.graph
    removed: set[tuple[str, int, int]] = set()
    for gr in groups:
        kept = set(keep[gr.name].tolist())
        for k, atom in enumerate(gr.atoms):
            if k not in kept:
                removed.update(atom.units)
    idx = {(n.name, d): torch.tensor([i for i in range(s) if (n.name, d, i) not in removed], dtype=torch.long)
           for n in g.nodes for d, s in enumerate(n.shape)}
    done: set[str] = set()
    for n in g.nodes:
        if n.module and n.module not in done:
            done.add(n.module)
            _cut_module(gm, n, idx)
        if n.op == "const" and "key" in n.attrs:
            _cut_const(gm, n, idx)
    for n in g.nodes:
        n.shape = tuple(len(idx[(n.name, d)]) for d in range(len(n.shape)))
    for n in g.nodes:                                      # a slice that kept a whole dim keeps it
        if n.op == "slice":
            x = g.node(n.inputs[0])
            n.attrs["end"] = tuple(x.shape[d] if (b, st) == (0, 1) and n.shape[d] == x.shape[d] else e
                                   for d, (b, e, st) in enumerate(zip(n.attrs["begin"], n.attrs["end"],
                                                                      n.attrs["step"])))
    g.validate()
    return gm


def _cut_module(gm: GraphModel, n, idx) -> None:
    mod, g = gm.module(n.module), gm.graph
    if n.op == "conv":
        out_i, in_i = idx[(n.name, 0)], idx[(n.inputs[0], 0)]
        w = mod.weight.index_select(0, out_i)
        if mod.groups == 1:
            w = w.index_select(1, in_i)
        else:                                              # depthwise (grouped convs are never cut)
            mod.groups = len(in_i)
        mod.weight = _new_param(mod.weight, w)
        mod.in_channels, mod.out_channels = len(in_i), len(out_i)
        if mod.bias is not None:
            mod.bias = _new_param(mod.bias, mod.bias.index_select(0, out_i))
    elif n.op == "linear":
        x = g.node(n.inputs[0])
        out_i, in_i = idx[(n.name, len(n.shape) - 1)], idx[(x.name, len(x.shape) - 1)]
        mod.weight = _new_param(mod.weight, mod.weight.index_select(0, out_i).index_select(1, in_i))
        mod.in_features, mod.out_features = len(in_i), len(out_i)
        if mod.bias is not None:
            mod.bias = _new_param(mod.bias, mod.bias.index_select(0, out_i))
    elif n.op == "batchnorm":
        i = idx[(n.name, 0)]
        for name in ("weight", "bias", "running_mean", "running_var"):
            t = getattr(mod, name)
            if t is not None:
                setattr(mod, name, _new_param(t, t.index_select(0, i)))
        mod.num_features = len(i)
    elif n.op == "prelu" and mod.weight.numel() > 1:
        i = idx[(n.name, 0)]
        mod.weight = _new_param(mod.weight, mod.weight.index_select(0, i))
        mod.num_parameters = len(i)


def _cut_const(gm: GraphModel, n, idx) -> None:
    t = gm.const(n)                                    # without the batch dim
    for d in range(len(n.shape)):
        t = t.index_select(d, idx[(n.name, d)])
    gm.set_const(n.attrs["key"], t[None] if n.attrs.get("drop_batch") else t)


def apply(gm: GraphModel, cfg: PruneConfig) -> tuple[GraphModel, dict]:
    """Cut the model (in place). Returns (model, summary {group: [before, after]} / sparsity figures).
    For "magnitude" and "2:4" the model keeps its shape; masks are attached (`attach_masks`)."""
    if cfg.method != "structured":
        masks, skipped = magnitude_masks(gm, cfg)
        attach_masks(gm, masks)
        zeros = sum(int((~m).sum()) for m in masks.values())
        total = sum(m.numel() for m in masks.values())
        return gm, {"method": cfg.method, "zero_weights": zeros, "weights": total, "skipped": skipped,
                    "note": "unstructured zeros cut no MACs and no bytes in dense kernels"}
    groups = find_groups(gm)
    if not groups:
        return gm, {"method": "structured", "groups": {}, "note": "no prunable channel group in this model"}
    scores = importance(gm, groups, cfg.importance)
    keep = choose_keep(scores, {gr.name: gr.kind for gr in groups}, cfg.sparse, cfg.floor, {"heads": cfg.head_floor})
    cut(gm, groups, keep)
    return gm, {"method": "structured", "importance": cfg.importance,
                "groups": {gr.name: [len(gr), int(keep[gr.name].numel())] for gr in groups}}


# ------------------------------------------------------------------ unstructured / 2:4 masks
def _weight_layers(gm: GraphModel):
    for path in gm.graph.modules():
        m = gm.module(path)
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) and m.weight[0].numel() > 1:
            yield path, m


def magnitude_masks(gm: GraphModel, cfg: PruneConfig) -> tuple[dict[str, torch.Tensor], list[str]]:
    """(masks {layer: True = keep}, layers skipped). "magnitude": one global |w| threshold over every
    conv/linear; "2:4": keep the 2 largest of every 4 along each output row (rows whose length is not a
    multiple of 4 are skipped and named)."""
    layers = dict(_weight_layers(gm))
    if cfg.method == "2:4":
        masks, skipped = {}, []
        for name, m in layers.items():
            w = m.weight.detach().reshape(m.weight.shape[0], -1)
            if w.shape[1] % 4:
                skipped.append(f"{name} (rows of {w.shape[1]})")
                continue
            groups = w.abs().reshape(w.shape[0], -1, 4)
            top = groups.topk(2, dim=-1).indices
            mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, top, True)
            masks[name] = mask.reshape(m.weight.shape)
        return masks, skipped
    if not layers:
        return {}, []
    allw = torch.cat([m.weight.detach().abs().flatten() for m in layers.values()])
    k = int(cfg.sparse * allw.numel())
    thresh = allw.kthvalue(k).values if k > 0 else -1.0
    return {name: m.weight.detach().abs() > thresh for name, m in layers.items()}, []


def attach_masks(gm: GraphModel, masks: dict[str, torch.Tensor]) -> None:
    """Zero masked weights now and before every forward (so fine-tuning keeps them zero)."""
    for name, mask in masks.items():
        m = gm.module(name)
        m.register_buffer("prune_mask", mask.to(m.weight.dtype), persistent=False)
        m.weight.data.mul_(m.prune_mask)
        m.register_forward_pre_hook(_reapply_mask)


def _reapply_mask(module: nn.Module, _inputs) -> None:
    module.weight.data.mul_(module.prune_mask)
