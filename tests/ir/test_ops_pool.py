"""Pooling ops (pqlr.ir.ops_pool): the NumPy oracle and the C reference kernels agree bit for bit
(hypothesis through ctypes, UBSan build; once as a standalone ASan+UBSan driver via OpDef.c_call)."""
from __future__ import annotations

import numpy as np

import cdriver
from cdriver import POOL_SOURCES
from opcases import SEEDS, SETTINGS, check, driver_source, graph_of, pick, rand_clamp, rand_multipliers, rand_tensor, rand_values
from pqlr.ir.graph import Tensor
from pqlr.ir.ops_pool import TABLE, pool_attrs


def test_struct_layout_matches_header(pool_lib):
    assert pool_lib.pqlr_layout_mismatches() == 0


@SETTINGS
@SEEDS
def test_avg_pool_and_mean_match_c(pool_lib, seed):
    rng = np.random.default_rng(seed)
    dtype, op = pick(rng, ["s8", "s16"]), pick(rng, ["avg_pool2d", "avg_pool2d", "mean", "mean_tokens"])
    h, w, c = (int(v) for v in rng.integers(1, [9, 9, 6]))
    attrs: dict = {}
    if op == "avg_pool2d":
        pads = tuple(int(v) for v in rng.integers(0, 2, 4))
        kh = int(rng.integers(1, min(4, h + pads[0] + pads[2]) + 1))
        kw = int(rng.integers(1, min(4, w + pads[1] + pads[3]) + 1))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        in_shape = (h, w, c)
        out_shape = ((h + pads[0] + pads[2] - kh) // sh + 1, (w + pads[1] + pads[3] - kw) // sw + 1, c)
        attrs.update(kernel=(kh, kw), stride=(sh, sw), padding=pads)
        window = kh * kw
    else:             # global average pool (H, W, C) or mean over tokens (T, C)
        in_shape = (h, w, c) if op == "mean" else (h, c)
        out_shape = pick(rng, [(c,), (1, 1, c)])
        window = h * w if op == "mean" else h
    x_t, y_t = rand_tensor(rng, "x", in_shape, dtype), rand_tensor(rng, "y", out_shape, dtype)
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    if rng.random() < 0.5:
        attrs.update(pool_attrs(x_t, y_t, window))
    else:
        m, n = rand_multipliers(rng, 1, np.sqrt(window) * (np.std(x.astype(float)) + 1), y_t)
        attrs.update(multiplier=int(m[0]), shift=int(n[0]))
    node, g = graph_of("mean" if op.startswith("mean") else op, [x_t], y_t, {**attrs, **rand_clamp(rng, y_t)})
    check(pool_lib, node, g, [x])


def test_mean_follows_the_float_mean():
    x_t, y_t = Tensor("x", (6, 5, 3), "s8", 8, 0.1, 4), Tensor("y", (3,), "s8", 8, 0.02, -7)
    node, g = graph_of("mean", [x_t], y_t, pool_attrs(x_t, y_t, 30))
    x = np.random.default_rng(6).integers(-128, 128, (4, 6, 5, 3)).astype(np.int8)
    y = TABLE["mean"].run([x], node, g)
    real = ((x.astype(float) - 4) * 0.1).mean(axis=(1, 2))
    assert np.max(np.abs(np.clip(real / 0.02 - 7, -128, 127) - y)) <= 1.0


def test_c_call_code_in_sanitized_driver():
    rng = np.random.default_rng(12)
    cases = []
    for dtype in ("s8", "s16"):
        x_t, y_t = rand_tensor(rng, "x", (7, 5, 3), dtype), rand_tensor(rng, "y", (3, 2, 3), dtype)
        attrs = {"kernel": (3, 3), "stride": (2, 2), "padding": (0, 0, 1, 0), **pool_attrs(x_t, y_t, 9)}
        node, g = graph_of("avg_pool2d", [x_t], y_t, attrs)
        cases.append((node, g, [rand_values(rng, x_t, 1)[0]], {}))
        x_t, y_t = rand_tensor(rng, "x", (25, 7), dtype), rand_tensor(rng, "y", (7,), dtype)
        node, g = graph_of("mean", [x_t], y_t, pool_attrs(x_t, y_t, 25))
        cases.append((node, g, [rand_values(rng, x_t, 1)[0]], {}))
    assert {n.op for n, *_ in cases} == set(TABLE)
    proc = cdriver.run_program(driver_source(cases), POOL_SOURCES, name="pool_driver")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"0 of {len(cases)} cases differ" in proc.stdout
