"""Integer transformer ops of the IR: NumPy oracle, C call emission and table builders.

C kernels: runtime/src/pqlr_<op>_<dtype>.c; their fixed-point formats are documented in
runtime/include/pqlr_tf.h, which this module mirrors bit for bit. Every op runs on s8
(real = (q - zero_point) * scale) and on s16 (zero points 0, for W1A16 models); a node's inputs
and output share one dtype. Shapes exclude the batch dimension.

  matmul     A (H, M, K) x B (H, K, P) -> (H, M, P) (or rank 2 without H); attrs multiplier, shift
             (matmul_attrs; Q.K^T folds 1/sqrt(d) in, B = K transposed to (H, d, T))
             y = clamp(zp_out + requant(sum (a - zp_a)(b - zp_b), m, n), act_min, act_max)
             s16: int64 acc (K <= 65536), multiplier < 128 (shift >= 24), requantized exactly in
             two parts (_requantize_wide)
  softmax    last axis, L <= 32767. s8: params table int32 (256,) = softmax_table(in_scale), Q16
             exp(-s_in d) for d = max(x) - x; y = min(round(256 e / sum e), 255) - 128, output
             (1/256, -128). s16: softmax_s16_params -> params table int32 (257,) Q30 2^(-i/256),
             attrs multiplier/shift of s_in log2(e) 2^16; exp = 2^-(k + f) interpolated, Q20;
             y = min(round(32768 e / sum e), 32767), output (1/32768, 0). round = floor((2 one e +
             sum) / (2 sum)), exact integer division.
  layernorm  last axis C <= 4096 (s16: 512); layernorm_params(..., bits) -> params gamma int8/int16
             (C,) per-channel symmetric, beta int32 (C,), multiplier int32 / shift int8 (C,); attrs eps
             d = C x - sum x; W = sum d^2 + C eps; F = (62 - bitlen W) // 2; t = isqrt(W << 2F);
             r = 2^62 // t; z = (d r + 2^(45-F)) >> (46-F) = round(2^16 d / sqrt W);
             y = clamp(zp_out + requant(gamma z + beta, m_c, n_c)).
             Precision: z = (x - mean) / std / sqrt(C) in Q16 (|z| <= 2^16); 1/std comes from a
             29.5-31 significant-bit isqrt and a 31-32 bit reciprocal, so z is exact to < 1e-8
             relative before its final rounding (measured: 0.51 s8 LSB, 1.2 s16 LSB max error).
  lut        s8: params table int8 (256,), y = table[x + 128] (primitives.make_lut). s16: 513
             int16 knots every 128 input steps, linear interpolation. Builders gelu_table (exact
             erf), tanh_table, sigmoid_table, lut_table(fn, ..., bits).
  transpose  attrs perm over the non-batch axes (rank <= 4); same qparams in and out
  reshape    a byte copy (pqlr_reshape_s8, any dtype); a no-op in C when the planner aliases in/out
  concat     attrs axis (negative allowed), <= 8 inputs, all with the output's qparams (the
             lowering inserts a requantize otherwise)

Common attrs: act_min/act_max (output clamp, default the dtype's range) for matmul, layernorm.
(A positional table is an ops_elem add with a constant operand.) As in ops_nn, per-tensor multipliers/shifts and other scalars are attrs (inlined into
the C params struct); arrays (tables, gamma, beta, per-channel multipliers) are params, passed to
the kernel by their `symbols` identifier. No op needs scratch. `c_call` returns one block
`{ static const pqlr_<op>_params p = {...}; PQLR_CHECK(pqlr_<op>_<dtype>(&p, ...)); }`.
`TABLE` (name -> opkit.OpDef) is merged into ir.ops.OPS.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import UnsupportedError
from ..primitives import isqrt, make_lut, quantize_multiplier, requantize, round_half_up
from .graph import Graph, Node, Tensor
from .opkit import OpDef, no_scratch

STORAGE = {"s8": (-128, 127, np.int8), "s16": (-32768, 32767, np.int16)}
SOFTMAX_ONE = 1 << 16                                # s8 Q16 exp table: exp(0) = 65536
SOFTMAX_MAX_LEN = 32767
LAYERNORM_MAX_CHANNELS = {"s8": 4096, "s16": 512}   # keeps sum d^2 + C eps below 2^62
LAYERNORM_Z_BITS = 16                                # fractional bits of z
LUT16_KNOTS, LUT16_STEP = 513, 128                   # s16 lut: knots every 128 input steps
MATMUL_MAX_K = {"s8": 33025, "s16": 65536}           # s8: K 255^2 < 2^31; s16: int64 accumulator
MATMUL_S16_MIN_SHIFT = 24                            # s16 requantizes acc = a1 2^24 + a0 exactly
TRANSPOSE_MAX_RANK = 4
CONCAT_MAX_INPUTS = 8

# C parameter structs (pqlr_tf.h), fields in declaration order: (name, array length or 0).
STRUCT_FIELDS: dict[str, tuple[tuple[str, int], ...]] = {
    "matmul": (("heads", 0), ("m", 0), ("k", 0), ("p", 0), ("a_zp", 0), ("b_zp", 0), ("out_zp", 0),
               ("multiplier", 0), ("shift", 0), ("act_min", 0), ("act_max", 0)),
    "softmax": (("rows", 0), ("len", 0), ("multiplier", 0), ("shift", 0)),
    "layernorm": (("rows", 0), ("channels", 0), ("eps", 0), ("out_zp", 0), ("act_min", 0), ("act_max", 0)),
    "lut": (("size", 0),),
    "transpose": (("rank", 0), ("in_dims", TRANSPOSE_MAX_RANK), ("perm", TRANSPOSE_MAX_RANK)),
    "concat": (("n_inputs", 0), ("outer", 0), ("chunk", CONCAT_MAX_INPUTS)),
}


# ---------------------------------------------------------------- builders ("decide")
def _positive(what: str, v: float) -> float:
    if not (v > 0 and math.isfinite(v)):
        raise UnsupportedError(f"{what} {v!r} must be a positive number")
    return float(v)


def softmax_table(in_scale: float) -> np.ndarray:
    """s8: Q16 table exp(-in_scale * d) for d = max(x) - x in [0, 255] -> int32 (256,)."""
    d = np.arange(256, dtype=np.float64)
    return round_half_up(SOFTMAX_ONE * np.exp(-_positive("softmax input scale", in_scale) * d)).astype(np.int32)


def softmax_s16_params(in_scale: float) -> tuple[dict, dict]:
    """s16: (params, attrs): the Q30 table 2^(-i/256), i = 0..256, and multiplier/shift of
    in_scale * log2(e) * 2^16 (u = d times it is the exponent in base 2, Q16)."""
    m, n = quantize_multiplier(_positive("softmax input scale", in_scale) * math.log2(math.e) * 65536)
    table = round_half_up(2.0**30 * 2.0 ** (-np.arange(257) / 256.0)).astype(np.int32)
    return {"table": table}, {"multiplier": m, "shift": n}


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU in float64: x * Phi(x)."""
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * x * (1.0 + erf(np.asarray(x, dtype=np.float64) / math.sqrt(2.0)))


def lut_table(fn, in_scale: float, in_zp: int, out_scale: float, out_zp: int, bits: int = 8) -> np.ndarray:
    """bits 8: the 256-entry int8 table of primitives.make_lut. bits 16 (zero points 0): 513 int16
    knots fn(in_scale * (-32768 + 128 i)), i = 0..512, for linear interpolation (pqlr_lut_s16)."""
    if bits == 8:
        return make_lut(fn, in_scale, in_zp, out_scale, out_zp)
    if bits != 16 or in_zp or out_zp:
        raise UnsupportedError(f"lut tables are 8 bit, or 16 bit with zero points 0 (got {bits}, {in_zp}, {out_zp})")
    x = (np.arange(LUT16_KNOTS, dtype=np.float64) * LUT16_STEP - 32768) * in_scale
    return np.clip(round_half_up(fn(x) / out_scale), -32768, 32767).astype(np.int16)


def gelu_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int, bits: int = 8) -> np.ndarray:
    return lut_table(gelu, in_scale, in_zp, out_scale, out_zp, bits)


def tanh_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int, bits: int = 8) -> np.ndarray:
    return lut_table(np.tanh, in_scale, in_zp, out_scale, out_zp, bits)


def sigmoid_table(in_scale: float, in_zp: int, out_scale: float, out_zp: int, bits: int = 8) -> np.ndarray:
    return lut_table(lambda x: 1.0 / (1.0 + np.exp(-x)), in_scale, in_zp, out_scale, out_zp, bits)


def matmul_attrs(a_scale: float, b_scale: float, out_scale: float, alpha: float = 1.0) -> dict:
    """multiplier/shift attrs for out = alpha * A @ B (alpha = 1/sqrt(d) for Q.K^T)."""
    m, n = quantize_multiplier(alpha * a_scale * b_scale / out_scale)
    return {"multiplier": m, "shift": n}


def layernorm_params(gamma: np.ndarray, beta: np.ndarray, eps: float, in_scale: float,
                     out_scale: float, bits: int = 8) -> tuple[dict, dict]:
    """(params, attrs): gamma quantized per channel (int8 for s8, int16 for s16; scale s_g),
    beta int32 in the accumulator scale s_g sqrt(C) / 2^16, per-channel multiplier/shift to
    out_scale; attrs eps in (in_scale / C)^2 units."""
    gamma = np.asarray(gamma, dtype=np.float64).reshape(-1)
    beta = np.asarray(beta, dtype=np.float64).reshape(-1)
    c, (g_max, beta_bits, g_type) = gamma.size, {8: (127, 30, np.int8), 16: (32767, 29, np.int16)}[bits]
    if beta.size != c or not 1 <= c <= LAYERNORM_MAX_CHANNELS[f"s{bits}"]:
        raise UnsupportedError(f"layernorm over {c} channels (gamma {gamma.size}, beta {beta.size}); need "
                               f"equal sizes in [1, {LAYERNORM_MAX_CHANNELS[f's{bits}']}] at {bits} bit")
    unit = math.sqrt(c) / (1 << LAYERNORM_Z_BITS)            # real value of z = 1, times gamma
    # s_g large enough that beta fits the accumulator (a tiny gamma with a large beta)
    s_g = np.maximum(np.abs(gamma) / g_max, np.abs(beta) / (unit * 2.0**beta_bits))
    s_g = np.where(s_g > 0, s_g, 1.0)
    gamma_q = np.clip(round_half_up(gamma / s_g), -g_max, g_max).astype(g_type)
    beta_q = round_half_up(beta / (s_g * unit)).astype(np.int32)
    mn = [quantize_multiplier(float(s) * unit / out_scale) for s in s_g]
    eps_q = round_half_up(eps * c * c / in_scale**2)
    if not 0 <= eps_q <= 2**31 - 1:
        raise UnsupportedError(f"layernorm eps {eps} at input scale {in_scale:.3g} does not fit int32")
    return ({"gamma": gamma_q, "beta": beta_q,
             "multiplier": np.array([m for m, _ in mn], dtype=np.int32),
             "shift": np.array([n for _, n in mn], dtype=np.int8)}, {"eps": int(eps_q)})


# ---------------------------------------------------------------- checks shared by the ops
def _io(node: Node, graph: Graph, n_in: int | None, dtypes=("s8",)) -> tuple[list[Tensor], Tensor]:
    """Input and output tensors; all of one dtype in `dtypes`; s16 has zero point 0."""
    if n_in is not None and len(node.inputs) != n_in:
        raise UnsupportedError(f"{node.op} {node.name}: expects {n_in} inputs, got {len(node.inputs)}")
    ins = [graph.tensor(t) for t in node.inputs]
    out = graph.tensor(node.outputs[0])
    for t in (*ins, out):
        if t.dtype != out.dtype or t.dtype not in dtypes:
            raise UnsupportedError(f"{node.op} {node.name}: tensor {t.name} is {t.dtype}, output {out.dtype}; "
                                   f"supported: all {' or all '.join(dtypes)}")
        lo, hi = (-128, 127) if t.dtype == "s8" else (0, 0)
        if not lo <= t.zero_point <= hi:
            raise UnsupportedError(f"{node.op} {node.name}: zero point {t.zero_point} of {t.name} "
                                   f"outside [{lo}, {hi}] for {t.dtype}")
    return ins, out


def _param(node: Node, name: str, shape: tuple[int, ...], dtype) -> np.ndarray:
    p = node.params.get(name)
    if p is None:
        raise UnsupportedError(f"{node.op} {node.name}: missing param {name!r}")
    p = np.asarray(p)
    if p.shape != shape or p.dtype != np.dtype(dtype):
        raise UnsupportedError(f"{node.op} {node.name}: param {name} is {p.dtype}{p.shape}, "
                               f"expected {np.dtype(dtype)}{shape}")
    return p


def _clamp_range(node: Node, out: Tensor) -> tuple[int, int]:
    a, b = STORAGE[out.dtype][:2]
    lo, hi = int(node.attrs.get("act_min", a)), int(node.attrs.get("act_max", b))
    if not a <= lo <= hi <= b:
        raise UnsupportedError(f"{node.op} {node.name}: clamp [{lo}, {hi}] is not a {out.dtype} range")
    return lo, hi


def _same_q(node: Node, ins: list[Tensor], out: Tensor) -> None:
    for t in ins:
        if t.scale != out.scale or t.zero_point != out.zero_point:
            raise UnsupportedError(f"{node.op} {node.name}: input {t.name} qparams ({t.scale:.6g}, "
                                   f"{t.zero_point}) differ from output ({out.scale:.6g}, {out.zero_point}); "
                                   f"insert a requantize")


def _scalar(node: Node, name: str, lo: int = 0, hi: int = 2**31 - 1) -> int:
    v = node.attrs.get(name)
    if v is None or not lo <= int(v) <= hi:
        raise UnsupportedError(f"{node.op} {node.name}: attr {name}={v!r} missing or outside [{lo}, {hi}]")
    return int(v)


def _finish(node: Node, y: np.ndarray, out: Tensor, n: int) -> np.ndarray:
    if y.shape[1:] != tuple(out.shape):
        raise UnsupportedError(f"{node.op} {node.name}: computes shape {y.shape[1:]}, "
                               f"output {out.name} declares {tuple(out.shape)}")
    return y.astype(STORAGE[out.dtype][2]).reshape((n, *out.shape))


def _struct(op: str, values: dict) -> str:
    parts = []
    for name, count in STRUCT_FIELDS[op]:
        v = values[name]
        if count:
            v = list(v) + [0] * (count - len(v))
            parts.append(f".{name} = {{{', '.join(str(int(x)) for x in v)}}}")
        else:
            parts.append(f".{name} = {int(v)}")
    return f"static const pqlr_{op}_params p = {{{', '.join(parts)}}};"


def _block(op: str, values: dict, args: str, pre: str = "", dtype: str = "s8") -> str:
    return f"{{\n    {_struct(op, values)}\n{pre}    PQLR_CHECK(pqlr_{op}_{dtype}(&p, {args}));\n}}"


def _size(t: Tensor) -> int:
    return int(np.prod(t.shape, dtype=np.int64))


# ---------------------------------------------------------------- matmul
def _matmul_shapes(node: Node, graph: Graph):
    (a, b), out = _io(node, graph, 2, ("s8", "s16"))
    if len(a.shape) not in (2, 3) or len(b.shape) != len(a.shape):
        raise UnsupportedError(f"matmul {node.name}: inputs {a.shape} x {b.shape} must both be (M, K) or (H, M, K)")
    h = a.shape[0] if len(a.shape) == 3 else 1
    (m, k), (k2, p) = a.shape[-2:], b.shape[-2:]
    if k != k2 or (len(a.shape) == 3 and b.shape[0] != h) or k > MATMUL_MAX_K[out.dtype]:
        raise UnsupportedError(f"matmul {node.name}: cannot multiply {a.shape} by {b.shape} "
                               f"(K <= {MATMUL_MAX_K[out.dtype]} for {out.dtype})")
    if out.dtype == "s16" and _scalar(node, "multiplier") and _scalar(node, "shift", 1, 62) < MATMUL_S16_MIN_SHIFT:
        raise UnsupportedError(f"matmul {node.name}: s16 needs a real multiplier < 128 (shift >= 24)")
    return a, b, out, (h, m, k, p)


def _requantize_wide(acc: np.ndarray, m: int, n: int) -> np.ndarray:
    """(acc m + 2^(n-1)) >> n for |acc| < 2^47, n >= 24, without a 64-bit overflow:
    acc = a1 2^24 + a0 (0 <= a0 < 2^24), result = (a1 m + ((a0 m + 2^(n-1)) >> 24)) >> (n - 24)."""
    if m == 0:                       # (0, 1): a multiplier too small to represent
        return np.zeros_like(acc)
    a1, a0 = acc >> 24, acc & 0xFFFFFF
    return (a1 * m + ((a0 * m + (np.int64(1) << (n - 1))) >> 24)) >> (n - 24)


def _matmul_run(inputs, node, graph):
    a, b, out, _ = _matmul_shapes(node, graph)
    lo, hi = _clamp_range(node, graph.tensor(node.outputs[0]))
    x = np.asarray(inputs[0], dtype=np.int64) - a.zero_point
    w = np.asarray(inputs[1], dtype=np.int64) - b.zero_point
    acc = np.matmul(x, w)                                      # (N, [H,] M, P), exact int64
    m, n = _scalar(node, "multiplier"), _scalar(node, "shift", 1, 62)
    y = (requantize(acc, m, n) if out.dtype == "s8" else _requantize_wide(acc, m, n)) + out.zero_point
    return _finish(node, np.clip(y, lo, hi), out, len(x))


def _matmul_struct(node, graph):
    a, b, out, (h, m, k, p) = _matmul_shapes(node, graph)
    lo, hi = _clamp_range(node, graph.tensor(node.outputs[0]))
    return dict(heads=h, m=m, k=k, p=p, a_zp=a.zero_point, b_zp=b.zero_point, out_zp=out.zero_point,
                multiplier=_scalar(node, "multiplier"), shift=_scalar(node, "shift", 1, 62), act_min=lo, act_max=hi)


def _matmul_c(node, graph, ins, out_expr, symbols):
    dt = graph.tensor(node.outputs[0]).dtype
    return _block("matmul", _matmul_struct(node, graph), f"{ins[0]}, {ins[1]}, {out_expr}", dtype=dt)


def _matmul_macs(node, graph):
    h, m, k, p = _matmul_shapes(node, graph)[3]
    return h * m * k * p


# ---------------------------------------------------------------- softmax
def _softmax_check(node: Node, graph: Graph):
    (x,), out = _io(node, graph, 1, ("s8", "s16"))
    if tuple(x.shape) != tuple(out.shape) or not x.shape or x.shape[-1] > SOFTMAX_MAX_LEN:
        raise UnsupportedError(f"softmax {node.name}: shapes {x.shape} -> {out.shape} (last axis <= {SOFTMAX_MAX_LEN})")
    one, zp = (256, -128) if out.dtype == "s8" else (32768, 0)
    if out.zero_point != zp or abs(out.scale * one - 1.0) > 1e-9:
        raise UnsupportedError(f"softmax {node.name}: output qparams must be scale 1/{one}, zero point {zp}, "
                               f"got ({out.scale:.6g}, {out.zero_point})")
    if out.dtype == "s8":
        table = _param(node, "table", (256,), np.int32)
        ok = table[0] == SOFTMAX_ONE and np.all(table >= 0) and np.all(np.diff(table) <= 0)
        m, n = 0, 1
    else:
        table = _param(node, "table", (257,), np.int32)
        ok = table[0] == 1 << 30 and table[256] == 1 << 29 and np.all(np.diff(table) < 0)
        m, n = _scalar(node, "multiplier"), _scalar(node, "shift", 1, 62)
    if not ok:
        raise UnsupportedError(f"softmax {node.name}: table is not the {out.dtype} exp table (softmax_table / "
                               f"softmax_s16_params)")
    return x, out, table.astype(np.int64), m, n


def _exp_s16(d: np.ndarray, table: np.ndarray, m: int, n: int) -> np.ndarray:
    """e = exp(-s_in d) in Q20 for d in [0, 65535], via 2^-(k + f): see pqlr_tf.h."""
    u = requantize(d, m, n)                                     # Q16 base-2 exponent
    k, f = u >> 16, u & 0xFFFF
    i, lo = f >> 8, f & 0xFF
    v = table[i] - (((table[i] - table[i + 1]) * lo + 128) >> 8)   # Q30 2^(-f / 2^16)
    k = np.minimum(k, 31)
    return np.where(k < 31, (v + (np.int64(1) << (9 + k))) >> (10 + k), 0)


def _softmax_run(inputs, node, graph):
    x, out, table, m, n = _softmax_check(node, graph)
    q = np.asarray(inputs[0], dtype=np.int64)
    d = q.max(axis=-1, keepdims=True) - q
    if out.dtype == "s8":
        e, one = table[d], 256                                  # Q16, (N, ..., L)
    else:
        e, one = _exp_s16(d, table, m, n), 32768                # Q20
    s = e.sum(axis=-1, keepdims=True)                           # >= e(0)
    y = np.minimum((2 * one * e + s) // (2 * s), one - 1)
    return _finish(node, y + (-128 if out.dtype == "s8" else 0), out, len(q))


def _softmax_struct(node, graph):
    x, _, _, m, n = _softmax_check(node, graph)
    return dict(rows=_size(x) // x.shape[-1], len=x.shape[-1], multiplier=m, shift=n)


def _softmax_c(node, graph, ins, out_expr, symbols):
    dt = graph.tensor(node.outputs[0]).dtype
    return _block("softmax", _softmax_struct(node, graph), f"{symbols['table']}, {ins[0]}, {out_expr}", dtype=dt)


# ---------------------------------------------------------------- layernorm
def _layernorm_check(node: Node, graph: Graph):
    (x,), out = _io(node, graph, 1, ("s8", "s16"))
    c, c_max = (x.shape[-1] if x.shape else 0), LAYERNORM_MAX_CHANNELS[x.dtype]
    if tuple(x.shape) != tuple(out.shape) or not 1 <= c <= c_max:
        raise UnsupportedError(f"layernorm {node.name}: shapes {x.shape} -> {out.shape} "
                               f"(last axis in [1, {c_max}] for {x.dtype})")
    p = {"gamma": _param(node, "gamma", (c,), STORAGE[x.dtype][2]), "beta": _param(node, "beta", (c,), np.int32),
         "multiplier": _param(node, "multiplier", (c,), np.int32),
         "shift": _param(node, "shift", (c,), np.int8)}
    eps = _scalar(node, "eps")
    if np.any(p["shift"] < 1) or np.any(p["shift"] > 62) or np.any(p["multiplier"] < 0):
        raise UnsupportedError(f"layernorm {node.name}: a negative multiplier or a shift outside [1, 62]")
    if x.dtype == "s16" and np.abs(p["beta"].astype(np.int64)).max() > 1 << 29:
        raise UnsupportedError(f"layernorm {node.name}: s16 beta must stay within 2^29 (layernorm_params)")
    return x, out, c, eps, p


def _bit_length(v: np.ndarray) -> np.ndarray:
    v, bits = v.copy(), np.zeros_like(v)
    while np.any(v):
        bits += v > 0
        v >>= 1
    return bits


def _layernorm_run(inputs, node, graph):
    x, out, c, eps, p = _layernorm_check(node, graph)
    lo, hi = _clamp_range(node, out)
    q = np.asarray(inputs[0], dtype=np.int64)
    d = c * q - q.sum(axis=-1, keepdims=True)                            # (N, ..., C), units s_in / C
    w = (d * d).sum(axis=-1, keepdims=True) + c * eps                    # < 2^62
    f = (62 - _bit_length(w)) // 2
    t = isqrt(w << (2 * f))                                              # floor(sqrt(W) 2^F)
    r = np.where(w > 0, (np.int64(1) << 62) // np.maximum(t, 1), 0)
    sh = np.where(w > 0, 46 - f, 1)
    z = (d * r + (np.int64(1) << (sh - 1))) >> sh                        # round(2^16 d / sqrt(W))
    acc = p["gamma"].astype(np.int64) * z + p["beta"]                    # s8: int32; s16: < 2^31 + 2^29
    y = requantize(acc, p["multiplier"], p["shift"]) + out.zero_point
    return _finish(node, np.clip(y, lo, hi), out, len(q))


def _layernorm_struct(node, graph):
    x, out, c, eps, _ = _layernorm_check(node, graph)
    lo, hi = _clamp_range(node, out)
    return dict(rows=_size(x) // c, channels=c, eps=eps, out_zp=out.zero_point, act_min=lo, act_max=hi)


def _layernorm_c(node, graph, ins, out_expr, symbols):
    args = ", ".join(symbols[k] for k in ("gamma", "beta", "multiplier", "shift"))
    dt = graph.tensor(node.outputs[0]).dtype
    return _block("layernorm", _layernorm_struct(node, graph), f"{args}, {ins[0]}, {out_expr}", dtype=dt)


# ---------------------------------------------------------------- lut
def _lut_check(node, graph):
    (x,), out = _io(node, graph, 1, ("s8", "s16"))
    if tuple(x.shape) != tuple(out.shape):
        raise UnsupportedError(f"lut {node.name}: shapes {x.shape} -> {out.shape} differ")
    shape = (256,) if x.dtype == "s8" else (LUT16_KNOTS,)
    return x, out, _param(node, "table", shape, STORAGE[x.dtype][2])


def _lut_run(inputs, node, graph):
    x, out, table = _lut_check(node, graph)
    q, table = np.asarray(inputs[0], dtype=np.int64), table.astype(np.int64)
    if x.dtype == "s8":
        return _finish(node, table[q + 128], out, len(q))
    u = q + 32768                                                       # s16: interpolate knots
    i, fr = u >> 7, u & (LUT16_STEP - 1)
    y = table[i] + (((table[i + 1] - table[i]) * fr + LUT16_STEP // 2) >> 7)
    return _finish(node, y, out, len(q))


def _lut_struct(node, graph):
    return dict(size=_size(_lut_check(node, graph)[0]))


def _lut_c(node, graph, ins, out_expr, symbols):
    dt = graph.tensor(node.outputs[0]).dtype
    return _block("lut", _lut_struct(node, graph), f"{symbols['table']}, {ins[0]}, {out_expr}", dtype=dt)


# ---------------------------------------------------------------- transpose, reshape, concat
def _transpose_check(node, graph):
    (x,), out = _io(node, graph, 1, ("s8", "s16"))
    _same_q(node, [x], out)
    perm = tuple(int(a) for a in node.attrs.get("perm", ()))
    if sorted(perm) != list(range(len(x.shape))) or not 1 <= len(perm) <= TRANSPOSE_MAX_RANK:
        raise UnsupportedError(f"transpose {node.name}: perm {perm} is not a permutation of the "
                               f"{len(x.shape)} axes of {x.shape} (rank <= {TRANSPOSE_MAX_RANK})")
    if tuple(out.shape) != tuple(x.shape[a] for a in perm):
        raise UnsupportedError(f"transpose {node.name}: {x.shape} permuted by {perm} is not {out.shape}")
    return x, out, perm


def _transpose_run(inputs, node, graph):
    x, out, perm = _transpose_check(node, graph)
    q = np.asarray(inputs[0])
    return _finish(node, np.transpose(q, (0, *(a + 1 for a in perm))), out, len(q))


def _transpose_struct(node, graph):
    x, _, perm = _transpose_check(node, graph)
    return dict(rank=len(perm), in_dims=tuple(x.shape), perm=perm)


def _transpose_c(node, graph, ins, out_expr, symbols):
    dt = graph.tensor(node.outputs[0]).dtype
    return _block("transpose", _transpose_struct(node, graph), f"{ins[0]}, {out_expr}", dtype=dt)


def _reshape_check(node, graph):
    (x,), out = _io(node, graph, 1, ("s8", "s16"))
    _same_q(node, [x], out)
    if _size(x) != _size(out):
        raise UnsupportedError(f"reshape {node.name}: {x.shape} and {out.shape} differ in size")
    return x, out


def _reshape_run(inputs, node, graph):
    x, out = _reshape_check(node, graph)
    q = np.asarray(inputs[0])
    return _finish(node, q.reshape((len(q), *out.shape)), out, len(q))


def _reshape_c(node, graph, ins, out_expr, symbols):
    x, _ = _reshape_check(node, graph)      # any dtype: a byte copy
    n = _size(x) * np.dtype(STORAGE[x.dtype][2]).itemsize
    return f"{{\n    PQLR_CHECK(pqlr_reshape_s8({n}, (const int8_t *)({ins[0]}), (int8_t *)({out_expr})));\n}}"


def _concat_check(node, graph):
    ins, out = _io(node, graph, None, ("s8", "s16"))
    _same_q(node, ins, out)
    rank = len(out.shape)
    axis = int(node.attrs.get("axis", -1))
    axis = axis + rank if axis < 0 else axis
    ok = 0 <= axis < rank and 1 <= len(ins) <= CONCAT_MAX_INPUTS and all(
        len(t.shape) == rank and t.shape[:axis] == out.shape[:axis] and t.shape[axis + 1:] == out.shape[axis + 1:]
        for t in ins) and sum(t.shape[axis] for t in ins if len(t.shape) == rank) == out.shape[axis]
    if not ok:
        raise UnsupportedError(f"concat {node.name}: cannot concatenate {[tuple(t.shape) for t in ins]} "
                               f"into {tuple(out.shape)} along axis {node.attrs.get('axis', -1)} "
                               f"(at most {CONCAT_MAX_INPUTS} inputs)")
    return ins, out, axis


def _concat_run(inputs, node, graph):
    ins, out, axis = _concat_check(node, graph)
    return _finish(node, np.concatenate([np.asarray(q) for q in inputs], axis=axis + 1), out, len(inputs[0]))


def _concat_struct(node, graph):
    tensors, out, axis = _concat_check(node, graph)
    inner = int(np.prod(out.shape[axis + 1:], dtype=np.int64))
    return dict(n_inputs=len(tensors), outer=int(np.prod(out.shape[:axis], dtype=np.int64)),
                chunk=[t.shape[axis] * inner for t in tensors])


def _concat_c(node, graph, ins, out_expr, symbols):
    dt = graph.tensor(node.outputs[0]).dtype
    ct = "int8_t" if dt == "s8" else "int16_t"
    return _block("concat", _concat_struct(node, graph), f"ins, {out_expr}",
                  f"    const {ct} *const ins[] = {{{', '.join(ins)}}};\n", dtype=dt)


def _elements(node, graph):
    return _size(graph.tensor(node.outputs[0]))


STRUCTS = {   # op -> (node, graph) -> values of its C params struct (c_call; tests call C with them)
    "matmul": _matmul_struct, "softmax": _softmax_struct, "layernorm": _layernorm_struct,
    "lut": _lut_struct, "transpose": _transpose_struct, "concat": _concat_struct,
}

_OPS = {   # name -> (run, c_call, macs); transpose/reshape/concat only move data
    "matmul": (_matmul_run, _matmul_c, _matmul_macs),
    "softmax": (_softmax_run, _softmax_c, _elements),
    "layernorm": (_layernorm_run, _layernorm_c, lambda n, g: 2 * _elements(n, g)),
    "lut": (_lut_run, _lut_c, _elements),
    "transpose": (_transpose_run, _transpose_c, lambda n, g: 0),
    "reshape": (_reshape_run, _reshape_c, lambda n, g: 0),
    "concat": (_concat_run, _concat_c, lambda n, g: 0),
}


# ---------------------------------------------------------------- the op table
TABLE = {name: OpDef(name, run, c_call, no_scratch, macs) for name, (run, c_call, macs) in _OPS.items()}
TF_OPS = TABLE
