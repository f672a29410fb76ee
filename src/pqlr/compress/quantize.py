"""Quantization, torchao style: `quantize_(model, QuantConfig(...), step="prepare", calib=...)` captures
the model (capture/, unless it is already a GraphModel), folds BatchNorm into the layers before it
(fold.py), decides the quantized program (program.py: one step per integer op, where every
activation quantizer sits, what fuses), inserts LSQ+ fake quantizers (qmodules.py) and initialises
them from calibration batches; the result (qmodel.QuantModel) trains with the normal loop (QAT) or
is used as is (method="ptq"). `step="convert"` freezes it: integer weights and biases are fixed
(primitives), activation qparams stop learning; compress/lower.py then turns the same program into
the integer IR, so fake quantization and deployment cannot drift.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from torch import nn

from .. import primitives as P
from ..capture import GraphModel, capture
from ..errors import PqlrError
from .fold import fold_bn
from .program import Program, QOp, build_program
from .qmodel import QuantModel

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


# ---------------------------------------------------------------- the verb
def quantize_(model: nn.Module, cfg: QuantConfig, step: str = "prepare", calib: Iterable | None = None,
              input_shape=None) -> nn.Module:
    """step="prepare": capture `model` (a GraphModel is used as is; any other module needs
    `input_shape`, one sample's shape), fold BatchNorm (in place: the captured model becomes the
    QuantModel's float_model), build the quantized program, init quantizers from `calib` (input
    batches (B, *input_shape) or (x, y) pairs; the first `cfg.calib` samples); returns a QuantModel,
    in training mode for method="lsq+" (QAT), in eval mode for "ptq". step="convert": freeze a
    QuantModel for compress.lower (cfg is not used); returns it."""
    if step == "prepare":
        if isinstance(model, QuantModel):
            raise PqlrError("model is already quantized (prepare was called before)")
        if calib is None:
            raise PqlrError("quantize_(step='prepare') needs calibration batches (calib=...)")
        if not isinstance(model, GraphModel):
            if input_shape is None:
                raise PqlrError("quantize_ needs input_shape (one sample's shape) to capture a plain nn.Module")
            model = capture(model, input_shape)
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
