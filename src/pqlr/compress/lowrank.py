"""Low-rank factorization, a pass on the captured graph: W (m x n) ~ U_r (m x r) . V_r (r x n) by
truncated SVD, for every Linear and every kernel-1 Conv1d/Conv2d (ungrouped, unpadded); the layer
becomes two layers of its own kind (`<path>.first`: n -> r, no bias, carrying the stride;
`<path>.second`: r -> m with the bias). A layer is skipped (and the summary says so) when the factors
would not save deployed bytes: each output channel of a deployed layer costs its packed weight row
plus an int32 bias, an int32 multiplier and an int8 shift, and the factorized form has r + m such
channels instead of m (`deployed_bytes`).

`decide` (choose_rank: fixed rank or the smallest rank keeping an energy fraction of the
squared singular values) is kept apart from `do` (factorize)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..capture import CNode, GraphModel
from ..errors import PqlrError
from ..primitives import packed_row_bytes

CHANNEL_BYTES = 4 + 4 + 1      # per output channel as deployed: int32 bias, int32 multiplier, int8 shift


@dataclass(frozen=True)
class LowRankConfig:
    rank: int | None = 16           # fixed rank, or None to use `energy`
    energy: float | None = None     # keep this fraction of sum(sigma^2), e.g. 0.9
    include: tuple[str, ...] = ()   # module-name substrings to factorize (empty = every eligible layer)
    exclude: tuple[str, ...] = ()
    keep: tuple[str, ...] = ()      # exact layer names left whole (e.g. the accuracy budget's choice)

    def __post_init__(self):
        if self.rank is None and self.energy is None:
            raise PqlrError("low-rank needs --rank or an energy threshold")
        if self.rank is not None and self.rank < 1:
            raise PqlrError(f"--rank must be >= 1, got {self.rank}")
        if self.energy is not None and not 0.0 < self.energy <= 1.0:
            raise PqlrError(f"low-rank energy must be in (0, 1], got {self.energy}")
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))
        object.__setattr__(self, "keep", tuple(self.keep))


def _matrix(gm: GraphModel, node) -> torch.Tensor | None:
    """The (out, in) matrix of a Linear or of a kernel-1, ungrouped, unpadded conv node (else None)."""
    if node.op not in ("linear", "conv") or sum(1 for n in gm.graph.nodes if n.module == node.module) != 1:
        return None
    m = gm.module(node.module)
    if isinstance(m, nn.Linear):
        return m.weight.detach()
    if set(m.kernel_size) == {1} and m.groups == 1 and all(p == (0, 0) for p in node.attrs["padding"]):
        return m.weight.detach().reshape(m.weight.shape[0], -1)
    return None


def choose_rank(w: torch.Tensor, cfg: LowRankConfig) -> int:
    if cfg.rank is not None:
        return min(cfg.rank, min(w.shape))
    s = torch.linalg.svdvals(w.double())
    cum = torch.cumsum(s**2, 0) / (s**2).sum()
    return int(torch.searchsorted(cum, torch.tensor(cfg.energy, dtype=cum.dtype)).item()) + 1


def deployed_bytes(out_f: int, in_f: int, wbits: int, rank: int | None = None) -> int:
    """Flash bytes of an (out_f x in_f) layer at `wbits`, or of its two rank-`rank` factors."""
    if rank is None:
        return out_f * (packed_row_bytes(in_f, wbits) + CHANNEL_BYTES)
    return deployed_bytes(rank, in_f, wbits) + deployed_bytes(out_f, rank, wbits)


def factorize(w: torch.Tensor, r: int) -> tuple[torch.Tensor, torch.Tensor]:
    """W (m, n) -> (U_r sqrt(S) (m, r), sqrt(S) V_r^T (r, n)): the best rank-r approximation."""
    U, S, Vh = torch.linalg.svd(w.double(), full_matrices=False)
    root = S[:r].sqrt()
    return (U[:, :r] * root).float(), (root[:, None] * Vh[:r]).float()


def _factor_modules(m: nn.Module, r: int) -> tuple[nn.Module, nn.Module]:
    """(first: in -> r, no bias; second: r -> out, with m's bias) of the same kind as m."""
    if isinstance(m, nn.Linear):
        return nn.Linear(m.in_features, r, bias=False), nn.Linear(r, m.out_features, bias=m.bias is not None)
    conv = type(m)
    first = conv(m.in_channels, r, 1, stride=m.stride, bias=False)
    return first, conv(r, m.out_channels, 1, bias=m.bias is not None)


@torch.no_grad()
def apply(gm: GraphModel, cfg: LowRankConfig, wbits: int = 8) -> tuple[GraphModel, list[dict]]:
    """Factorize eligible layers of a captured model in place: node N becomes N.first -> N.second
    (modules <path>.first / <path>.second). Returns (model, per-layer summary incl. skipped ones).
    `wbits` is the weight bit-width the layers will be deployed at (it decides what saves bytes)."""
    summary = []
    g = gm.graph
    for node in list(g.nodes):
        w = _matrix(gm, node)
        name = node.module
        if w is None or (cfg.include and not any(s in name for s in cfg.include)) or any(s in name for s in cfg.exclude):
            continue
        out_f, in_f = w.shape
        r = choose_rank(w, cfg)
        if name in cfg.keep:
            summary.append({"layer": name, "shape": [out_f, in_f], "rank": r, "action": "skipped",
                            "reason": "kept whole (asked for)"})
            continue
        before, after = deployed_bytes(out_f, in_f, wbits), deployed_bytes(out_f, in_f, wbits, r)
        row = {"layer": name, "shape": [out_f, in_f], "rank": r, "params_before": out_f * in_f,
               "params_after": r * (out_f + in_f), "bytes_before": before, "bytes_after": after}
        if after >= before:
            row.update(action="skipped", reason=f"rank {r} saves no bytes on a {out_f}x{in_f} layer "
                                                f"at {wbits}-bit ({before:,} B -> {after:,} B)")
            summary.append(row)
            continue
        m = gm.module(name)
        a, b = factorize(w, r)                              # (out, r), (r, in)
        first, second = _factor_modules(m, r)
        first.weight.copy_(b.reshape(first.weight.shape))
        second.weight.copy_(a.reshape(second.weight.shape))
        if m.bias is not None:
            second.bias.copy_(m.bias.detach())
        first.train(m.training), second.train(m.training)
        ch = 0 if node.op == "conv" else len(node.shape) - 1
        mid_shape = tuple(r if d == ch else s for d, s in enumerate(node.shape))
        n1 = CNode(g.unique_name(f"{node.name}.first"), node.op, node.inputs, mid_shape, f"{name}.first",
                   dict(node.attrs), node.source)
        n2 = CNode(g.unique_name(f"{node.name}.second"), node.op, [n1.name], node.shape, f"{name}.second",
                   {**node.attrs, "padding": tuple((0, 0) for _ in node.attrs["padding"])} if node.op == "conv"
                   else dict(node.attrs), node.source)
        gm.set_module(n1.module, first)
        gm.set_module(n2.module, second)
        g.insert_after(node.name, [n1, n2])
        g.replace_uses(node.name, n2.name)
        g.remove(node.name)
        gm.set_module(name, None)
        rel = (torch.linalg.matrix_norm(w - a @ b) / torch.linalg.matrix_norm(w)).item()
        row.update(action="factorized", rel_error=rel)
        summary.append(row)
    g.validate()
    return gm, summary
