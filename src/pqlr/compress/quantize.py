"""Quantization, torchao style: `quantize_(model, QuantConfig(...), step="prepare", calib=...)` folds
BatchNorm, walks the model into a small quantized program (`Program`: one `QOp` per integer op,
the same list `pqlr.ir.lower` turns into IR nodes, so fake-quant and lowering cannot drift), inserts
LSQ+ fake quantizers (qmodules) and initialises them from calibration batches; the result trains
with the normal loop (QAT) or is used as is (method="ptq"). `step="convert"` freezes it: integer
weights and biases are fixed (primitives), activation qparams stop learning.

Where activation quantizers sit (each one is an IR tensor's qparams): the model input, after
each conv / linear (ReLU fused as the clamp), add, pooling / mean, LayerNorm, softmax (fixed
1/256, zp -128; s16: 1/32768, zp 0), GELU, Q/K/V, the two attention matmuls and the positional
add. Reshapes and transposes keep their input's qparams. With 16-bit activations every op runs
on s16; the int8 input features enter through an exact widening (scale / 128, zp 0:
q16 = 128 (q8 - zp), no rounding).
The model input is int8 features; the classifier output is at least 8 bit (4-bit logits tie).
Dropout is left out of the program (QAT fine-tunes without it).

Supported: DS-CNN and nn.Sequential CNNs (Conv2d incl. depthwise, folded BN, ReLU, global
average pooling, Flatten, Linear), KWSTransformer (mean pooling, pre- or post-LN), and low-rank
layers (compress.lowrank: two layers with a quantizer between). Anything else raises
UnsupportedError naming the layer and its type.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from torch import nn

from .. import primitives as P
from ..errors import PqlrError, UnsupportedError
from .fold import fold_bn
from .qmodules import QuantModel

__all__ = ["QuantConfig", "QuantModel", "quantize_", "Program", "QOp", "build_program"]

INIT_METHODS = ("minmax", "percentile", "mse")


@dataclass(frozen=True)
class QuantConfig:
    wbits: int = 8                                   # 8, 4, 2 or 1 (binary)
    abits: int = 8                                   # 8, 4 or 16
    method: str = "lsq+"                             # "lsq+" (QAT-ready) or "ptq" (calibration only)
    calib: int = 200                                 # calibration utterances
    init: str = "mse"                                # "mse" | "minmax" | "percentile" (mse: far better at 4 bits)
    percentile: float = 99.99
    per_layer_wbits: dict | None = None              # {layer name: bits} (mixed precision)
    first_last_8bit: bool = False

    def __post_init__(self):
        if self.wbits not in P.WEIGHT_BITS:
            raise PqlrError(f"wbits must be one of {P.WEIGHT_BITS}, got {self.wbits}")
        if self.abits not in P.ACT_BITS:
            raise PqlrError(f"abits must be one of {P.ACT_BITS}, got {self.abits}")
        if self.method not in ("lsq+", "ptq"):
            raise PqlrError(f"quantization method must be 'lsq+' or 'ptq', got {self.method!r}")
        if self.init not in INIT_METHODS:
            raise PqlrError(f"quantizer init must be one of {INIT_METHODS}, got {self.init!r}")
        if self.calib < 1:
            raise PqlrError(f"calib must be >= 1 utterances, got {self.calib}")
        if not 50.0 < self.percentile <= 100.0:
            raise PqlrError(f"percentile must be in (50, 100], got {self.percentile}")
        for name, b in (self.per_layer_wbits or {}).items():
            if b not in P.WEIGHT_BITS:
                raise PqlrError(f"per_layer_wbits[{name!r}] = {b}: must be one of {P.WEIGHT_BITS}")
        if self.per_layer_wbits is not None:
            object.__setattr__(self, "per_layer_wbits", dict(self.per_layer_wbits))

    def layer_bits(self, layer: str, layers: list[str]) -> int:
        if self.per_layer_wbits and layer in self.per_layer_wbits:
            return int(self.per_layer_wbits[layer])
        if self.first_last_8bit and layer in (layers[0], layers[-1]):
            return 8
        return self.wbits


# ---------------------------------------------------------------- the quantized program
@dataclass
class QTensor:
    name: str
    shape: tuple[int, ...]          # IR shape, no batch dim (HWC feature maps, (T, C) tokens)
    bits: int                       # 4, 8 or 16
    quant: str | None = None        # ActQuant key giving its qparams (its own, or its alias source's)
    widen_of: str | None = None     # exact int8 -> int16 copy of this tensor (scale / 128, zp 0)


@dataclass(frozen=True)
class QOp:
    kind: str                       # a key of qmodules.RUN and of ir.lower's emitters
    name: str                       # source layer name (IR node name, messages)
    inputs: tuple[str, ...]
    output: str
    layer: str = ""                 # module path (weights) or parameter path (pos table)
    attrs: dict = field(default_factory=dict)


@dataclass
class Program:
    arch: str
    input_shape: tuple[int, ...]
    ops: list[QOp] = field(default_factory=list)
    tensors: dict[str, QTensor] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)          # weight layers in execution order
    layer_input: dict[str, str] = field(default_factory=dict)
    quantizers: dict[str, int] = field(default_factory=dict)  # ActQuant key -> bits
    fixed: dict[str, str] = field(default_factory=dict)      # ActQuant key -> "softmax"
    output: str = ""


class _Builder:
    """Emits QOps, choosing each output's bits and inserting exact widenings where dtypes differ."""

    def __init__(self, model: nn.Module, abits: int, input_shape):
        self.model, self.abits = model, abits
        self.p = Program(type(model).__name__, tuple(input_shape))
        self._wide: dict[str, str] = {}

    def emit(self, kind: str, name: str, inputs: list[str], shape, *, layer: str = "", alias: bool = False,
             bits: int | None = None, fixed: str | None = None, **attrs) -> str:
        if self.abits == 16 and kind != "input":
            inputs = [self.wide(i) for i in inputs]      # every op has an s16 kernel
        out = name if name not in self.p.tensors else f"{name}#{len(self.p.ops)}"
        if alias:
            src = self.p.tensors[inputs[0]]
            self.p.tensors[out] = QTensor(out, tuple(shape), src.bits, src.quant, src.widen_of)
        else:
            b = bits or self.abits
            self.p.tensors[out] = QTensor(out, tuple(shape), b, out)
            self.p.quantizers[out] = b
            if fixed:
                self.p.fixed[out] = fixed
        if layer and kind in ("conv", "linear", "embed_patch"):
            self.p.layers.append(layer)
            self.p.layer_input[layer] = inputs[0]
        self.p.ops.append(QOp(kind, name, tuple(inputs), out, layer, attrs))
        return out

    def wide(self, t: str) -> str:
        src = self.p.tensors[t]
        if src.bits == 16:
            return t
        if t not in self._wide:
            out = f"{t}:s16"
            self.p.tensors[out] = QTensor(out, src.shape, 16, None, widen_of=t)
            self.p.ops.append(QOp("widen", f"{t}:s16", (t,), out))
            self._wide[t] = out
        return self._wide[t]

    def module(self, path: str, types: tuple, what: str) -> nn.Module:
        try:
            mod = self.model.get_submodule(path)
        except AttributeError:
            raise UnsupportedError(f"layer {path}: missing (expected {what})") from None
        if not isinstance(mod, types):
            raise UnsupportedError(f"layer {path}: {type(mod).__name__} is not supported here (expected {what})")
        return mod

    # -------------------------------------------------------- weight layers
    def conv(self, path: str, x: str, relu: bool) -> str:
        from .lowrank import LowRankConv1x1
        mod = self.module(path, (nn.Conv2d, LowRankConv1x1), "Conv2d")
        if isinstance(mod, LowRankConv1x1):
            mid = self.conv(f"{path}.first", x, relu=False)
            return self.conv(f"{path}.second", mid, relu=relu)
        h, w, c = self.p.tensors[x].shape
        if (mod.dilation != (1, 1) or mod.padding_mode != "zeros" or isinstance(mod.padding, str)
                or mod.groups not in (1, c) or (mod.groups == c != 1 and mod.out_channels != c)):
            raise UnsupportedError(f"layer {path}: Conv2d with dilation {mod.dilation}, padding {mod.padding!r} "
                                   f"({mod.padding_mode}), groups {mod.groups} is not supported")
        (kh, kw), (sh, sw), (ph, pw) = mod.kernel_size, mod.stride, mod.padding
        shape = ((h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1, mod.out_channels)
        return self.emit("conv", path, [x], shape, layer=path, relu=relu,
                         depthwise=mod.groups == c and c > 1)

    def dense(self, path: str, x: str, relu: bool = False, bits: int | None = None) -> str:
        from .lowrank import LowRankLinear
        mod = self.module(path, (nn.Linear, LowRankLinear), "Linear")
        if isinstance(mod, LowRankLinear):
            mid = self.dense(f"{path}.first", x)
            return self.dense(f"{path}.second", mid, relu=relu, bits=bits)
        shape = self.p.tensors[x].shape
        if shape[-1] != mod.in_features:
            raise UnsupportedError(f"layer {path}: Linear expects {mod.in_features} inputs, gets shape {shape}")
        return self.emit("linear", path, [x], shape[:-1] + (mod.out_features,), layer=path, relu=relu, bits=bits)


def _logit_bits(abits: int) -> int:
    return max(abits, 8)             # the classifier output is at least 8 bit (4-bit logits tie too often)


def _walk_sequential(b: _Builder, model: nn.Module) -> str:
    """DS-CNN and nn.Sequential CNNs: leaves in registration order (= execution order for these)."""
    from ..models.ds_cnn import DSBlock, DSCNN
    containers = (DSCNN, DSBlock, nn.Sequential)
    leaves = []

    def collect(mod: nn.Module, prefix: str):
        for name, child in mod.named_children():
            path = f"{prefix}{name}"
            if isinstance(child, containers):
                collect(child, path + ".")
            else:
                leaves.append((path, child))
    collect(model, "")
    x = b.emit("input", "input", [], b.p.input_shape, bits=8)   # int8 features
    i = 0
    while i < len(leaves):
        path, mod = leaves[i]
        nxt = [m for _, m in leaves[i + 1: i + 3]]
        while nxt and isinstance(nxt[0], nn.Identity):
            nxt, i = nxt[1:], i + 1
        relu = bool(nxt) and type(nxt[0]) is nn.ReLU
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise UnsupportedError(f"layer {path}: BatchNorm not preceded by a layer it can fold into")
        elif isinstance(mod, (nn.Identity, nn.Dropout)):
            pass
        elif isinstance(mod, nn.Conv2d) or type(mod).__name__ == "LowRankConv1x1":
            x, i = b.conv(path, x, relu), i + relu
        elif isinstance(mod, (nn.AdaptiveAvgPool2d, nn.AvgPool2d)):
            h, w, c = b.p.tensors[x].shape
            k = mod.kernel_size if isinstance(mod, nn.AvgPool2d) else None
            if (isinstance(mod, nn.AdaptiveAvgPool2d) and mod.output_size not in (1, (1, 1))) or \
                    (k is not None and tuple(nn.modules.utils._pair(k)) != (h, w)):
                raise UnsupportedError(f"layer {path}: only global average pooling is supported, got {mod}")
            x = b.emit("global_avgpool", path, [x], (c,))
        elif isinstance(mod, nn.Flatten):
            if len(b.p.tensors[x].shape) != 1:
                raise UnsupportedError(f"layer {path}: Flatten of a {b.p.tensors[x].shape} map (only after global pooling)")
        elif isinstance(mod, nn.Linear) or type(mod).__name__ == "LowRankLinear":
            last = not any(isinstance(m, (nn.Linear, nn.Conv2d)) or "LowRank" in type(m).__name__
                           for _, m in leaves[i + 1:])
            x, i = b.dense(path, x, relu, bits=_logit_bits(b.abits) if last else None), i + relu
        else:
            raise UnsupportedError(f"layer {path}: {type(mod).__name__} is not supported by quantization/lowering")
        i += 1
    return x


def _walk_transformer(b: _Builder, model: nn.Module) -> str:
    cfg = model.config
    if cfg.pool != "mean":
        raise UnsupportedError(f"model: pool={cfg.pool!r} (class token) is not supported; use pool='mean'")
    frames, feats = b.p.input_shape[:2]
    t, p, d = frames // cfg.patch, cfg.patch, cfg.d_model
    x = b.emit("input", "input", [], b.p.input_shape, bits=8)   # int8 features
    from .lowrank import LowRankLinear
    emb = b.module("embed", (nn.Linear, LowRankLinear), "Linear")
    first = "embed.first" if isinstance(emb, LowRankLinear) else "embed"
    width = b.model.get_submodule(first).out_features
    x = b.emit("embed_patch", first, [x], (t, 1, width), layer=first, tokens=t, patch=p)   # conv (T, 1, D)
    x = b.emit("reshape", f"{first}.tokens", [x], (t, width), alias=True, new_shape=(t, width))
    if first != "embed":
        x = b.dense("embed.second", x)
    b.p.quantizers["pos.table"] = 16 if b.abits == 16 else 8      # table dtype = x's dtype
    x = b.emit("pos_add", "pos", [x], (t, d), layer="pos", table_quant="pos.table")
    for i, blk in enumerate(model.blocks):
        pre = f"blocks.{i}."
        heads, dh = blk.attn.heads, blk.attn.head_dim
        b.module(pre + "attn.softmax", (nn.Softmax,), "Softmax(dim=-1)")
        if blk.attn.softmax.dim not in (-1, 3):
            raise UnsupportedError(f"layer {pre}attn.softmax: softmax over dim {blk.attn.softmax.dim}")
        act = b.module(pre + "ffn.act", (nn.GELU,), "GELU")
        if act.approximate != "none":
            raise UnsupportedError(f"layer {pre}ffn.act: GELU(approximate={act.approximate!r}); use the exact GELU")

        def ln(name, x):
            b.module(pre + name, (nn.LayerNorm,), "LayerNorm")
            return b.emit("layernorm", pre + name, [x], (t, d), layer=pre + name)

        def attention(h):
            def heads_of(lin, perm):
                y = b.dense(pre + "attn." + lin, h)
                y = b.emit("reshape", f"{y}.heads", [y], (t, heads, dh), alias=True, new_shape=(t, heads, dh))
                shape = tuple((t, heads, dh)[a] for a in perm)
                return b.emit("transpose", f"{y}.T", [y], shape, alias=True, perm=perm)
            q, k, v = heads_of("q", (1, 0, 2)), heads_of("k", (1, 2, 0)), heads_of("v", (1, 0, 2))
            s = b.emit("matmul", pre + "attn.scores", [q, k], (heads, t, t), alpha=float(blk.attn.scale))
            a = b.emit("softmax", pre + "attn.softmax", [s], (heads, t, t), bits=16 if b.abits == 16 else 8,
                       fixed="softmax")
            c = b.emit("matmul", pre + "attn.context", [a, v], (heads, t, dh))
            c = b.emit("transpose", f"{c}.T", [c], (t, heads, dh), alias=True, perm=(1, 0, 2))
            c = b.emit("reshape", f"{c}.flat", [c], (t, heads * dh), alias=True, new_shape=(t, heads * dh))
            return b.dense(pre + "attn.o", c)

        def ffn(h):
            h = b.dense(pre + "ffn.fc1", h)
            h = b.emit("gelu", pre + "ffn.act", [h], b.p.tensors[h].shape)
            return b.dense(pre + "ffn.fc2", h)

        if cfg.norm_first:
            x = b.emit("add", pre + "res1", [x, attention(ln("ln1", x))], (t, d))
            x = b.emit("add", pre + "res2", [x, ffn(ln("ln2", x))], (t, d))
        else:
            x = ln("ln1", b.emit("add", pre + "res1", [x, attention(x)], (t, d)))
            x = ln("ln2", b.emit("add", pre + "res2", [x, ffn(x)], (t, d)))
    b.module("ln_f", (nn.LayerNorm,), "LayerNorm")
    x = b.emit("layernorm", "ln_f", [x], (t, d), layer="ln_f")
    x = b.emit("mean_tokens", "pool", [x], (d,))
    return b.dense("head", x, bits=_logit_bits(b.abits))


def build_program(model: nn.Module, abits: int = 8, input_shape=None) -> Program:
    """The integer-op program of a (BN-folded) DS-CNN, nn.Sequential CNN or KWSTransformer."""
    from ..models.transformer import KWSTransformer
    cfg = getattr(model, "config", None)
    frames, feats = tuple(input_shape or getattr(cfg, "input_shape", (49, 10)))
    b = _Builder(model, abits, (frames, feats, 1))
    if isinstance(model, KWSTransformer):
        b.p.arch = "transformer"
        out = _walk_transformer(b, model)
    elif isinstance(model, nn.Sequential) or type(model).__name__ == "DSCNN":
        b.p.arch = "cnn"
        out = _walk_sequential(b, model)
    else:
        raise UnsupportedError(f"model {type(model).__name__}: not a DS-CNN, nn.Sequential CNN or KWSTransformer; "
                               "quantization/lowering cannot walk it")
    b.p.output = out
    return b.p


# ---------------------------------------------------------------- the verb
def quantize_(model: nn.Module, cfg: QuantConfig, step: str = "prepare", calib: Iterable | None = None) -> nn.Module:
    """step="prepare": fold BN (in place: `model` becomes the QuantModel's float_model), build the
    quantized program, init quantizers from `calib` (feature batches (B, 1, frames, feats) or
    (x, y) pairs; the first `cfg.calib` utterances); returns a QuantModel, in training mode for
    method="lsq+" (QAT), in eval mode for "ptq". step="convert": freeze a QuantModel for
    `ir.lower` (cfg is not used); returns it."""
    if step == "prepare":
        if isinstance(model, QuantModel):
            raise PqlrError("model is already quantized (prepare was called before)")
        if calib is None:
            raise PqlrError("quantize_(step='prepare') needs calibration batches (calib=...)")
        model.eval()
        fold_bn(model)
        qm = QuantModel(model, build_program(model, cfg.abits), cfg)
        qm.calibrate(calib, cfg.calib, cfg.init, cfg.percentile)
        qm.train(cfg.method == "lsq+")               # QAT-ready, or PTQ (evaluation mode)
        return qm
    if step == "convert":
        if not isinstance(model, QuantModel):
            raise PqlrError("quantize_(step='convert') needs the model returned by step='prepare'")
        model.freeze()
        return model
    raise PqlrError(f"quantize_ step must be 'prepare' or 'convert', got {step!r}")
