"""What every integer op module of the IR shares: the `OpDef` record, argument checks that name the
layer, the output clamp, per-channel multipliers, and the emission of one C kernel call.

An op module (ops_nn, ops_elem, ops_pool, ops_shape, ops_tf) defines, per op, a NumPy oracle
`run(inputs, node, graph)`, a C call `c_call(node, graph, ins, out, symbols)`, `scratch_bytes` and
`macs`, and exposes them as `TABLE: dict[str, OpDef]`. Modules whose ops call one kernel with an
all-int32 parameter struct also expose `KERNELS: dict[str, (node, graph) -> CKernel]` (the kernel as
data: tests call it through ctypes, ir.ops_select renames it) and `STRUCT_FIELDS` (the struct field
order, which a test checks against the C header).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .. import primitives as P
from ..errors import UnsupportedError
from .graph import DTYPES, Graph, Node, Tensor

INT32_MAX = 2**31 - 1
STORAGE = {"s8": (-128, 127, "int8_t"), "s16": (-32768, 32767, "int16_t")}


@dataclass(frozen=True)
class OpDef:
    """One IR op: oracle, C call, scratch and MAC count (see ir.ops)."""
    name: str
    run: Callable[[list[np.ndarray], Node, Graph], np.ndarray]
    c_call: Callable[[Node, Graph, list[str], str, dict[str, str]], str]
    scratch_bytes: Callable[[Node, Graph], int]
    macs: Callable[[Node, Graph], int]


# ---------------------------------------------------------------- builders ("decide")
def quant_multipliers(real) -> tuple[np.ndarray, np.ndarray]:
    """Real multipliers (array) -> int32 multiplier and int8 shift arrays (primitives.quantize_multiplier).
    The shift is in [1, 62], so one byte per channel holds it (int32 would be 3 wasted flash bytes each)."""
    pairs = [P.quantize_multiplier(float(r)) for r in np.atleast_1d(np.asarray(real, np.float64))]
    return (np.array([m for m, _ in pairs], np.int32), np.array([n for _, n in pairs], np.int8))


def activation_clamp(out: Tensor, kind: str | None, lo_real: float | None = None,
                     hi_real: float | None = None) -> dict[str, int]:
    """act_min / act_max at the output's qparams for no activation, "relu", "relu6", or "hardtanh"
    (clamp to [lo_real, hi_real] in real units)."""
    lo, hi = P.act_range(out.bits)
    if kind == "relu6":
        kind, lo_real, hi_real = "hardtanh", 0.0, 6.0
    if kind == "relu":
        lo = max(lo, out.zero_point)
    elif kind == "hardtanh":                          # a bound of None is open
        if lo_real is not None:
            lo = max(lo, out.zero_point + int(P.round_half_up(lo_real / out.scale)))
        if hi_real is not None:
            hi = min(hi, out.zero_point + int(P.round_half_up(hi_real / out.scale)))
        if lo > hi:
            raise UnsupportedError(f"clamp [{lo_real}, {hi_real}] is empty at scale {out.scale:.3g}")
    elif kind is not None:
        raise UnsupportedError(f"activation {kind!r} cannot be folded into an output clamp")
    return {"act_min": int(lo), "act_max": int(hi)}


def conv_output_size(size: int, kernel: int, stride: int, pad_before: int, pad_after: int,
                     dilation: int = 1) -> int:
    return (size + pad_before + pad_after - dilation * (kernel - 1) - 1) // stride + 1


# ---------------------------------------------------------------- checks that name the layer
def fail(node: Node, msg: str) -> UnsupportedError:
    return UnsupportedError(f"layer {node.name} ({node.op}): {msg}")


def io(node: Node, graph: Graph, n_in: int) -> tuple[list[Tensor], Tensor]:
    """The node's input tensors and its output; s8/s16 only, zero points inside the storage range."""
    if len(node.inputs) != n_in or len(node.outputs) != 1:
        raise fail(node, f"expects {n_in} input(s) and 1 output, got {len(node.inputs)} and {len(node.outputs)}")
    ins = [graph.tensor(t) for t in node.inputs]
    out = graph.tensor(node.outputs[0])
    for t in [*ins, out]:
        if t.dtype not in STORAGE:
            raise fail(node, f"tensor {t.name} has dtype {t.dtype!r}; only s8 and s16 are supported")
        lo, hi, _ = STORAGE[t.dtype]
        if not lo <= t.zero_point <= hi:
            raise fail(node, f"tensor {t.name} zero point {t.zero_point} outside its {t.dtype} range")
    return ins, out


def same_dtype(node: Node, ins: list[Tensor], out: Tensor) -> str:
    for t in ins:
        if t.dtype != out.dtype:
            raise fail(node, f"input {t.name} is {t.dtype} but output {out.name} is {out.dtype} "
                             "(insert a requantize)")
    return out.dtype


def pair(node: Node, key: str, default: tuple[int, ...] | None, n: int = 2) -> tuple[int, ...]:
    """Attribute `key` as n ints (a single int is repeated)."""
    v = node.attrs.get(key, default)
    if v is None:
        raise fail(node, f"missing attribute {key!r}")
    try:
        v = tuple(int(a) for a in (v if isinstance(v, (tuple, list, np.ndarray)) else (v,) * n))
    except (TypeError, ValueError):
        raise fail(node, f"attribute {key}={v!r} is not a list of integers") from None
    if len(v) != n:
        raise fail(node, f"attribute {key}={v} needs {n} values")
    return v


def clamp(node: Node, out: Tensor) -> dict[str, int]:
    """The node's act_min / act_max (default: the output's bit range), checked against its storage."""
    lo, hi = P.act_range(out.bits)
    lo, hi = int(node.attrs.get("act_min", lo)), int(node.attrs.get("act_max", hi))
    s_lo, s_hi, _ = STORAGE[out.dtype]
    if not s_lo <= lo <= hi <= s_hi:
        raise fail(node, f"output clamp [{lo}, {hi}] is not inside the {out.dtype} range")
    return {"act_min": lo, "act_max": hi}


def span(t: Tensor) -> int:
    """max |x - zero_point| over the storage range of t."""
    lo, hi, _ = STORAGE[t.dtype]
    return max(hi - t.zero_point, t.zero_point - lo)


def scalar_quant(node: Node, m_key: str = "multiplier", n_key: str = "shift") -> tuple[int, int]:
    m, n = int(node.attrs.get(m_key, -1)), int(node.attrs.get(n_key, 0))
    if not (0 <= m <= INT32_MAX and 1 <= n <= 62):
        raise fail(node, f"{m_key}={m}, {n_key}={n} outside m in [0, 2^31), n in [1, 62]")
    return m, n


def channel_quant(node: Node, out_c: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (or per-tensor) multiplier int32 / shift int8 params as int64 arrays."""
    for key, dt in (("multiplier", np.int32), ("shift", np.int8)):
        if key not in node.params or np.asarray(node.params[key]).dtype != dt:
            raise fail(node, f"param {key!r} must be an {np.dtype(dt).name} array (deployed as {np.dtype(dt).name}_t)")
    m = node.params["multiplier"].astype(np.int64).ravel()
    n = node.params["shift"].astype(np.int64).ravel()
    if m.shape != n.shape or m.size not in (1, out_c):
        raise fail(node, f"multiplier/shift lengths {m.size}/{n.size}; need 1 or {out_c}")
    if m.min() < 0 or m.max() > INT32_MAX or n.min() < 1 or n.max() > 62:
        raise fail(node, "multiplier outside [0, 2^31) or shift outside [1, 62]")
    return m, n


def finish(acc: np.ndarray, m, n, zp_out: int, clamp_: dict[str, int], out: Tensor) -> np.ndarray:
    """requantize(acc, m, n) + zp_out, clamped, in the output's storage dtype."""
    y = P.requantize(acc, m, n) + zp_out
    return np.clip(y, clamp_["act_min"], clamp_["act_max"]).astype(DTYPES[out.dtype])


def shape_check(node: Node, x: np.ndarray, t: Tensor) -> np.ndarray:
    if tuple(x.shape[1:]) != tuple(t.shape):
        raise fail(node, f"input batch {x.shape} does not match tensor {t.name} {t.shape}")
    return x.astype(np.int64)


def elements(node: Node, graph: Graph) -> int:
    return graph.tensor(node.outputs[0]).size


def no_scratch(node: Node, graph: Graph) -> int:
    return 0


def no_macs(node: Node, graph: Graph) -> int:
    return 0


# ---------------------------------------------------------------- one C kernel call
@dataclass(frozen=True)
class CKernel:
    """One C kernel call: `fn(&p, <args>)` with `p` a `struct_type` initialised from `fields`.

    args name the pointer arguments in order: "in0", "in1" (inputs), "out" (output) and param names
    ("weight", "bias", "multiplier", "shift", ...); a param absent from node.params is passed as NULL."""
    fn: str
    struct_type: str
    fields: dict[str, int]
    args: tuple[str, ...]


def tile_range(struct: dict[str, int], symbols: dict[str, str], n_ch: int) -> dict[str, int]:
    """ch_begin / ch_end of a weight tile (symbols), checked against the layer's channels."""
    b, e = int(symbols.get("ch_begin", 0)), int(symbols.get("ch_end", n_ch))
    if not 0 <= b < e <= n_ch:
        raise UnsupportedError(f"weight tile channels [{b}, {e}) outside [0, {n_ch})")
    return {**struct, "ch_begin": b, "ch_end": e}


def emit_call(k: CKernel, names: tuple[str, ...], node: Node, ins: list[str], out: str,
              symbols: dict[str, str]) -> str:
    """`{ static const <struct> p = {...}; PQLR_CHECK(fn(&p, ...)); }` for kernel k; `names` is the
    struct's field order, each "name" (int32_t) or "name[N]" (int32_t[N]; the value is a list of at
    most N ints, C zero-fills the rest)."""
    fields = k.fields
    if "ch_begin" in fields:
        fields = tile_range(fields, symbols, fields["ch_end"])
    names = tuple(spec.partition("[")[0] for spec in names)     # "name[N]": an int32_t[N] array field
    if set(fields) != set(names):
        raise fail(node, f"kernel {k.fn}: struct fields {sorted(set(fields) ^ set(names))} do not match")
    exprs = {"out": out, **{f"in{i}": e for i, e in enumerate(ins)}}
    if "scratch" in k.args:                       # in-place kernels: the planned scratch buffer
        if "scratch" not in symbols:
            raise fail(node, "runs in place but no scratch buffer was planned")
        exprs["scratch"] = symbols["scratch"]
    for a in k.args:
        if a not in exprs:
            exprs[a] = "NULL" if a not in node.params else (
                f"(const int8_t *){symbols[a]}" if a == "weight" else symbols[a])

    def value(v) -> str:
        if isinstance(v, (list, tuple, np.ndarray)):
            return "{" + ", ".join(str(int(x)) for x in v) + "}"
        return str(int(v))
    init = textwrap.fill(", ".join(f".{f}={value(fields[f])}" for f in names), 92, break_on_hyphens=False,
                         break_long_words=False, initial_indent=" " * 8,
                         subsequent_indent=" " * 8).replace("=", " = ")
    call = f"{k.fn}(&p, {', '.join(exprs[a] for a in k.args)})"
    return f"{{\n    static const {k.struct_type} p = {{\n{init}}};\n    PQLR_CHECK({call});\n}}"


def kernel_table(kernels: dict[str, Callable[[Node, Graph], CKernel]], structs: dict[str, tuple[str, ...]],
                 specs: dict[str, tuple[Callable, Callable, Callable]]) -> dict[str, OpDef]:
    """TABLE of a module whose ops each call one CKernel: specs op -> (run, scratch_bytes, macs)."""
    def c_call(node, graph, ins, out, symbols):
        k = kernels[node.op](node, graph)
        return emit_call(k, structs[k.struct_type], node, ins, out, symbols)
    return {name: OpDef(name, run, c_call, scratch, macs) for name, (run, scratch, macs) in specs.items()}
