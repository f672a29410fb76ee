"""Float64 NumPy activation functions with exactly PyTorch's definitions (torch.nn.functional names),
and `lut_for`, the table of the IR's `lut` op (ops_tf) for one of them at given qparams.

    sigmoid(x)          1 / (1 + exp(-x))
    tanh(x)             tanh(x)
    hardswish(x)        x * min(max(x + 3, 0), 6) / 6
    hardsigmoid(x)      min(max(x + 3, 0), 6) / 6
    silu(x)             x * sigmoid(x)
    gelu(x)             x / 2 * (1 + erf(x / sqrt 2))                      (approximate="none")
    gelu_tanh(x)        x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))  (approximate="tanh")
    elu(x, alpha=1)     x if x > 0 else alpha * (exp(x) - 1)               (torch: expm1)
    softplus(x, beta=1, threshold=20)   x if beta x > threshold else log1p(exp(beta x)) / beta
    mish(x)             x * tanh(softplus(x))                              (no threshold)

The formulas follow torch's CPU float64 kernels (the same cancellations: gelu(x) for x << 0 is 0
there as here), so each matches torch.nn.functional to ~1e-15 relative (tests/ir/test_activations.py).
ACTIVATIONS maps each name to its function.

lut_for(name, in_t, out_t, **params) -> table (params: alpha, beta, threshold):
    s8   256 int8 entries, entry i = quantize(f(dequantize(i - 128))) at out_t's scale, zero point and
         bits (primitives.make_lut; a 4-bit output is clamped to [-8, 7])
    s16  513 int16 knots f(s_in (128 i - 32768)) / s_out, linearly interpolated by the kernel
         (ops_tf.lut_table; zero points 0)
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .. import primitives as P
from ..errors import UnsupportedError
from .graph import Tensor
from .ops_tf import lut_table

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def sigmoid(x) -> np.ndarray:
    x = _f64(x)
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def tanh(x) -> np.ndarray:
    return np.tanh(_f64(x))


def hardsigmoid(x) -> np.ndarray:
    return np.minimum(np.maximum(_f64(x) + 3.0, 0.0), 6.0) / 6.0


def hardswish(x) -> np.ndarray:
    x = _f64(x)
    return x * np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0


def silu(x) -> np.ndarray:
    x = _f64(x)
    return x * sigmoid(x)


def gelu(x) -> np.ndarray:
    x = _f64(x)
    return x * 0.5 * (1.0 + _erf(x * math.sqrt(0.5)))


def gelu_tanh(x) -> np.ndarray:
    x = _f64(x)
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x * x * x)
    return 0.5 * x * (1.0 + np.tanh(inner))


def elu(x, alpha: float = 1.0) -> np.ndarray:
    x = _f64(x)
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def softplus(x, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    x = _f64(x)
    bx = x * beta
    with np.errstate(over="ignore"):
        return np.where(bx > threshold, x, np.log1p(np.exp(np.minimum(bx, threshold))) / beta)


def mish(x) -> np.ndarray:
    x = _f64(x)
    with np.errstate(over="ignore"):
        return x * np.tanh(np.log1p(np.exp(x)))


ACTIVATIONS: dict[str, Callable[..., np.ndarray]] = {
    "sigmoid": sigmoid, "tanh": tanh, "hardswish": hardswish, "hardsigmoid": hardsigmoid, "silu": silu,
    "gelu": gelu, "gelu_tanh": gelu_tanh, "elu": elu, "softplus": softplus, "mish": mish,
}


def lut_for(name: str, in_t: Tensor, out_t: Tensor, **params) -> np.ndarray:
    """The `lut` op's table computing activation `name` (with params, e.g. alpha=0.5) from in_t to out_t."""
    if name not in ACTIVATIONS:
        raise UnsupportedError(f"activation {name!r} has no table (known: {', '.join(ACTIVATIONS)})")
    if in_t.dtype != out_t.dtype or in_t.dtype not in ("s8", "s16"):
        raise UnsupportedError(f"lut {name}: {in_t.dtype} -> {out_t.dtype}; a table maps s8 -> s8 or s16 -> s16")
    fn = ACTIVATIONS[name]

    def f(x):
        return fn(x, **params)
    if in_t.dtype == "s8":
        return P.make_lut(f, in_t.scale, in_t.zero_point, out_t.scale, out_t.zero_point, out_t.bits)
    return lut_table(f, in_t.scale, in_t.zero_point, out_t.scale, out_t.zero_point, bits=16)
