"""LSQ+ fake quantizers (Bhalgat et al. 2020, arXiv:2004.09576) that compute exactly what the
integer program computes, following pqlr.primitives:

  * WeightQuant: per-output-channel symmetric, learnable step s_w (C_out,);
        w_hat = clamp(round(w / s_w), lo, hi) * s_w            (b = 8, 4, 2)
        w_hat = s_w * sign(w), sign(0) = +1                     (b = 1, binary)
  * ActQuant: per-tensor asymmetric, learnable step s and offset beta (real units);
        z = clamp(round(-beta / s), lo, hi)                     (an INTEGER zero point)
        q = clamp(round(x / s) + z, lo, hi);  x_hat = (q - z) * s
    16-bit activations are symmetric with z = 0 (beta is not learnt); a `fixed` quantizer
    (softmax output: s = 1/256, z = -128) learns nothing.

`round` is round-half-up, floor(u + 0.5), with a straight-through gradient (d round(u)/du := 1).
The step and offset gradients are scaled by g = 1 / sqrt(N * Q_p) (LSQ, section 2.2), N = number
of weights per output channel (weights) or of features per sample (activations). Initialisation
from calibration statistics is done by `init_from` / `finish_calibration` (min-max, percentile or MSE search).

compress/qmodel.py runs a quantized program with these quantizers (fake quantization).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .. import primitives as P

SOFTMAX_QPARAMS = {8: (1.0 / 256.0, -128), 16: (1.0 / 32768.0, 0)}   # softmax output, fixed (ir.ops_tf)
MIN_STEP = 1e-8                          # steps never reach zero or go negative during QAT


def round_ste(u: torch.Tensor) -> torch.Tensor:
    """floor(u + 0.5) forward, identity backward."""
    if not (torch.is_grad_enabled() and u.requires_grad):
        return torch.floor(u + 0.5)
    return u + (torch.floor(u + 0.5) - u).detach()


def grad_scale(x: torch.Tensor, g: float) -> torch.Tensor:
    """Value x, gradient multiplied by g."""
    return (x - x * g).detach() + x * g


def sign_ste(w: torch.Tensor) -> torch.Tensor:
    """+1 for w >= 0, -1 otherwise (primitives.quantize_weight, 1 bit); straight-through inside |w| <= 1."""
    s = torch.where(w >= 0, torch.ones_like(w), -torch.ones_like(w))
    w_c = w.clamp(-1.0, 1.0)
    return w_c + (s - w_c).detach()


class WeightQuant(nn.Module):
    """Per-channel symmetric weight fake-quantizer; weight tensors are (C_out, ...)."""

    def __init__(self, c_out: int, bits: int):
        super().__init__()
        self.bits = bits
        self.lo, self.hi = P.weight_range(bits)
        self.scale = nn.Parameter(torch.ones(c_out))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        per = w[0].numel()
        shape = (-1,) + (1,) * (w.dim() - 1)
        if self.bits == 1:
            s = grad_scale(self.scale, 1.0 / math.sqrt(per)).clamp(min=MIN_STEP).view(shape)
            return s * sign_ste(w / s.detach())
        s = grad_scale(self.scale, 1.0 / math.sqrt(per * self.hi)).clamp(min=MIN_STEP).view(shape)
        return torch.clamp(round_ste(w / s), self.lo, self.hi) * s

    def integer(self, w: torch.Tensor) -> np.ndarray:
        """The deployed integer weights (primitives.quantize_weight), (C_out, ...) int8."""
        return P.quantize_weight(w.detach().double().numpy(), self.scale.detach().double().numpy(), self.bits)

    @torch.no_grad()
    def init_from(self, w: torch.Tensor, method: str, percentile: float = 99.99) -> None:
        """Per-channel step from the weights: min-max, percentile of |w|, or MSE-optimal."""
        a = w.detach().reshape(w.shape[0], -1).abs().double()
        if self.bits == 1:                               # L2-optimal binary scale (XNOR-Net): mean |w|
            s = a.mean(dim=1)
        elif method == "percentile":
            s = torch.quantile(a, percentile / 100.0, dim=1) / self.hi
        else:
            s = a.amax(dim=1) / self.hi
            if method == "mse":
                s = _mse_search_weight(a, s, self.lo, self.hi)
        self.scale.copy_(torch.clamp(s, min=1e-8).float())


def _mse_search_weight(a: torch.Tensor, s0: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Per-row step in {alpha * s0} (alpha in [0.2, 1]) minimising || w - q(w) ||^2 (|w| suffices by symmetry up to lo)."""
    best, best_err = s0.clone(), torch.full_like(s0, float("inf"))
    for alpha in np.linspace(0.2, 1.0, 41):
        s = (s0 * alpha).clamp(min=1e-12)[:, None]
        for sign in (1.0, -1.0):                          # both halves of the asymmetric integer range
            q = torch.clamp(torch.floor(sign * a / s + 0.5), lo, hi) * s * sign
            err = ((q - a) ** 2).sum(dim=1)
            better = err < best_err
            best_err = torch.where(better, err, best_err)
            best = torch.where(better, s[:, 0], best)
    return best


@torch.no_grad()
def _fit_bias(wq: "WeightQuant", bias: torch.Tensor, s_in) -> None:
    """Raise a channel's weight step where its bias would not fit int32 at s_in * s_w (|q_b| <= 2^30,
    half the int32 range, leaves room for the accumulated products). Happens for channels whose
    weights were driven to ~0 (pruned-away BatchNorm gammas) and with 16-bit activations' small s_in."""
    s_in = float(s_in.detach()) if isinstance(s_in, torch.Tensor) else float(s_in)
    floor = bias.detach().abs().double() / (s_in * 2.0**30)
    low = wq.scale.detach().double() < floor
    if bool(low.any()):
        wq.scale.data = torch.where(low, floor, wq.scale.detach().double()).to(wq.scale.dtype)


class ActQuant(nn.Module):
    """Per-tensor asymmetric activation fake-quantizer with learnable step and offset (LSQ+)."""

    def __init__(self, bits: int, fixed: tuple[float, int] | None = None):
        super().__init__()
        self.bits = bits
        self.lo, self.hi = P.act_range(bits)
        self.fixed = fixed
        s0, z0 = fixed if fixed else (1.0, 0)
        self.scale = nn.Parameter(torch.tensor(float(s0)), requires_grad=fixed is None)
        self.beta = nn.Parameter(torch.tensor(-float(z0) * s0), requires_grad=fixed is None and bits != 16)
        self.register_buffer("lo_seen", torch.tensor(float("inf")))
        self.register_buffer("hi_seen", torch.tensor(float("-inf")))
        self.samples: list[torch.Tensor] = []            # calibration values (percentile / mse init)
        self.observing = False

    def start_observing(self) -> None:
        self.lo_seen.fill_(float("inf"))
        self.hi_seen.fill_(float("-inf"))
        self.samples = []
        self.observing = True

    def zero_point_ste(self, s: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        if self.bits == 16:
            return torch.zeros_like(s)
        return torch.clamp(round_ste(-beta / s), self.lo, self.hi)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            self.lo_seen.fill_(min(float(self.lo_seen), float(x.min())))
            self.hi_seen.fill_(max(float(self.hi_seen), float(x.max())))
            self.samples.append(x.detach().flatten()[::max(1, x.numel() // 20000)].clone())
            return x
        g = 1.0 / math.sqrt(max(1, x[0].numel()) * self.hi)
        s = grad_scale(self.scale, g).clamp(min=MIN_STEP) if self.fixed is None else self.scale.detach()
        beta = grad_scale(self.beta, g) if self.fixed is None else self.beta.detach()
        z = self.zero_point_ste(s, beta)
        q = torch.clamp(round_ste(x / s) + z, self.lo, self.hi)
        return (q - z) * s

    def qparams(self) -> tuple[float, int]:
        """(scale, integer zero point) exactly as the forward uses them."""
        s = max(float(self.scale.detach()), MIN_STEP)
        if self.bits == 16:
            return s, 0
        z = float(np.clip(np.floor(-float(self.beta.detach()) / s + 0.5), self.lo, self.hi))
        return s, int(z)

    @torch.no_grad()
    def finish_calibration(self, method: str, percentile: float = 99.99) -> None:
        """Step and offset from the observed values; ends observation."""
        self.observing = False
        if self.fixed is not None:
            self.samples = []
            return
        if not math.isfinite(float(self.lo_seen)):
            raise RuntimeError("activation quantizer saw no calibration data")
        lo, hi = float(self.lo_seen), float(self.hi_seen)
        vals = torch.cat(self.samples).double() if self.samples else None
        if method == "percentile" and vals is not None and vals.numel() > 1:
            q = torch.quantile(vals, torch.tensor([1 - percentile / 100.0, percentile / 100.0], dtype=vals.dtype))
            lo, hi = float(q[0]), float(q[1])
        s, z = P.choose_act_qparams(lo, hi, self.bits)
        if method == "mse" and vals is not None:
            s, z = _mse_search_act(vals.numpy(), lo, hi, self.bits, s, z)
        self.scale.copy_(torch.tensor(s))
        self.beta.copy_(torch.tensor(-z * s))
        self.samples = []


def _mse_search_act(v: np.ndarray, lo: float, hi: float, bits: int, s: float, z: int) -> tuple[float, int]:
    """Shrink the [lo, hi] range by alpha in [0.3, 1] and keep the qparams with the least MSE."""
    best, best_err = (s, z), float("inf")
    for alpha in np.linspace(0.3, 1.0, 36):
        s_a, z_a = P.choose_act_qparams(lo * alpha, hi * alpha, bits)
        err = float(np.mean((P.dequantize(P.quantize_act(v, s_a, z_a, bits), s_a, z_a) - v) ** 2))
        if err < best_err:
            best, best_err = (s_a, z_a), err
    return best
