"""Which channels are coupled: structured-pruning groups found on the captured graph (the question
Torch-Pruning's DepGraph answers, written here over PQLR's canonical ops).

Every dimension of every tensor is a row of units (channel c of a conv output is unit c of dim 0).
Each op says which units must go together (`_couple`): element-wise ops, BatchNorm and activations
tie every dim of their input to the same dim of their output; a depthwise conv ties its input and
output channels; adds tie non-broadcast dims of both operands; a concat ties each input's units to
their offset in the output; a reshape that merges axes ties each output unit to the outer input unit
it comes from (flatten -> linear column blocks), one that splits an axis ties each outer output unit
to its block of input units (a Linear's q/k/v features -> attention heads); a matmul ties batch dims
and the contracted dim of its operands. Some units can never go (`fixed`): the model input and
output, spatial dims of convs and pools, dims a slice/pad/softmax/mean/LayerNorm works along, grouped
convs, the inner dims of a merge or split. A conv or linear layer cuts the link between its input and
output channels: its weight rows produce units, its columns consume them.

Connected units form *atoms* (union-find): removing one unit removes its whole atom. An atom is
prunable when none of its units is fixed and some conv/linear produces it. Atoms touching the same
tensor dims form a *group* (e.g. the 64 output channels of one conv with the BatchNorm and depthwise
conv after it; the 4 heads of one attention block; the 576 FFN neurons of one block).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..capture import CGraph, CNode, GraphModel

WEIGHT_OPS = ("conv", "linear")


@dataclass
class Atom:
    units: list[tuple[str, int, int]]          # (tensor, dim, index)


@dataclass
class Group:
    name: str                                  # the first producing layer (+ what it is)
    kind: str                                  # "channels" or "heads" (through a matmul's batch dim)
    atoms: list[Atom]
    dims: list[tuple[str, int]]                # the tensor dims the group lives in
    producers: list[tuple[str, str]] = field(default_factory=list)   # (layer, "rows"/"cols") it cuts
    norms: list[str] = field(default_factory=list)                   # BatchNorm nodes in the group

    def __len__(self) -> int:
        return len(self.atoms)


class _Units:
    """Union-find over all (tensor, dim, index) units of a graph."""

    def __init__(self, g: CGraph):
        self.base: dict[tuple[str, int], int] = {}
        n = 0
        for node in g.nodes:
            for d, size in enumerate(node.shape):
                self.base[(node.name, d)] = n
                n += size
        self.parent = list(range(n))
        self.fixed = [False] * n

    def id(self, t: str, d: int, i: int) -> int:
        return self.base[(t, d)] + i

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra

    def tie(self, t1: str, d1: int, t2: str, d2: int, size: int) -> None:
        for i in range(size):
            self.union(self.id(t1, d1, i), self.id(t2, d2, i))

    def fix(self, t: str, d: int, size: int) -> None:
        for i in range(size):
            self.fixed[self.id(t, d, i)] = True


def _same(u: _Units, g: CGraph, n: CNode, skip=()) -> None:
    """Tie every dim of the (single) input to the output, except `skip` dims (fixed)."""
    x = g.node(n.inputs[0])
    for d, size in enumerate(n.shape):
        if d in skip:
            u.fix(n.name, d, size)
            u.fix(x.name, d, x.shape[d])
        else:
            u.tie(x.name, d, n.name, d, size)


def _reshape_groups(a: tuple[int, ...], b: tuple[int, ...]) -> list[tuple[list[int], list[int]]]:
    """Pairs (dims of a, dims of b) whose products match, left to right (size-1 dims on their own)."""
    out, i, j = [], 0, 0
    while i < len(a) or j < len(b):
        if i < len(a) and a[i] == 1 and (j >= len(b) or b[j] != 1):
            out.append(([i], [])); i += 1; continue
        if j < len(b) and b[j] == 1 and (i >= len(a) or a[i] != 1):
            out.append(([], [j])); j += 1; continue
        ga, gb = [i], [j]
        pa, pb = a[i], b[j]
        i, j = i + 1, j + 1
        while pa != pb:
            if pa < pb:
                ga.append(i); pa *= a[i]; i += 1
            else:
                gb.append(j); pb *= b[j]; j += 1
        out.append((ga, gb))
    return out


def _couple(u: _Units, g: CGraph, gm: GraphModel, n: CNode) -> None:
    op = n.op
    ins = [g.node(i) for i in n.inputs]
    if op in ("input", "const"):
        if op == "input":
            for d, size in enumerate(n.shape):
                u.fix(n.name, d, size)
        return
    if op == "conv":
        mod, x = gm.module(n.module), ins[0]
        for d in range(1, len(n.shape)):                     # spatial dims
            u.fix(n.name, d, n.shape[d])
            u.fix(x.name, d, x.shape[d])
        if mod.groups == 1:
            return
        if mod.groups == mod.in_channels:                    # depthwise (channel multiplier k)
            k = mod.out_channels // mod.in_channels
            for c in range(n.shape[0]):
                u.union(u.id(n.name, 0, c), u.id(x.name, 0, c // k))
            return
        u.fix(n.name, 0, n.shape[0])                         # grouped: channels stay
        u.fix(x.name, 0, x.shape[0])
        return
    if op == "linear":
        x = ins[0]
        for d in range(len(n.shape) - 1):
            u.tie(x.name, d, n.name, d, n.shape[d])
        return
    if op in ("batchnorm", "act", "scale", "dropout", "prelu"):
        return _same(u, g, n)
    if op == "layernorm":
        return _same(u, g, n, skip=(len(n.shape) - 1,))
    if op == "softmax":
        return _same(u, g, n, skip=(n.attrs["dim"],))
    if op in ("maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool"):
        return _same(u, g, n, skip=tuple(range(1, len(n.shape))))
    if op == "pad":
        return _same(u, g, n, skip=tuple(d for d, p in enumerate(n.attrs["pads"]) if tuple(p) != (0, 0)))
    if op == "slice":
        x = ins[0]
        skip = tuple(d for d in range(len(n.shape)) if (n.attrs["begin"][d], n.attrs["end"][d], n.attrs["step"][d])
                     != (0, x.shape[d], 1))
        return _same(u, g, n, skip=skip)
    if op in ("add", "sub", "mul"):
        r = len(n.shape)
        for x in ins:
            lead = r - len(x.shape)
            for d, size in enumerate(x.shape):
                if size == n.shape[lead + d]:
                    u.tie(x.name, d, n.name, lead + d, size)
        return
    if op == "cat":
        dim, at = n.attrs["dim"], 0
        for x in ins:
            for d, size in enumerate(x.shape):
                if d == dim:
                    for i in range(size):
                        u.union(u.id(x.name, d, i), u.id(n.name, d, at + i))
                else:
                    u.tie(x.name, d, n.name, d, size)
            at += x.shape[dim]
        return
    if op == "permute":
        x = ins[0]
        for j, p in enumerate(n.attrs["perm"]):
            u.tie(x.name, p, n.name, j, n.shape[j])
        return
    if op == "mean":
        x, dims = ins[0], set(n.attrs["dims"])
        j = 0
        for d, size in enumerate(x.shape):
            if d in dims:
                u.fix(x.name, d, size)
                if n.attrs["keepdim"]:
                    u.fix(n.name, j, 1)
                    j += 1
            else:
                u.tie(x.name, d, n.name, j, size)
                j += 1
        return
    if op == "reshape":
        x = ins[0]
        for ga, gb in _reshape_groups(x.shape, n.shape):
            if not ga or not gb:                          # a unit axis comes or goes
                for d in ga:
                    u.fix(x.name, d, 1)
                for d in gb:
                    u.fix(n.name, d, 1)
                continue
            inner_a = math.prod(x.shape[d] for d in ga[1:])
            inner_b = math.prod(n.shape[d] for d in gb[1:])
            for d in ga[1:]:
                u.fix(x.name, d, x.shape[d])
            for d in gb[1:]:
                u.fix(n.name, d, n.shape[d])
            if len(ga) == 1:                              # split (or same): outer unit <- its block
                for i in range(x.shape[ga[0]]):
                    u.union(u.id(x.name, ga[0], i), u.id(n.name, gb[0], i // inner_b))
            else:                                         # merge: output unit -> its outer input unit
                for i in range(n.shape[gb[0]]):
                    u.union(u.id(n.name, gb[0], i), u.id(x.name, ga[0], i // inner_a))
        return
    if op == "matmul":
        a, b = ins
        r = len(n.shape)
        for d in range(r - 2):
            u.tie(a.name, d, n.name, d, n.shape[d])
            u.tie(b.name, d, n.name, d, n.shape[d])
        u.tie(a.name, r - 2, n.name, r - 2, n.shape[r - 2])
        u.tie(b.name, r - 1, n.name, r - 1, n.shape[r - 1])
        u.tie(a.name, r - 1, b.name, r - 2, a.shape[r - 1])
        return
    raise ValueError(f"no coupling rule for op {op!r}")


def _producer_dim(n: CNode) -> int:
    return 0 if n.op == "conv" else len(n.shape) - 1


def find_groups(gm: GraphModel) -> list[Group]:
    """The prunable groups of a captured model, in graph order of their first producer."""
    g = gm.graph
    u = _Units(g)
    for n in g.nodes:
        _couple(u, g, gm, n)
    for d, size in enumerate(g.node(g.output).shape):
        u.fix(g.output, d, size)
    shared: dict[str, list[CNode]] = {}
    for n in g.by_op(*WEIGHT_OPS):
        shared.setdefault(n.module, []).append(n)
    for nodes in shared.values():                         # one module called twice: one set of rows
        for other in nodes[1:]:
            d0, d1 = _producer_dim(nodes[0]), _producer_dim(other)
            u.tie(nodes[0].name, d0, other.name, d1, nodes[0].shape[d0])
    atoms: dict[int, list[tuple[str, int, int]]] = {}
    bad: set[int] = set()
    for (t, d), base in u.base.items():
        size = g.node(t).shape[d]
        for i in range(size):
            r = u.find(base + i)
            atoms.setdefault(r, []).append((t, d, i))
            if u.fixed[base + i]:
                bad.add(r)
    produced = {(n.name, _producer_dim(n)) for n in g.by_op(*WEIGHT_OPS)}
    order = {n.name: k for k, n in enumerate(g.nodes)}
    by_sig: dict[tuple, list[Atom]] = {}
    for r, units in atoms.items():
        if r in bad or not any((t, d) in produced for t, d, _ in units):
            continue
        sig = tuple(sorted({(t, d) for t, d, _ in units}, key=lambda td: (order[td[0]], td[1])))
        by_sig.setdefault(sig, []).append(Atom(sorted(units, key=lambda x: (order[x[0]], x[1], x[2]))))
    groups = []
    matmul_dims = {(x, d) for n in g.by_op("matmul") for x in n.inputs for d in range(len(n.shape) - 2)}
    for sig, members in by_sig.items():
        dims = list(sig)
        first = next(t for t, d in dims if (t, d) in produced)
        kind = "heads" if any(td in matmul_dims for td in dims) else "channels"
        prods = [(g.node(t).module, "rows") for t, d in dims if (t, d) in produced]
        cons = [(n.module, "cols") for n in g.by_op(*WEIGHT_OPS)
                if (n.inputs[0], 0 if n.op == "conv" else len(g.node(n.inputs[0]).shape) - 1) in sig
                and getattr(gm.module(n.module), "groups", 1) == 1]        # a depthwise conv's rows say it all
        norms = [t for t, d in dims if g.node(t).op == "batchnorm" and d == 0]
        members.sort(key=lambda a: a.units[0][2])
        groups.append(Group(f"{first}{'.heads' if kind == 'heads' else ''}", kind, members, dims,
                            list(dict.fromkeys(prods + cons)), norms))
    groups.sort(key=lambda gr: order[gr.name.removesuffix(".heads")])
    return groups


def explain(gm: GraphModel, groups: list[Group]) -> str:
    """A readable printout: each group, what one unit of it is, and every layer a cut touches."""
    g = gm.graph
    lines = []
    for gr in groups:
        layer = gr.producers[0][0]
        node = next(n for n in g.nodes if n.module == layer)
        d = 0 if node.op == "conv" else len(node.shape) - 1
        per = sum(1 for t, dd, _ in gr.atoms[0].units if t == node.name and dd == d)
        unit = gr.kind[:-1] if len(gr) == 1 else gr.kind
        lines.append(f"group {gr.name}: {len(gr)} {unit}" + (f" ({per} output channels of {layer} each)" if per > 1 else ""))
        for layer, how in gr.producers:
            lines.append(f"    {layer:32s} {'output channels (weight rows)' if how == 'rows' else 'input channels (weight columns)'}")
        touched = [t for t, d in gr.dims if g.node(t).op not in WEIGHT_OPS]
        if touched:
            lines.append(f"    also cut: {', '.join(dict.fromkeys(touched))}")
    return "\n".join(lines)
