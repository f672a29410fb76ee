"""Low-rank factorization: W (m x n) ~ U_r (m x r) . V_r (r x n) by truncated SVD, for Linear
layers and 1x1 convolutions. A layer is skipped (and the summary says so) when the factors
would not save deployed bytes: each output channel of a deployed layer costs its packed weight row
plus an int32 bias, an int32 multiplier and an int8 shift, and the factorized form has r + m such
channels instead of m (`deployed_bytes`).

`decide` (choose_rank: fixed rank or the smallest rank keeping an energy fraction of the
squared singular values) is kept apart from `do` (factorize)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import PqlrError
from ..primitives import packed_row_bytes

CHANNEL_BYTES = 4 + 4 + 1      # per output channel as deployed: int32 bias, int32 multiplier, int8 shift


@dataclass(frozen=True)
class LowRankConfig:
    rank: int | None = 16           # fixed rank, or None to use `energy`
    energy: float | None = None     # keep this fraction of sum(sigma^2), e.g. 0.9
    include: tuple[str, ...] = ()   # module-name substrings to factorize (empty = every eligible layer)
    exclude: tuple[str, ...] = ()

    def __post_init__(self):
        if self.rank is None and self.energy is None:
            raise PqlrError("low-rank needs --rank or an energy threshold")
        if self.rank is not None and self.rank < 1:
            raise PqlrError(f"--rank must be >= 1, got {self.rank}")
        if self.energy is not None and not 0.0 < self.energy <= 1.0:
            raise PqlrError(f"low-rank energy must be in (0, 1], got {self.energy}")
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))


class LowRankLinear(nn.Module):
    """y = second(first(x)): first = Linear(n -> r, no bias), second = Linear(r -> m, bias)."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features, self.rank = in_features, out_features, rank
        self.first = nn.Linear(in_features, rank, bias=False)
        self.second = nn.Linear(rank, out_features, bias=bias)

    def forward(self, x):
        return self.second(self.first(x))


class LowRankConv1x1(nn.Module):
    """A 1x1 convolution as two 1x1 convolutions through `rank` channels."""

    def __init__(self, in_channels: int, out_channels: int, rank: int, bias: bool = True):
        super().__init__()
        self.rank = rank
        self.first = nn.Conv2d(in_channels, rank, 1, bias=False)
        self.second = nn.Conv2d(rank, out_channels, 1, bias=bias)

    def forward(self, x):
        return self.second(self.first(x))


def _matrix(m: nn.Module) -> torch.Tensor | None:
    if isinstance(m, nn.Linear):
        return m.weight.detach()
    if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.groups == 1 and m.stride == (1, 1):
        return m.weight.detach()[:, :, 0, 0]
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


def apply(model: nn.Module, cfg: LowRankConfig, wbits: int = 8) -> tuple[nn.Module, list[dict]]:
    """Replace eligible layers in place; returns (model, per-layer summary incl. skipped ones).
    `wbits` is the weight bit-width the layers will be deployed at (it decides what saves bytes)."""
    summary = []
    for name, m in list(model.named_modules()):
        w = _matrix(m)
        if w is None or (cfg.include and not any(s in name for s in cfg.include)) or any(s in name for s in cfg.exclude):
            continue
        out_f, in_f = w.shape
        r = choose_rank(w, cfg)
        before, after = deployed_bytes(out_f, in_f, wbits), deployed_bytes(out_f, in_f, wbits, r)
        row = {"layer": name, "shape": [out_f, in_f], "rank": r, "params_before": out_f * in_f,
               "params_after": r * (out_f + in_f), "bytes_before": before, "bytes_after": after}
        if after >= before:
            row.update(action="skipped", reason=f"rank {r} saves no bytes on a {out_f}x{in_f} layer "
                                                f"at {wbits}-bit ({before:,} B -> {after:,} B)")
            summary.append(row)
            continue
        a, b = factorize(w, r)
        has_bias = m.bias is not None
        if isinstance(m, nn.Linear):
            new = LowRankLinear(in_f, out_f, r, bias=has_bias)
            new.first.weight.data.copy_(b)
            new.second.weight.data.copy_(a)
        else:
            new = LowRankConv1x1(in_f, out_f, r, bias=has_bias)
            new.first.weight.data.copy_(b[:, :, None, None])
            new.second.weight.data.copy_(a[:, :, None, None])
        if has_bias:
            new.second.bias.data.copy_(m.bias.detach())
        rel = (torch.linalg.matrix_norm(w - a @ b) / torch.linalg.matrix_norm(w)).item()
        row.update(action="factorized", rel_error=rel)
        summary.append(row)
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    return model, summary


def restructure(model: nn.Module, summary: list[dict]) -> nn.Module:
    """Rebuild the factorized structure recorded in `summary` (weights to be loaded afterwards)."""
    for row in summary:
        if row["action"] != "factorized":
            continue
        m = model.get_submodule(row["layer"])
        out_f, in_f = row["shape"]
        bias = m.bias is not None
        new = (LowRankLinear(in_f, out_f, row["rank"], bias) if isinstance(m, nn.Linear)
               else LowRankConv1x1(in_f, out_f, row["rank"], bias))
        parent_name, _, child = row["layer"].rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    return model
