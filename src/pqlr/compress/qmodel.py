"""QuantModel: a captured model's quantized program (compress/program.py) run in PyTorch with LSQ+
fake quantizers (compress/qmodules.py) -- what QAT trains and PTQ calibrates.

RUN maps each step kind to its float semantics (PyTorch order, batch first); the quantizer of the
step's output tensor follows. What the integer kernels compute is simulated exactly where it can
be: weights per channel at their bit-width, biases rounded (STE) to int32 at s_in * s_w, a
standalone BatchNorm as its deployed per-channel affine (8-bit symmetric per-channel scale, which is
exact for one value per channel, and an int32 shift), LayerNorm gammas per-channel int8/int16, pad
values at the input's quantization, fused ReLU/ReLU6 as the output clamp. `freeze` (quantize_
step="convert") stores the deployed integer weights and biases as buffers; the frozen forward uses
exactly those.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import primitives as P
from ..capture import GraphModel
from ..capture.module import FLOAT, act_fn
from ..errors import PqlrError
from .program import Program, QOp
from .qmodules import MIN_STEP, SOFTMAX_QPARAMS, ActQuant, WeightQuant, _fit_bias, round_ste

WIDEN = 128.0                            # s16 = s8 / 128: exact int8 -> int16, q16 = 128 (q8 - zp)
AFFINE_WBITS = 8                         # a standalone BatchNorm's per-channel scale (exact: one value per channel)


def _key(name: str) -> str:
    return name.replace(".", "/")                    # ModuleDict keys cannot contain "."


def _bufname(kind: str, layer: str) -> str:
    return f"{kind}__{layer.replace('.', '__').replace('/', '__')}"


class QuantModel(nn.Module):
    """The folded captured model + LSQ+ quantizers, run through its Program. forward: the model's input
    (B, *input_shape) -> its output (dequantized integer values)."""

    def __init__(self, model: GraphModel, program: Program, cfg):
        super().__init__()
        self.float_model = model
        self.program = program
        self.cfg = cfg
        unknown = sorted(set(cfg.per_layer_wbits or {}) - set(program.layers))
        if unknown:
            raise PqlrError(f"per_layer_wbits names unknown layers {unknown}; weight layers are {program.layers}")
        self.wq = nn.ModuleDict()
        for layer in program.layers:
            w = model.module(layer).weight
            self.wq[_key(layer)] = WeightQuant(w.shape[0], cfg.layer_bits(layer, program.layers))
        self.aq = nn.ModuleDict()
        for key, bits in program.quantizers.items():
            fixed = SOFTMAX_QPARAMS[bits] if program.fixed.get(key) == "softmax" else None
            self.aq[_key(key)] = ActQuant(bits, fixed)
        self.frozen = False
        self.calibrating = False
        self._nodes = {n.name: n for n in model.graph.nodes}      # the graph is fixed from here on

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.program.input_shape

    # ------------------------------------------------------------ accessors used by lower
    def layer(self, name: str) -> nn.Module:
        return self.float_model.module(name)

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

    def node(self, name: str):
        """The captured graph's node behind a program step."""
        return self._nodes[name]

    def const_value(self, op: QOp) -> torch.Tensor:
        return self.float_model.const(self.node(op.name))

    # ------------------------------------------------------------ fake-quant forward
    def quant(self, tensor: str, x: torch.Tensor) -> torch.Tensor:
        t = self.program.tensors[tensor]
        if t.quant != tensor:                        # widened copies and aliases
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

    def affine_terms(self, layer: str, s_in: float | None) -> tuple[torch.Tensor, torch.Tensor]:
        """A standalone BatchNorm (eval statistics) as y = scale[c] x + shift[c], shift rounded to the
        int32 accumulator step s_in * |scale[c]| / 127 (s_in None: float)."""
        bn = self.layer(layer)
        g = bn.weight if bn.affine else torch.ones_like(bn.running_var)
        beta = bn.bias if bn.affine else torch.zeros_like(bn.running_var)
        scale = g / torch.sqrt(bn.running_var + bn.eps)
        shift = beta - bn.running_mean * scale
        if s_in is None:
            return scale, shift
        step = (s_in * scale.detach().abs() / 127.0).clamp(min=1e-30)
        return scale, round_ste(shift / step) * step

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


# ---------------------------------------------------------------- torch semantics of each step
def _act(y: torch.Tensor, act) -> torch.Tensor:
    if not act:
        return y
    if act[0] == "relu":
        return F.relu(y)
    return torch.clamp(y, act[1], act[2])


def _padded(x: torch.Tensor, padding) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Asymmetric (before, after) padding per spatial dim: pad explicitly, conv with 0."""
    if all(b == a for b, a in padding):
        return x, tuple(b for b, _ in padding)
    flat = [v for b, a in reversed(padding) for v in (b, a)]
    return F.pad(x, flat), (0,) * len(padding)


def _conv(m: QuantModel, op: QOp, xs):
    mod = m.layer(op.layer)
    w, b = m.weights(op.layer)
    x, pad = _padded(xs[0], op.attrs["padding"])
    f = F.conv1d if op.attrs["dims"] == 1 else F.conv2d
    return _act(f(x, w, b, mod.stride, pad, mod.dilation, mod.groups), op.attrs.get("act"))


def _linear(m: QuantModel, op: QOp, xs):
    w, b = m.weights(op.layer)
    return _act(F.linear(xs[0], w, b), op.attrs.get("act"))


def _channel_view(t: torch.Tensor, rank: int) -> torch.Tensor:
    return t.view((1, -1) + (1,) * (rank - 2))      # channel = dim 1 of (B, C, ...)


def _affine(m: QuantModel, op: QOp, xs):
    x = xs[0]
    s_in = None if m.calibrating else m.qparams(op.inputs[0])[0]
    scale, shift = m.affine_terms(op.layer, s_in)
    return _act(x * _channel_view(scale, x.dim()) + _channel_view(shift, x.dim()), op.attrs.get("act"))


def _layernorm(m: QuantModel, op: QOp, xs):
    mod = m.layer(op.layer)
    g = mod.weight if mod.weight is not None else torch.ones(mod.normalized_shape)
    if not m.calibrating:                            # gamma as deployed: per-channel symmetric int8 / int16
        g_max = 32767.0 if m.program.tensors[op.output].bits == 16 else 127.0
        s_g = (g.detach().abs() / g_max).clamp(min=1e-12)
        g = round_ste(g / s_g) * s_g
    return _act(F.layer_norm(xs[0], mod.normalized_shape, g, mod.bias, mod.eps), op.attrs.get("act"))


def _prelu(m: QuantModel, op: QOp, xs):
    if op.layer:
        return F.prelu(xs[0], m.layer(op.layer).weight)
    return F.leaky_relu(xs[0], op.attrs["slope"])


def _pad(m: QuantModel, op: QOp, xs):
    value = float(op.attrs["value"])
    if not m.calibrating and value != 0.0:           # the integer pad writes value at the input's qparams
        s, z, bits = m.qparams(op.inputs[0])
        lo, hi = P.act_range(bits)
        value = (float(np.clip(np.floor(value / s + 0.5) + z, lo, hi)) - z) * s
    flat = [v for b, a in reversed(op.attrs["pads"]) for v in (b, a)]
    return F.pad(xs[0], flat, value=value)


def _pool(m: QuantModel, op: QOp, xs):
    return _act(FLOAT[op.kind](m.float_model, m.node(op.name), xs), op.attrs.get("act"))


RUN = {
    "input": lambda m, op, xs: xs[0],
    "conv": _conv,
    "linear": _linear,
    "affine": _affine,
    "layernorm": _layernorm,
    "prelu": _prelu,
    "lut": lambda m, op, xs: act_fn(xs[0], op.attrs),
    "clamp": lambda m, op, xs: _act(xs[0], op.attrs["act"]),
    "const": lambda m, op, xs: m.const_value(op),
    "add": lambda m, op, xs: _act(xs[0] + xs[1], op.attrs.get("act")),
    "sub": lambda m, op, xs: _act(xs[0] - xs[1], op.attrs.get("act")),
    "mul": lambda m, op, xs: _act(xs[0] * xs[1], op.attrs.get("act")),
    "scale": lambda m, op, xs: _act(xs[0] * op.attrs["factor"], op.attrs.get("act")),
    "cat": lambda m, op, xs: torch.cat(xs, dim=op.attrs["dim"] + 1),
    "slice": lambda m, op, xs: xs[0][(slice(None),) + tuple(slice(b, e, s) for b, e, s in
                                                           zip(op.attrs["begin"], op.attrs["end"], op.attrs["step"]))],
    "reshape": lambda m, op, xs: xs[0].reshape(xs[0].shape[0], *m.program.tensors[op.output].shape),
    "permute": lambda m, op, xs: xs[0].permute(0, *[p + 1 for p in op.attrs["perm"]]),
    "pad": _pad,
    "maxpool": _pool, "adaptive_maxpool": _pool, "avgpool": _pool, "adaptive_avgpool": _pool, "mean": _pool,
    "softmax": lambda m, op, xs: torch.softmax(xs[0], dim=op.attrs["dim"] + 1),
    "matmul": lambda m, op, xs: _act(torch.matmul(xs[0], xs[1]) * op.attrs.get("alpha", 1.0), op.attrs.get("act")),
    "widen": lambda m, op, xs: xs[0],
}
