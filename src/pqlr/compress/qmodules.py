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

`QuantModel` (bottom) runs a quantized `Program` (compress.quantize) in torch: RUN maps each
QOp kind to its float semantics; the quantizer of the op's output tensor follows. Biases are
rounded (STE) to int32 at s_in * s_w; LayerNorm gammas to per-channel int8 (as ir.ops_tf deploys
them). `freeze` (quantize_ step="convert") stores the deployed integers as buffers
w_int__<layer> (int8) and b_int__<layer> (int32); the frozen forward uses exactly those.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import primitives as P
from ..errors import PqlrError

SOFTMAX_QPARAMS = {8: (1.0 / 256.0, -128), 16: (1.0 / 32768.0, 0)}   # softmax output, fixed (ir.ops_tf)
WIDEN = 128.0                            # s16 = s8 / 128: exact int8 -> int16, q16 = 128 (q8 - zp)
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


def _key(name: str) -> str:
    return name.replace(".", "/")                    # ModuleDict keys cannot contain "."


def _bufname(kind: str, layer: str) -> str:
    return f"{kind}__{layer.replace('.', '__')}"     # flat buffer names: w_int__blocks__0__dw


class QuantModel(nn.Module):
    """The folded float model + LSQ+ quantizers, run through its Program (fake quantization).

    forward: (B, 1, frames, feats) features -> (B, n_classes) logits (dequantized int logits)."""

    def __init__(self, model: nn.Module, program: Program, cfg: QuantConfig):
        super().__init__()
        self.float_model = model
        self.program = program
        self.cfg = cfg
        self.config = getattr(model, "config", None)
        unknown = sorted(set(cfg.per_layer_wbits or {}) - set(program.layers))
        if unknown:
            raise PqlrError(f"per_layer_wbits names unknown layers {unknown}; weight layers are {program.layers}")
        self.wq = nn.ModuleDict()
        for layer in program.layers:
            w = model.get_submodule(layer).weight
            self.wq[_key(layer)] = WeightQuant(w.shape[0], cfg.layer_bits(layer, program.layers))
        self.aq = nn.ModuleDict()
        for key, bits in program.quantizers.items():
            fixed = SOFTMAX_QPARAMS[bits] if program.fixed.get(key) == "softmax" else None
            self.aq[_key(key)] = ActQuant(bits, fixed)
        self.frozen = False
        self.calibrating = False

    # ------------------------------------------------------------ accessors used by ir.lower
    def layer(self, name: str) -> nn.Module:
        return self.float_model.get_submodule(name)

    def wquant(self, layer: str) -> WeightQuant:
        return self.wq[_key(layer)]

    def act(self, key: str) -> ActQuant:
        return self.aq[_key(key)]

    def qparams(self, tensor: str) -> tuple[float, int, int]:
        """(scale, zero point, bits) of a program tensor, exactly as the forward uses them."""
        t = self.program.tensors[tensor]
        if t.widen_of is not None:
            s, _, _ = self.qparams(t.widen_of)
            return s / WIDEN, 0, 16
        s, z = self.act(t.quant).qparams()
        return s, z, t.bits

    def set_wbits(self, layer: str, bits: int, init: str | None = None) -> None:
        """Change one layer's weight bit-width (mixed precision) and re-initialise its step."""
        if self.frozen:
            raise PqlrError("cannot change bit-widths of a converted model")
        wq = WeightQuant(self.layer(layer).weight.shape[0], bits)
        wq.init_from(self.layer(layer).weight, init or self.cfg.init, self.cfg.percentile)
        self.wq[_key(layer)] = wq

    def weight_bits(self) -> dict[str, int]:
        return {layer: self.wquant(layer).bits for layer in self.program.layers}

    # ------------------------------------------------------------ fake-quant forward
    def quant(self, tensor: str, x: torch.Tensor) -> torch.Tensor:
        t = self.program.tensors[tensor]
        if t.quant != tensor:                        # widened copies and reshape/transpose aliases
            return x
        return self.aquant(t.quant, x)

    def aquant(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Fake-quantize with quantizer `key`; float pass-through in calibration / float mode."""
        q = self.act(key)
        if self.calibrating and not q.observing:
            return x
        return q(x)

    @contextmanager
    def float_mode(self):
        """Run the float (BN-folded) model through the same program: no quantization at all."""
        old, self.calibrating = self.calibrating, True
        try:
            yield self
        finally:
            self.calibrating = old

    def weights(self, layer: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Fake-quantized (weight, bias) of a conv/linear; bias in the accumulator scale s_in * s_w."""
        mod, wq = self.layer(layer), self.wquant(layer)
        if self.calibrating:
            return mod.weight, mod.bias
        s_in = self.qparams(self.program.layer_input[layer])[0]
        s_w = wq.scale.detach() if self.frozen else wq.scale
        if self.frozen:
            w = self._ibuf("w_int", layer).float() * s_w.view((-1,) + (1,) * (mod.weight.dim() - 1))
            b = self._ibuf("b_int", layer).double() * s_in * s_w.double()
            return w, b.float()
        if mod.bias is not None:
            _fit_bias(wq, mod.bias, s_in)
        w = wq(mod.weight)
        if mod.bias is None:
            return w, None
        acc_scale = s_in * s_w
        return w, round_ste(mod.bias / acc_scale) * acc_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {}
        for op in self.program.ops:
            env[op.output] = self.quant(op.output, RUN[op.kind](self, op, [env[i] for i in op.inputs] or [x]))
        return env[self.program.output]

    # ------------------------------------------------------------ calibration and freezing
    @torch.no_grad()
    def calibrate(self, batches: Iterable, limit: int, method: str, percentile: float) -> int:
        for layer in self.program.layers:
            self.wquant(layer).init_from(self.layer(layer).weight, method, percentile)
        was_training = self.training
        self.eval()
        self.calibrating = True
        for q in self.aq.values():
            q.start_observing()
        seen = 0
        try:
            for batch in batches:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                x = torch.as_tensor(x)[: limit - seen]
                self(x.float())
                seen += x.shape[0]
                if seen >= limit:
                    break
        finally:
            self.calibrating = False
            for q in self.aq.values():
                q.observing = False
        if seen == 0:
            raise PqlrError("quantization needs calibration batches, got none")
        for q in self.aq.values():
            q.finish_calibration(method, percentile)
        self.train(was_training)
        return seen

    @torch.no_grad()
    def freeze(self) -> None:
        """Fix integer weights (primitives.quantize_weight) and int32 biases; stop all learning."""
        for layer in self.program.layers:
            mod, wq = self.layer(layer), self.wquant(layer)
            wq.scale.clamp_(min=MIN_STEP)
            s_in = self.qparams(self.program.layer_input[layer])[0]
            if mod.bias is not None:
                _fit_bias(wq, mod.bias, s_in)
            w_int = wq.integer(mod.weight)
            b = mod.bias.detach().double().numpy() if mod.bias is not None else np.zeros(w_int.shape[0])
            b_int = P.quantize_bias(b, s_in, wq.scale.detach().double().numpy())
            self.register_buffer(_bufname("w_int", layer), torch.from_numpy(w_int.copy()))
            self.register_buffer(_bufname("b_int", layer), torch.from_numpy(b_int.astype(np.int64)))
        for p in self.parameters():
            p.requires_grad_(False)
        self.frozen = True
        self.eval()

    def _ibuf(self, kind: str, layer: str) -> torch.Tensor:
        return getattr(self, _bufname(kind, layer))

    def integer_layer(self, layer: str) -> tuple[np.ndarray, np.ndarray]:
        """(int weights (C_out, ...) int8 in the torch layout, int32 bias (C_out,)) of a converted layer."""
        if not self.frozen:
            raise PqlrError("lowering needs a converted model: call quantize_(model, cfg, step='convert')")
        return (self._ibuf("w_int", layer).numpy().astype(np.int8),
                self._ibuf("b_int", layer).numpy().astype(np.int32))


# ---------------------------------------------------------------- torch semantics of each QOp
def _conv(m: QuantModel, op: QOp, xs):
    mod = m.layer(op.layer)
    w, b = m.weights(op.layer)
    y = F.conv2d(xs[0], w, b, mod.stride, mod.padding, 1, mod.groups)
    return F.relu(y) if op.attrs.get("relu") else y


def _linear(m: QuantModel, op: QOp, xs):
    w, b = m.weights(op.layer)
    y = F.linear(xs[0], w, b)
    return F.relu(y) if op.attrs.get("relu") else y


def _embed_patch(m: QuantModel, op: QOp, xs):       # (B, 1, F, f) -> (B, T, p * f) -> linear (B, T, 1, D)
    x, (t, p) = xs[0], (op.attrs["tokens"], op.attrs["patch"])
    return _linear(m, op, [x[:, 0, : t * p, :].reshape(x.shape[0], t, -1)]).unsqueeze(2)   # (B, T, 1, D)


def _layernorm(m: QuantModel, op: QOp, xs):
    mod = m.layer(op.layer)
    g = mod.weight
    if not m.calibrating:                            # gamma as deployed: per-channel symmetric int8 / int16
        g_max = 32767.0 if m.program.tensors[op.output].bits == 16 else 127.0
        s_g = (g.detach().abs() / g_max).clamp(min=1e-12)
        g = round_ste(g / s_g) * s_g
    return F.layer_norm(xs[0], mod.normalized_shape, g, mod.bias, mod.eps)


def _pos_add(m: QuantModel, op: QOp, xs):
    table = m.float_model.get_parameter(op.layer)[0]           # (T, D), its own int8 qparams
    return xs[0] + m.aquant(op.attrs["table_quant"], table)


def _matmul(m: QuantModel, op: QOp, xs):
    return torch.matmul(xs[0], xs[1]) * op.attrs.get("alpha", 1.0)


RUN = {
    "input": lambda m, op, xs: xs[0],
    "conv": _conv,
    "linear": _linear,
    "embed_patch": _embed_patch,
    "global_avgpool": lambda m, op, xs: xs[0].mean(dim=(2, 3)),       # (B, C, H, W) -> (B, C)
    "mean_tokens": lambda m, op, xs: xs[0].mean(dim=1),               # (B, T, C) -> (B, C)
    "add": lambda m, op, xs: xs[0] + xs[1],
    "pos_add": _pos_add,
    "layernorm": _layernorm,
    "softmax": lambda m, op, xs: torch.softmax(xs[0], dim=-1),
    "gelu": lambda m, op, xs: F.gelu(xs[0]),
    "matmul": _matmul,
    "reshape": lambda m, op, xs: xs[0].reshape((xs[0].shape[0],) + tuple(op.attrs["new_shape"])),
    "transpose": lambda m, op, xs: xs[0].permute(0, *[p + 1 for p in op.attrs["perm"]]),
    "widen": lambda m, op, xs: xs[0],
}


