"""Mixed precision: per-layer weight bit-widths under a flash budget.

decide:  `sensitivity(model_q, calib, bits)` -> {layer: {bits: SQNR dB}}: the SQNR of the model's
         logits against the float (BN-folded) model when only that layer's weights change to
         `bits` (everything else as configured in model_q);
         `choose_bits(sensitivity, weight_counts, flash_budget_bytes)` -> {layer: bits}: the least
         total SQNR loss (dB below each layer's best) whose packed weights fit (a small knapsack).
do:      pass the choice as QuantConfig(per_layer_wbits=...) to quantize_.

Bytes are packed weight bytes (primitives.packed_row_bytes per output-channel row); biases,
multipliers and tables do not depend on the bit-width and are not counted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch

from .. import primitives as P
from ..errors import BudgetError, PqlrError


@dataclass(frozen=True)
class MixedConfig:
    flash: int                                   # packed weight bytes allowed
    candidates: tuple[int, ...] = (8, 4, 2, 1)

    def __post_init__(self):
        object.__setattr__(self, "candidates", tuple(sorted({int(b) for b in self.candidates}, reverse=True)))
        if self.flash <= 0:
            raise PqlrError(f"flash budget must be positive, got {self.flash}")
        bad = [b for b in self.candidates if b not in P.WEIGHT_BITS]
        if bad or not self.candidates:
            raise PqlrError(f"mixed-precision candidates {bad or '()'} not in {P.WEIGHT_BITS}")


def _sqnr_db(ref: torch.Tensor, y: torch.Tensor) -> float:
    noise = float(((ref - y) ** 2).sum())
    return float("inf") if noise == 0 else 10.0 * float(np.log10(float((ref ** 2).sum()) / noise))


def _calib_tensor(calib: Iterable, limit: int = 128) -> torch.Tensor:
    xs, n = [], 0
    for batch in calib:
        x = torch.as_tensor(batch[0] if isinstance(batch, (tuple, list)) else batch).float()
        xs.append(x)
        n += x.shape[0]
        if n >= limit:
            break
    if not xs:
        raise PqlrError("sensitivity needs calibration batches, got none")
    return torch.cat(xs)[:limit]


@torch.no_grad()
def sensitivity(model_q, calib: Iterable, bits=(8, 4, 2, 1), limit: int = 128) -> dict[str, dict[int, float]]:
    """{layer: {bits: SQNR dB of the logits vs the float model}} with only that layer at `bits`."""
    x = _calib_tensor(calib, limit)
    was_training = model_q.training
    model_q.eval()
    with model_q.float_mode():
        ref = model_q(x)
    out: dict[str, dict[int, float]] = {}
    for layer in model_q.program.layers:
        keep = model_q.wquant(layer)
        out[layer] = {}
        for b in bits:
            model_q.set_wbits(layer, b)
            out[layer][b] = _sqnr_db(ref, model_q(x))
        model_q.wq[layer.replace(".", "/")] = keep
    model_q.train(was_training)
    return out


def weight_counts(model_q) -> dict[str, tuple[int, int]]:
    """{layer: (C_out, K)} of every weight layer (K = weights per output-channel row)."""
    return {layer: (int(w.shape[0]), int(w[0].numel()))
            for layer in model_q.program.layers for w in [model_q.layer(layer).weight]}


def _bytes(count, bits: int) -> int:
    if isinstance(count, (tuple, list)):
        c_out, k = count
        return int(c_out) * P.packed_row_bytes(int(k), bits)
    return (int(count) * bits + 7) // 8


def choose_bits(sens: dict[str, dict[int, float]], weight_counts: dict, flash_budget_bytes: int,
                candidates=None) -> dict[str, int]:
    """Least total SQNR loss (dB below each layer's best) whose packed weights fit the budget: a
    multiple-choice knapsack solved by dynamic programming over bytes (in units of
    ceil(budget / 20000) bytes, sizes rounded up, so the result always fits).
    BudgetError (with the minimum) when even the lowest bit-widths do not fit."""
    layers = list(sens)
    missing = [l for l in layers if l not in weight_counts]
    if missing:
        raise PqlrError(f"no weight count for layers {missing}")
    cands = {l: sorted(set(candidates or sens[l]) & set(sens[l]), reverse=True) for l in layers}
    minimum = sum(_bytes(weight_counts[l], cands[l][-1]) for l in layers)
    if minimum > flash_budget_bytes:
        raise BudgetError(f"weights need at least {minimum} bytes at {min(min(c) for c in cands.values())} bit; "
                          f"flash budget is {flash_budget_bytes}")
    unit = max(1, -(-int(flash_budget_bytes) // 20000))
    cap = int(flash_budget_bytes) // unit
    cost = np.zeros(cap + 1)                           # least loss using <= b units, layers so far
    picks = []
    for l in layers:
        best = max(sens[l][b] for b in cands[l])
        new, pick = np.full(cap + 1, np.inf), np.zeros(cap + 1, dtype=np.int8)
        for i, b in enumerate(cands[l]):
            size = -(-_bytes(weight_counts[l], b) // unit)
            if size > cap:
                continue
            cand = np.full(cap + 1, np.inf)
            cand[size:] = cost[: cap + 1 - size] + max(0.0, best - sens[l][b])
            better = cand < new
            new[better], pick[better] = cand[better], i
        cost = new
        picks.append(pick)
    if not np.isfinite(cost[cap]):                     # only possible through the unit rounding
        raise BudgetError(f"weights need about {minimum} bytes; flash budget {flash_budget_bytes} is too tight")
    choice, b = {}, cap
    for l, pick in zip(reversed(layers), reversed(picks)):
        bits = cands[l][pick[b]]
        choice[l] = bits
        b -= -(-_bytes(weight_counts[l], bits) // unit)
    return {l: choice[l] for l in layers}


def plan_mixed(model_q, calib: Iterable, cfg: MixedConfig) -> tuple[dict[str, int], list[dict]]:
    """Sensitivity + choice + the per-layer report table (list of dicts)."""
    sens = sensitivity(model_q, calib, cfg.candidates)
    counts = weight_counts(model_q)
    choice = choose_bits(sens, counts, cfg.flash, cfg.candidates)
    table = [{"layer": l, "weights": counts[l][0] * counts[l][1], "bits": choice[l],
              "bytes": _bytes(counts[l], choice[l]), "sqnr_db": round(sens[l][choice[l]], 2),
              "loss_db": round(max(sens[l].values()) - sens[l][choice[l]], 2)} for l in sens]
    return choice, table
