"""Shared helpers of the IR op tests: one-node graphs, C through ctypes vs the oracle, random
tensors, values, clamps, multipliers and weighted layers (hypothesis draws a seed, these draw the rest).
"""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdriver
from pqlr import primitives as P
from pqlr.ir.graph import Graph, Node, Tensor
from pqlr.ir.ops import OPS, c_kernel

INT32_MAX = 2**31 - 1
RANGE = {"s8": (-128, 127), "s16": (-32768, 32767)}
NP = {"s8": np.int8, "s16": np.int16}
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
SEEDS = given(seed=st.integers(0, 2**32 - 1))


def graph_of(op: str, ins: list[Tensor], out: Tensor, attrs=None, params=None) -> tuple[Node, Graph]:
    node = Node("layer0", op, [t.name for t in ins], [out.name], dict(attrs or {}), dict(params or {}))
    g = Graph({t.name: t for t in [*ins, out]}, [node], [t.name for t in ins], [out.name])
    g.validate()
    return node, g


def struct_fields() -> dict[str, tuple[str, ...]]:
    """Every op module's C struct field order, by struct type."""
    import importlib

    from pqlr.ir.ops import MODULES
    out: dict = {}
    for name in MODULES:
        out.update(getattr(importlib.import_module(f"pqlr.ir.{name}"), "STRUCT_FIELDS", {}))
    return out


def ctypes_struct(k):
    """A ctypes instance of kernel k's int32 parameter struct ("name[N]" fields are int32_t[N])."""
    import ctypes
    fields, values = [], {}
    for spec in struct_fields()[k.struct_type]:
        f, n = cdriver.field_spec(spec)
        v = k.fields[f]
        if n:
            v = [int(a) for a in v]
            fields.append((f, ctypes.c_int32 * n))
            values[f] = (ctypes.c_int32 * n)(*(v + [0] * (n - len(v))))
        else:
            fields.append((f, ctypes.c_int32))
            values[f] = int(v)
    return type(k.struct_type, (ctypes.Structure,), {"_fields_": fields})(**values)


def run_c(lib, node: Node, g: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    """Run the node's C kernel sample by sample through ctypes."""
    k = c_kernel(node, g)
    params = ctypes_struct(k)
    out_t = g.tensor(node.outputs[0])
    y = np.zeros((inputs[0].shape[0], *out_t.shape), NP[out_t.dtype])
    arrays = {name: np.ascontiguousarray(v) for name, v in node.params.items()}
    for i in range(y.shape[0]):
        per = {**arrays, "out": y[i], **{f"in{j}": np.ascontiguousarray(x[i]) for j, x in enumerate(inputs)}}
        status = cdriver.call(lib, k.fn, params, *[per.get(a) for a in k.args])
        assert status == 0, f"{k.fn} returned {status}"
    return y


def check(lib, node: Node, g: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    want = OPS[node.op].run(inputs, node, g)
    got = run_c(lib, node, g, inputs)
    assert want.dtype == got.dtype and want.shape == got.shape
    np.testing.assert_array_equal(got, want)
    return want


def pick(rng, options):
    return options[int(rng.integers(len(options)))]


def rand_tensor(rng, name: str, shape, dtype: str) -> Tensor:
    """s8 holds 8-bit or 4-bit values (random zero point); s16 has zero point 0."""
    bits = 16 if dtype == "s16" else pick(rng, [8, 8, 4])
    lo, hi = P.act_range(bits)
    zp = 0 if dtype == "s16" else int(rng.integers(lo, hi + 1))
    return Tensor(name, tuple(shape), dtype, bits, float(2.0 ** rng.uniform(-8, 0)), zp)


def rand_values(rng, t: Tensor, n: int) -> np.ndarray:
    """Random values, or all at an extreme (min, max, or farthest from the zero point)."""
    lo, hi = P.act_range(t.bits)
    kind = pick(rng, ["random"] * 9 + ["min", "max", "far"])
    far = lo if t.zero_point - lo >= hi - t.zero_point else hi
    shape = (n, *t.shape)
    v = rng.integers(lo, hi + 1, shape) if kind == "random" else np.full(shape, {"min": lo, "max": hi, "far": far}[kind])
    return v.astype(NP[t.dtype])


def rand_clamp(rng, out: Tensor) -> dict:
    lo, hi = P.act_range(out.bits)
    if rng.random() < 0.2:
        a, b = sorted(int(v) for v in rng.integers(lo, hi + 1, 2))
        return {"act_min": a, "act_max": b}
    return {}


def rand_multipliers(rng, count: int, acc_spread: float, out: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mostly multipliers that map the accumulator spread onto a third of the output range (so a
    wrong accumulator shows), also tiny (below 2^-31: output = zero point), huge (saturation)
    and exactly zero."""
    kind = pick(rng, ["typical"] * 9 + ["tiny", "huge", "zero"])
    if kind == "zero":
        reals = np.zeros(count)
    else:
        lo, hi = P.act_range(out.bits)
        base = {"typical": (hi - lo) / 3 / max(acc_spread, 1.0), "tiny": 2.0**-40, "huge": 2.0**8}[kind]
        reals = base * 2.0 ** rng.uniform(-2, 2, count)
    pairs = [P.quantize_multiplier(float(r)) for r in reals]
    return np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int8)


def rand_weighted(rng, c_out: int, k: int, in_t: Tensor, x: np.ndarray, out: Tensor):
    """(wbits, params, fits): packed weights, bias (random, at the accumulator's edge, or none),
    multipliers; fits is False when no bias keeps |bias| + accumulator_bound within int32."""
    wbits = pick(rng, [8, 4, 2, 1])
    lo, hi = P.weight_range(wbits)
    if wbits == 1:
        q = rng.choice([-1, 1], (c_out, k))
    elif rng.random() < 0.2:
        q = np.full((c_out, k), lo)          # max-magnitude weights
    else:
        q = rng.integers(lo, hi + 1, (c_out, k))
    xc = x.astype(np.float64) - in_t.zero_point                  # rough size of the accumulator
    spread = np.sqrt(k) * np.sqrt(np.mean(xc**2)) * np.sqrt(np.mean(q**2.0)) + k * abs(xc.mean() * q.mean())
    room = INT32_MAX - P.accumulator_bound(k, 16 if in_t.dtype == "s16" else 8, wbits)
    params = {"weight": P.pack_weights(q, wbits)}
    kind = pick(rng, ["random"] * 5 + ["none"] * 4 + ["edge"])
    if room >= 0 and kind == "random":     # of the accumulator's size, so it shows in the output
        b = min(room, int(spread) + 1)
        params["bias"] = rng.integers(-b, b + 1, c_out).astype(np.int32)
    elif room >= 0 and kind == "edge":     # |bias| + accumulator_bound = 2^31 - 1 exactly
        params["bias"] = (rng.choice([-1, 1], c_out) * room).astype(np.int32)
    m, n = rand_multipliers(rng, pick(rng, [1, c_out]), spread, out)
    params.update(multiplier=m, shift=n)
    return wbits, params, room >= 0


def weighted_layer(rng, op: str, in_shape, out_shape, wbits: int, dtype: str, **attrs):
    """A layer with random packed weights/bias and realistic per-channel multipliers."""
    x_t = Tensor("x", in_shape, dtype, 16 if dtype == "s16" else 8, 0.05, 0 if dtype == "s16" else -3)
    y_t = Tensor("y", out_shape, dtype, x_t.bits, 0.07, 0 if dtype == "s16" else 5)
    c_out = out_shape[-1]
    kh, kw = attrs.get("kernel", (1, 1))
    k = {"conv2d": kh * kw * in_shape[-1], "depthwise_conv2d": kh * kw}.get(op, in_shape[-1])
    lo, hi = P.weight_range(wbits)
    q = rng.choice([-1, 1], (c_out, k)) if wbits == 1 else rng.integers(lo, hi + 1, (c_out, k))
    x = rand_values(np.random.default_rng(1), x_t, 2)
    xc = x.astype(np.float64) - x_t.zero_point
    spread = np.sqrt(k) * np.sqrt(np.mean(xc**2)) * np.sqrt(np.mean(q**2.0))
    lo_o, hi_o = P.act_range(y_t.bits)     # accumulator spread -> a quarter of the output range
    pairs = [P.quantize_multiplier((hi_o - lo_o) / 4 / spread * r) for r in 2.0 ** rng.uniform(-1, 1, c_out)]
    m, n = (np.array(v, dt) for v, dt in zip(zip(*pairs), (np.int32, np.int8)))
    params = {"weight": P.pack_weights(q, wbits), "bias": rng.integers(-2000, 2000, c_out).astype(np.int32),
              "multiplier": m, "shift": n}
    node, g = graph_of(op, [x_t], y_t, {"wbits": wbits, **attrs}, params)
    return node, g, x



def driver_source(cases) -> str:
    """A C program running every case through the code that OpDef.c_call emits."""
    lines = ['#include <stdio.h>', '#include <string.h>', '#include "pqlr.h"', '']
    checks = []
    for c, (node, g, xs, tile) in enumerate(cases):
        want = OPS[node.op].run([x[None] for x in xs], node, g)[0]
        out = want.copy()
        if tile:                                      # only the tile's channels get (re)written
            out[..., tile["ch_begin"]:tile["ch_end"]] = 99
        symbols = {**{k: f"c{c}_{k}" for k in node.params}, **{k: str(v) for k, v in tile.items()}}
        for k, v in node.params.items():
            if k == "weight" and tile:                # a tile buffer holding only its rows
                v = v[tile["ch_begin"]:tile["ch_end"]]
            lines.append(cdriver.c_array(f"c{c}_{k}", np.asarray(v)))
        lines += [cdriver.c_array(f"c{c}_in{i}", x) for i, x in enumerate(xs)]
        lines.append(cdriver.c_array(f"c{c}_want", want))
        lines.append(cdriver.c_array(f"c{c}_out", out).replace("static const", "static"))
        call = OPS[node.op].c_call(node, g, [f"c{c}_in{i}" for i in range(len(xs))], f"c{c}_out", symbols)
        lines += [f"static pqlr_status case_{c}(void)", "{", call, "    return PQLR_OK;", "}", ""]
        checks.append(f'    if (case_{c}() != PQLR_OK || memcmp(c{c}_out, c{c}_want, sizeof c{c}_want)) {{\n'
                      f'        printf("case {c} ({node.op}) differs\\n");\n        bad++;\n    }}')
    return "\n".join(lines + ["int main(void)", "{", "    int bad = 0;", *checks,
                              f'    printf("%d of {len(cases)} cases differ\\n", bad);',
                              "    return bad != 0;", "}", ""])
