"""Quantization primitives: the numeric oracle that the fake-quant model, the integer
interpreter and the C runtime (runtime/include/pqlr_types.h) all follow.

Conventions (documented once, here; the C mirrors these names):
  * Rounding: round half up, `floor(x + 0.5)`, everywhere -- float fake-quant and
    integer requantization alike (the integer form is `(v + 2^(n-1)) >> n`, an
    arithmetic shift, i.e. floor).
  * Weights: symmetric, per output channel, zero point 0, full signed range
    [-2^(b-1), 2^(b-1)-1] for b in {8, 4, 2}; b = 1 is binary {-1, +1} (w ~ s * q).
  * Activations: asymmetric (scale, integer zero point), signed storage:
    8 bit [-128, 127], 4 bit [-8, 7] (held one per int8 byte), 16 bit [-32768, 32767]
    with zero point 0.
  * Bias: int32 in the accumulator scale, q_b = round(b / (s_in * s_w[c])).
  * Requantization: real multiplier M = s_in * s_w / s_out is stored as an int32
    multiplier m in [2^30, 2^31) and a right shift n in [1, 62]:
        y = (acc * m + 2^(n-1)) >> n        (64-bit product)
  * Packing of sub-byte weights, per output-channel row, each row padded to whole bytes,
    least significant bits first: int4 -> element 2i in bits 0-3, 2i+1 in bits 4-7;
    int2 -> element 4i+j in bits 2j..2j+1; 1 bit -> element 8i+j in bit j (1 = +1, 0 = -1).
    Example: int4 row [1, -2, 7] -> bytes [0xE1, 0x07].
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .errors import UnsupportedError

WEIGHT_BITS = (8, 4, 2, 1)
ACT_BITS = (8, 4, 16)


# ---------------------------------------------------------------- ranges and rounding
def weight_range(bits: int) -> tuple[int, int]:
    """Integer range of a `bits`-bit weight (binary weights are {-1, +1})."""
    if bits not in WEIGHT_BITS:
        raise UnsupportedError(f"weight bit-width {bits} not supported (use one of {WEIGHT_BITS})")
    if bits == 1:
        return -1, 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def act_range(bits: int) -> tuple[int, int]:
    """Integer range of a `bits`-bit activation (signed storage)."""
    if bits not in ACT_BITS:
        raise UnsupportedError(f"activation bit-width {bits} not supported (use one of {ACT_BITS})")
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def round_half_up(x):
    """floor(x + 0.5) for NumPy arrays, torch tensors or Python floats."""
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np.floor(np.asarray(x, dtype=np.float64) + 0.5)
    import torch

    if isinstance(x, torch.Tensor):
        return torch.floor(x + 0.5)
    raise TypeError(f"round_half_up: unsupported type {type(x).__name__}")


# ---------------------------------------------------------------- (de)quantization
def quantize_weight(w: np.ndarray, scale: np.ndarray, bits: int) -> np.ndarray:
    """Per-output-channel symmetric quantization; `w` is (C_out, ...), `scale` is (C_out,)."""
    lo, hi = weight_range(bits)
    s = np.asarray(scale, dtype=np.float64).reshape((-1,) + (1,) * (w.ndim - 1))
    if bits == 1:
        return np.where(np.asarray(w) >= 0, 1, -1).astype(np.int8)
    return np.clip(round_half_up(np.asarray(w, dtype=np.float64) / s), lo, hi).astype(np.int8)


def quantize_act(x: np.ndarray, scale: float, zero_point: int, bits: int) -> np.ndarray:
    """Asymmetric activation quantization to signed storage (int8 for <= 8 bits, else int16)."""
    lo, hi = act_range(bits)
    q = np.clip(round_half_up(np.asarray(x, dtype=np.float64) / scale) + zero_point, lo, hi)
    return q.astype(np.int8 if bits <= 8 else np.int16)


def dequantize(q: np.ndarray, scale, zero_point=0) -> np.ndarray:
    return (np.asarray(q, dtype=np.float64) - zero_point) * scale


def quantize_bias(b: np.ndarray, in_scale: float, w_scale: np.ndarray) -> np.ndarray:
    """int32 bias in the accumulator scale in_scale * w_scale[c]."""
    q = round_half_up(np.asarray(b, dtype=np.float64) / (in_scale * np.asarray(w_scale, dtype=np.float64)))
    if np.any(np.abs(q) > 2**31 - 1):
        raise UnsupportedError("bias does not fit int32 at this scale")
    return q.astype(np.int32)


def choose_act_qparams(x_min: float, x_max: float, bits: int) -> tuple[float, int]:
    """Scale and zero point so that [min(x_min,0), max(x_max,0)] maps onto the signed range."""
    lo, hi = act_range(bits)
    x_min, x_max = min(float(x_min), 0.0), max(float(x_max), 0.0)
    if bits == 16:  # symmetric, zero point 0
        scale = max(abs(x_min), abs(x_max)) / hi
        return (scale if scale > 0 else 1.0), 0
    scale = (x_max - x_min) / (hi - lo)
    if scale <= 0:
        return 1.0, 0
    zp = int(np.clip(round_half_up(lo - x_min / scale), lo, hi))
    return float(scale), zp


# ---------------------------------------------------------------- requantization
def quantize_multiplier(real: float) -> tuple[int, int]:
    """real > 0 -> (m, n) with real ~= m / 2^n, m in [2^30, 2^31), n in [1, 62].

    Multipliers too small to represent become (0, 1): the output is the zero point."""
    if not (real >= 0 and math.isfinite(real)):
        raise UnsupportedError(f"requantization multiplier {real!r} is not a finite non-negative number")
    if real == 0:
        return 0, 1
    mant, exp = math.frexp(real)  # real = mant * 2^exp, mant in [0.5, 1)
    m = int(round_half_up(mant * (1 << 31)))
    if m == 1 << 31:
        m //= 2
        exp += 1
    n = 31 - exp
    if n > 62:
        return 0, 1
    if n < 1:
        raise UnsupportedError(f"requantization multiplier {real:.3g} >= 2^30 cannot be represented")
    return m, n


def requantize(acc: np.ndarray, m, n) -> np.ndarray:
    """(acc * m + 2^(n-1)) >> n in 64-bit integers; m and n broadcast (per channel on the last axis)."""
    acc = np.asarray(acc, dtype=np.int64)
    m = np.asarray(m, dtype=np.int64)
    n = np.asarray(n, dtype=np.int64)
    return (acc * m + (np.int64(1) << (n - 1))) >> n


def saturate(x: np.ndarray, lo: int, hi: int, dtype=np.int8) -> np.ndarray:
    return np.clip(x, lo, hi).astype(dtype)


# ---------------------------------------------------------------- sub-byte packing
def packed_row_bytes(k: int, bits: int) -> int:
    """Bytes of one packed row of k weights (rows are padded to whole bytes)."""
    return (k * bits + 7) // 8


def pack_weights(q: np.ndarray, bits: int) -> np.ndarray:
    """(C_out, ...) integer weights -> (C_out, packed_row_bytes) uint8, per-row packing above."""
    q = np.asarray(q).reshape(q.shape[0], -1).astype(np.int64)
    lo, hi = weight_range(bits)
    if q.min(initial=0) < lo or q.max(initial=0) > hi:
        raise UnsupportedError(f"weights outside the {bits}-bit range [{lo}, {hi}]")
    if bits == 8:
        return (q & 0xFF).astype(np.uint8)
    if bits == 1:
        if np.any(q == 0):
            raise UnsupportedError("binary weights must be -1 or +1")
        fields = (q > 0).astype(np.int64)
    else:
        fields = q & ((1 << bits) - 1)
    per = 8 // bits
    rows, k = fields.shape
    padded = np.zeros((rows, packed_row_bytes(k, bits) * per), dtype=np.int64)
    padded[:, :k] = fields
    padded = padded.reshape(rows, -1, per)
    shifts = np.arange(per, dtype=np.int64) * bits
    return (padded << shifts).sum(axis=2).astype(np.uint8)


def unpack_weights(packed: np.ndarray, bits: int, k: int) -> np.ndarray:
    """Inverse of `pack_weights`: (C_out, row_bytes) uint8 -> (C_out, k) int8."""
    packed = np.asarray(packed, dtype=np.uint8).astype(np.int64)
    if bits == 8:
        return packed[:, :k].astype(np.uint8).view(np.int8).copy()
    per = 8 // bits
    shifts = np.arange(per, dtype=np.int64) * bits
    fields = ((packed[:, :, None] >> shifts) & ((1 << bits) - 1)).reshape(packed.shape[0], -1)[:, :k]
    if bits == 1:
        return np.where(fields == 1, 1, -1).astype(np.int8)
    sign = 1 << (bits - 1)
    return ((fields ^ sign) - sign).astype(np.int8)


# ---------------------------------------------------------------- element-wise tables, integer math
def make_lut(fn: Callable[[np.ndarray], np.ndarray], in_scale: float, in_zp: int,
             out_scale: float, out_zp: int, out_bits: int = 8) -> np.ndarray:
    """256-entry int8 table for y = fn(x) on int8 inputs; entry i is for input value i - 128."""
    x = dequantize(np.arange(-128, 128), in_scale, in_zp)
    return quantize_act(fn(x), out_scale, out_zp, out_bits).astype(np.int8)


def isqrt(v: np.ndarray) -> np.ndarray:
    """Exact floor(sqrt(v)) for non-negative int64 values (bitwise method, as in the C)."""
    v = np.asarray(v, dtype=np.int64)
    if np.any(v < 0):
        raise ValueError("isqrt of a negative value")
    res = np.zeros_like(v)
    bit = np.int64(1) << 62
    rem = v.copy()
    while bit:
        trial = res + bit
        ge = rem >= trial
        rem = np.where(ge, rem - trial, rem)
        res = np.where(ge, (res >> 1) + bit, res >> 1)
        bit >>= 2
    return res


def accumulator_bound(k: int, in_bits: int, w_bits: int) -> int:
    """Largest |sum of k products| of zero-point-corrected inputs and weights (no bias)."""
    in_span = (1 << in_bits) - 1          # |x - zp| <= 2^b - 1 for asymmetric inputs
    w_max = 1 if w_bits == 1 else 1 << (w_bits - 1)
    return k * in_span * w_max
