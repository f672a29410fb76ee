"""Pooling ops (pqlr.ir.ops_pool): the NumPy oracle and the C reference kernels agree bit for bit
(hypothesis through ctypes, UBSan build; once as a standalone ASan+UBSan driver via OpDef.c_call),
each op follows PyTorch on dequantized inputs (within 1 LSB; max pooling exactly), and bad layers are
refused by the oracle (naming the layer) and by the C (PQLR_ERR_ARG, nothing written)."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cdriver
from cdriver import POOL_SOURCES
from opcases import (NP, SEEDS, SETTINGS, check, ctypes_struct, driver_source, graph_of, pick, rand_clamp,
                     rand_multipliers, rand_tensor, rand_values)
from pqlr import primitives as P
from pqlr.errors import UnsupportedError
from pqlr.ir.graph import Tensor
from pqlr.ir.ops import c_kernel
from pqlr.ir.ops_pool import TABLE, adaptive_avg_params, avg_pool_params, mean_attrs, pool_attrs


def test_struct_layout_matches_header(pool_lib):
    assert pool_lib.pqlr_layout_mismatches() == 0


# ---------------------------------------------------------------- random layers
def rand_window(rng, rank: int, dilated: bool):
    """(in_shape, out_shape, attrs, (rows, cols) in-bounds taps per output row / column): odd sizes,
    padding up to kernel - 1 on any side, strides 1-3, dilation 1-3; a rank-2 input sometimes gets
    the 1-D attr forms (int kernel / stride / padding)."""
    while True:
        h, w, c = int(rng.integers(1, 10)), 1 if rank == 2 else int(rng.integers(1, 10)), int(rng.integers(1, 6))
        kh, kw = int(rng.integers(1, 5)), 1 if rank == 2 else int(rng.integers(1, 5))
        sh, sw = (int(v) for v in rng.integers(1, 4, 2))
        dh, dw = (int(v) for v in rng.integers(1, 4, 2)) if dilated else (1, 1)
        dw = 1 if rank == 2 else dw
        pads = tuple(int(rng.integers(0, k)) for k in (kh, kw, kh, kw))
        eh, ew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        if h + pads[0] + pads[2] >= eh and w + pads[1] + pads[3] >= ew:
            break
    oh, ow = (h + pads[0] + pads[2] - eh) // sh + 1, (w + pads[1] + pads[3] - ew) // sw + 1
    attrs = {"kernel": (kh, kw), "stride": (sh, sw), "padding": pads}
    if dilated:
        attrs["dilation"] = (dh, dw)
    if rank == 2 and rng.random() < 0.5:                   # the 1-D forms
        attrs.update(kernel=kh, stride=sh)
        if dilated:
            attrs["dilation"] = dh
        if pads[0] == pads[2]:
            attrs["padding"] = pads[0]

    def taps(size, n, k, s, p, d):
        return np.array([sum(0 <= o * s - p + j * d < size for j in range(k)) for o in range(n)])
    in_shape, out_shape = ((h, w, c), (oh, ow, c)) if rank == 3 else ((h, c), (oh, c))
    return in_shape, out_shape, attrs, (taps(h, oh, kh, sh, pads[0], dh), taps(w, ow, kw, sw, pads[1], dw))


def same_quant(x_t: Tensor, name: str, shape) -> Tensor:
    return Tensor(name, tuple(shape), x_t.dtype, x_t.bits, x_t.scale, x_t.zero_point)


def spread(x: np.ndarray, window: int) -> float:
    return float(np.sqrt(window) * (np.std(x.astype(float)) + 1))


def rerandomize(rng, attrs: dict, params: dict, window: int, x: np.ndarray, y_t: Tensor) -> tuple[dict, dict]:
    """Sometimes replace the builder's multipliers by random ones (tiny, huge, zero too)."""
    if rng.random() < 0.7:
        return attrs, params
    if params:
        m, n = rand_multipliers(rng, params["counts"].size, spread(x, window), y_t)
        return attrs, {**params, "multiplier": m, "shift": n}
    m, n = rand_multipliers(rng, 1, spread(x, window), y_t)
    return {**attrs, "multiplier": int(m[0]), "shift": int(n[0])}, params


# ---------------------------------------------------------------- oracle == C
@SETTINGS
@SEEDS
def test_avg_pool_matches_c(pool_lib, seed):
    rng = np.random.default_rng(seed)
    dtype, rank, cip = pick(rng, ["s8", "s16"]), pick(rng, [2, 3]), bool(rng.random() < 0.5)
    in_shape, out_shape, attrs, _ = rand_window(rng, rank, dilated=False)
    x_t, y_t = rand_tensor(rng, "x", in_shape, dtype), rand_tensor(rng, "y", out_shape, dtype)
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    attrs, params = avg_pool_params(x_t, y_t, attrs["kernel"], attrs["stride"], attrs["padding"], cip)
    attrs, params = rerandomize(rng, attrs, params, int(np.prod(attrs["kernel"])), x, y_t)
    node, g = graph_of("avg_pool2d", [x_t], y_t, {**attrs, **rand_clamp(rng, y_t)}, params)
    assert c_kernel(node, g).fn.startswith("pqlr_avg_pool2d_var_" if params else f"pqlr_avg_pool2d_{dtype}")
    check(pool_lib, node, g, [x])


@SETTINGS
@SEEDS
def test_adaptive_avg_pool_matches_c(pool_lib, seed):
    """Output sizes that divide the input (the uniform avg_pool2d path), that do not (count table),
    and larger than the input (overlapping windows); a count table forced onto uniform windows too."""
    rng = np.random.default_rng(seed)
    dtype, rank = pick(rng, ["s8", "s16"]), pick(rng, [2, 3])
    h, w, c = int(rng.integers(1, 12)), 1 if rank == 2 else int(rng.integers(1, 12)), int(rng.integers(1, 5))
    oh = pick(rng, [d for d in range(1, h + 1) if h % d == 0] + list(range(1, h + 3)))
    ow = 1 if rank == 2 else pick(rng, [d for d in range(1, w + 1) if w % d == 0] + list(range(1, w + 3)))
    x_t = rand_tensor(rng, "x", (h, w, c) if rank == 3 else (h, c), dtype)
    y_t = rand_tensor(rng, "y", (oh, ow, c) if rank == 3 else (oh, c), dtype)
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    attrs, params = adaptive_avg_params(x_t, y_t)
    if h % oh == 0 and w % ow == 0:
        assert not params                                  # the uniform path
    if not params and rng.random() < 0.3:                  # the adaptive kernel on a uniform grid
        window = -(-h // oh) * -(-w // ow)                 # every window is the first, ceil(H/OH) x ceil(W/OW)
        params = {"counts": np.array([window], np.int32), "multiplier": np.array([attrs.pop("multiplier")], np.int32),
                  "shift": np.array([attrs.pop("shift")], np.int8)}
    if rank == 2 and rng.random() < 0.5:
        attrs["output"] = oh                              # the 1-D form
    attrs, params = rerandomize(rng, attrs, params, -(-h // oh) * -(-w // ow), x, y_t)
    node, g = graph_of("adaptive_avg_pool2d", [x_t], y_t, {**attrs, **rand_clamp(rng, y_t)}, params)
    assert c_kernel(node, g).fn == (f"pqlr_adaptive_avg_pool2d_{dtype}" if params else f"pqlr_avg_pool2d_{dtype}")
    check(pool_lib, node, g, [x])


@SETTINGS
@SEEDS
def test_max_pool_matches_c(pool_lib, seed):
    """Padding corners and dilation; layers with a window wholly in the padding are refused."""
    rng = np.random.default_rng(seed)
    dtype, rank = pick(rng, ["s8", "s16"]), pick(rng, [2, 3])
    in_shape, out_shape, attrs, (rows, cols) = rand_window(rng, rank, dilated=True)
    x_t = rand_tensor(rng, "x", in_shape, dtype)
    y_t = same_quant(x_t, "y", out_shape)
    node, g = graph_of("max_pool2d", [x_t], y_t, {**attrs, **rand_clamp(rng, y_t)})
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    if rows.min() < 1 or cols.min() < 1:
        with pytest.raises(UnsupportedError, match="layer0 .*wholly in the padding"):
            TABLE["max_pool2d"].run([x], node, g)
        return
    check(pool_lib, node, g, [x])


@SETTINGS
@SEEDS
def test_adaptive_max_pool_matches_c(pool_lib, seed):
    rng = np.random.default_rng(seed)
    dtype, rank = pick(rng, ["s8", "s16"]), pick(rng, [2, 3])
    h, w, c = int(rng.integers(1, 12)), 1 if rank == 2 else int(rng.integers(1, 12)), int(rng.integers(1, 5))
    oh, ow = int(rng.integers(1, h + 3)), 1 if rank == 2 else int(rng.integers(1, w + 3))
    x_t = rand_tensor(rng, "x", (h, w, c) if rank == 3 else (h, c), dtype)
    y_t = same_quant(x_t, "y", (oh, ow, c) if rank == 3 else (oh, c))
    attrs = {"output": oh if rank == 2 and rng.random() < 0.5 else (oh, ow), **rand_clamp(rng, y_t)}
    node, g = graph_of("adaptive_max_pool2d", [x_t], y_t, attrs)
    check(pool_lib, node, g, [rand_values(rng, x_t, int(rng.integers(1, 4)))])


def mean_case(rng, dtype: str, shape: tuple[int, ...], axes: tuple[int, ...], random_m: bool = False):
    """A mean node over `axes`, the output with the reduced axes removed or kept as 1."""
    kept = tuple(1 if a in axes else d for a, d in enumerate(shape))
    out_shape = pick(rng, [tuple(d for a, d in enumerate(shape) if a not in axes) or (1,), kept])
    x_t, y_t = rand_tensor(rng, "x", shape, dtype), rand_tensor(rng, "y", out_shape, dtype)
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    attrs = mean_attrs(x_t, y_t, axes)
    if random_m:
        attrs, _ = rerandomize(rng, attrs, {}, int(np.prod([shape[a] for a in axes])), x, y_t)
    node, g = graph_of("mean", [x_t], y_t, {**attrs, **rand_clamp(rng, y_t)})
    return node, g, x


@SETTINGS
@SEEDS
def test_mean_matches_c(pool_lib, seed):
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 5))
    shape = tuple(int(v) for v in rng.integers(1, 7, rank))
    axes = tuple(a for a in range(rank) if rng.random() < 0.5)
    node, g, x = mean_case(rng, pick(rng, ["s8", "s16"]), shape, axes, random_m=True)
    check(pool_lib, node, g, [x])


@pytest.mark.parametrize("dtype", ["s8", "s16"])
@pytest.mark.parametrize("rank", [1, 2, 3, 4])
def test_mean_every_subset_of_axes(pool_lib, rank, dtype):
    """Every axis subset of a rank 1-4 input; leading blocks take the avg_pool2d kernel."""
    rng = np.random.default_rng(rank)
    shape = (5, 3, 4, 2)[-rank:]
    for r in range(rank + 1):
        for axes in itertools.combinations(range(rank), r):
            node, g, x = mean_case(rng, dtype, shape, axes)
            leading = axes == tuple(range(len(axes)))
            assert c_kernel(node, g).fn == f"pqlr_{'avg_pool2d' if leading else 'mean'}_{dtype}"
            check(pool_lib, node, g, [x])


def test_mean_default_axes_is_todays_call():
    """No axes attr = every axis but the last, emitted as the avg_pool2d call it always was."""
    x_t, y_t = Tensor("x", (25, 7), "s8", 8, 0.1, 3), Tensor("y", (7,), "s8", 8, 0.05, -2)
    node, g = graph_of("mean", [x_t], y_t, pool_attrs(x_t, y_t, 25))
    k = c_kernel(node, g)
    assert (k.fn, k.fields["in_h"], k.fields["in_w"], k.fields["kernel_h"], k.fields["channels"]) == \
        ("pqlr_avg_pool2d_s8", 25, 1, 25, 7)
    assert TABLE["mean"].macs(node, g) == 25 * 7


# ---------------------------------------------------------------- against PyTorch
def float_case(dtype: str, in_shape, out_shape, seed: int, same: bool = False):
    """Input / output tensors at fixed qparams (the max pools: the input's) and 3 random samples."""
    x_t = Tensor("x", in_shape, dtype, 16 if dtype == "s16" else 8, 0.05, 0 if dtype == "s16" else -3)
    y_t = same_quant(x_t, "y", out_shape) if same else \
        Tensor("y", out_shape, dtype, x_t.bits, 0.03, 0 if dtype == "s16" else 6)
    x = rand_values(np.random.default_rng(seed), x_t, 3)
    if dtype == "s16":
        x = (x // 4).astype(np.int16)        # keep averages inside the output range
    return x_t, y_t, x


def torch_map(x: np.ndarray, x_t: Tensor) -> torch.Tensor:
    """(N, H, W, C) / (N, H, C) ints -> dequantized NCHW / NCL float64."""
    r = torch.from_numpy(P.dequantize(x, x_t.scale, x_t.zero_point))
    return r.permute(0, 3, 1, 2) if r.dim() == 4 else r.permute(0, 2, 1)


def assert_near(y: np.ndarray, real: torch.Tensor, y_t: Tensor, exact: bool = False):
    real = (real.permute(0, 2, 3, 1) if real.dim() == 4 else real.permute(0, 2, 1)).numpy()
    lo, hi = P.act_range(y_t.bits)
    want = np.clip(real / y_t.scale + y_t.zero_point, lo, hi)
    err = np.max(np.abs(y.astype(float) - want))
    assert err <= (1e-9 if exact else 1.0), err


@pytest.mark.parametrize("dtype", ["s8", "s16"])
@pytest.mark.parametrize("cip", [True, False])
@pytest.mark.parametrize("rank,kernel,stride,pad", [(3, (3, 3), (2, 2), (1, 1)), (3, (2, 3), (1, 2), (1, 0)),
                                                    (2, 3, 2, 1), (2, 4, 1, 2)])
def test_avg_pool_follows_torch(rank, kernel, stride, pad, cip, dtype):
    if rank == 3:
        in_shape, (ph, pw) = (7, 6, 3), pad
        oh, ow = ((s + 2 * p - k) // st + 1 for s, p, k, st in zip(in_shape, pad, kernel, stride))
        out_shape, padding = (oh, ow, 3), (ph, pw, ph, pw)
    else:
        in_shape, padding = (9, 4), pad
        out_shape = ((9 + 2 * pad - kernel) // stride + 1, 4)
    x_t, y_t, x = float_case(dtype, in_shape, out_shape, 3)
    attrs, params = avg_pool_params(x_t, y_t, kernel, stride, padding, cip)
    assert bool(params) == (not cip)
    node, g = graph_of("avg_pool2d", [x_t], y_t, attrs, params)
    y = TABLE["avg_pool2d"].run([x], node, g)
    pool = F.avg_pool2d if rank == 3 else F.avg_pool1d
    assert_near(y, pool(torch_map(x, x_t), kernel, stride, pad, count_include_pad=cip), y_t)


@pytest.mark.parametrize("dtype", ["s8", "s16"])
@pytest.mark.parametrize("rank,kernel,stride,pad,dil", [(3, (3, 3), (2, 2), (1, 1), (1, 1)),
                                                        (3, (2, 3), (1, 2), (1, 1), (2, 1)),
                                                        (2, 3, 2, 1, 1), (2, 2, 1, 1, 3)])
def test_max_pool_follows_torch(rank, kernel, stride, pad, dil, dtype):
    if rank == 3:
        in_shape = (7, 6, 3)
        oh, ow = ((s + 2 * p - d * (k - 1) - 1) // st + 1 for s, p, k, st, d in zip(in_shape, pad, kernel, stride, dil))
        out_shape, padding = (oh, ow, 3), (pad[0], pad[1], pad[0], pad[1])
    else:
        in_shape, padding = (9, 4), pad
        out_shape = ((9 + 2 * pad - dil * (kernel - 1) - 1) // stride + 1, 4)
    x_t, y_t, x = float_case(dtype, in_shape, out_shape, 4, same=True)
    node, g = graph_of("max_pool2d", [x_t], y_t, {"kernel": kernel, "stride": stride, "padding": padding,
                                                  "dilation": dil})
    y = TABLE["max_pool2d"].run([x], node, g)
    pool = F.max_pool2d if rank == 3 else F.max_pool1d
    assert_near(y, pool(torch_map(x, x_t), kernel, stride, pad, dil), y_t, exact=True)


@pytest.mark.parametrize("dtype", ["s8", "s16"])
@pytest.mark.parametrize("in_shape,out_shape", [((7, 5, 3), (3, 2, 3)), ((8, 6, 2), (4, 3, 2)),
                                                ((3, 2, 2), (5, 4, 2)), ((10, 3), (4, 3)), ((9, 2), (3, 2))])
def test_adaptive_pools_follow_torch(in_shape, out_shape, dtype):
    x_t, y_t, x = float_case(dtype, in_shape, out_shape, 5)
    attrs, params = adaptive_avg_params(x_t, y_t)
    node, g = graph_of("adaptive_avg_pool2d", [x_t], y_t, attrs, params)
    size = out_shape[:-1] if len(in_shape) == 3 else out_shape[0]
    avg, mx = (F.adaptive_avg_pool2d, F.adaptive_max_pool2d) if len(in_shape) == 3 else \
        (F.adaptive_avg_pool1d, F.adaptive_max_pool1d)
    assert_near(TABLE["adaptive_avg_pool2d"].run([x], node, g), avg(torch_map(x, x_t), size), y_t)
    y_t = same_quant(x_t, "y", out_shape)
    node, g = graph_of("adaptive_max_pool2d", [x_t], y_t, {"output": size})
    assert_near(TABLE["adaptive_max_pool2d"].run([x], node, g), mx(torch_map(x, x_t), size), y_t, exact=True)


@pytest.mark.parametrize("dtype", ["s8", "s16"])
@pytest.mark.parametrize("shape,axes", [((6, 5, 3), (0, 1)), ((25, 7), (0,)), ((4, 3, 5, 2), (1, 3)),
                                        ((4, 3, 5, 2), (0, 2)), ((6, 5, 3), (2,)), ((9,), (0,)),
                                        ((4, 3, 5, 2), (0, 1, 2, 3))])
def test_mean_follows_torch(shape, axes, dtype):
    kept = tuple(d for a, d in enumerate(shape) if a not in axes) or (1,)
    x_t, y_t, x = float_case(dtype, shape, kept, 6)
    node, g = graph_of("mean", [x_t], y_t, mean_attrs(x_t, y_t, axes))
    y = TABLE["mean"].run([x], node, g)
    real = torch.from_numpy(P.dequantize(x, x_t.scale, x_t.zero_point)).mean(dim=tuple(a + 1 for a in axes))
    lo, hi = P.act_range(y_t.bits)
    want = np.clip(real.numpy().reshape(y.shape) / y_t.scale + y_t.zero_point, lo, hi)
    assert np.max(np.abs(y - want)) <= 1.0


# ---------------------------------------------------------------- the emitted C, sanitized
def driver_cases(dtype: str, rng) -> list:
    cases = []

    def add(op, in_shape, out_shape, attrs=None, params=None, same=False):
        x_t = rand_tensor(rng, "x", in_shape, dtype)
        y_t = same_quant(x_t, "y", out_shape) if same else rand_tensor(rng, "y", out_shape, dtype)
        if callable(attrs):
            attrs, params = attrs(x_t, y_t)
        node, g = graph_of(op, [x_t], y_t, attrs, params)
        cases.append((node, g, [rand_values(rng, x_t, 1)[0]], {}))

    add("avg_pool2d", (7, 5, 3), (3, 2, 3), lambda a, b: avg_pool_params(a, b, (3, 3), (2, 2), (0, 0, 1, 0)))
    add("avg_pool2d", (7, 5, 3), (4, 3, 3), lambda a, b: avg_pool_params(a, b, (3, 2), (2, 2), (1, 1, 1, 0), False))
    add("avg_pool2d", (9, 4), (5, 4), lambda a, b: avg_pool_params(a, b, 3, 2, 1, False))
    add("adaptive_avg_pool2d", (8, 6, 3), (4, 3, 3), adaptive_avg_params)
    add("adaptive_avg_pool2d", (7, 5, 3), (3, 3, 3), adaptive_avg_params)
    add("max_pool2d", (7, 6, 3), (4, 4, 3), {"kernel": (3, 2), "stride": (2, 1), "padding": (1, 0, 1, 0),
                                             "dilation": (1, 2)}, same=True)
    add("max_pool2d", (9, 4), (5, 4), {"kernel": 3, "stride": 2, "padding": 1}, same=True)
    add("adaptive_max_pool2d", (7, 5, 3), (3, 2, 3), {"output": (3, 2)}, same=True)
    add("mean", (25, 7), (7,), lambda a, b: (mean_attrs(a, b), {}))
    add("mean", (4, 3, 5, 2), (4, 1, 5, 1), lambda a, b: (mean_attrs(a, b, (1, 3)), {}))
    add("mean", (6, 5, 3), (6,), lambda a, b: (mean_attrs(a, b, (1, 2)), {}))
    return cases


def test_c_call_code_in_sanitized_driver():
    rng = np.random.default_rng(12)
    cases = driver_cases("s8", rng) + driver_cases("s16", rng)
    assert {n.op for n, *_ in cases} == set(TABLE)
    fns = {(c_kernel(n, g).fn) for n, g, *_ in cases}
    assert {f"pqlr_{op}_{dt}" for op in ("avg_pool2d", "avg_pool2d_var", "adaptive_avg_pool2d", "max_pool2d",
                                         "adaptive_max_pool2d", "mean") for dt in ("s8", "s16")} == fns
    proc = cdriver.run_program(driver_source(cases), POOL_SOURCES, name="pool_driver")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"0 of {len(cases)} cases differ" in proc.stdout


# ---------------------------------------------------------------- MACs
def test_macs():
    x_t, y_t = Tensor("x", (7, 5, 3), "s8"), Tensor("y", (3, 2, 3), "s8")
    node, g = graph_of("avg_pool2d", [x_t], y_t, avg_pool_params(x_t, y_t, (3, 3), (2, 2), (0, 0, 1, 0))[0])
    assert TABLE["avg_pool2d"].macs(node, g) == 3 * 2 * 3 * 9
    x_t, y_t = Tensor("x", (4, 4, 2), "s8"), Tensor("y", (2, 2, 2), "s8")
    node, g = graph_of("max_pool2d", [x_t], y_t, {"kernel": 3, "stride": 2, "padding": (1, 1, 0, 0)})
    assert TABLE["max_pool2d"].macs(node, g) == 2 * (2 + 3) * (2 + 3)       # in-bounds taps only
    x_t, y_t = Tensor("x", (5, 2), "s8"), Tensor("y", (3, 2), "s8")
    node, g = graph_of("adaptive_max_pool2d", [x_t], y_t, {"output": 3})     # rows [0,2) [1,4) [3,5)
    assert TABLE["adaptive_max_pool2d"].macs(node, g) == 2 * 7
    node, g = graph_of("adaptive_avg_pool2d", [x_t], y_t, *adaptive_avg_params(x_t, y_t))
    assert TABLE["adaptive_avg_pool2d"].macs(node, g) == 2 * 7
    x_t, y_t = Tensor("x", (4, 3, 5), "s8"), Tensor("y", (3,), "s8")
    node, g = graph_of("mean", [x_t], y_t, mean_attrs(x_t, y_t, (0, 2)))
    assert TABLE["mean"].macs(node, g) == 60


# ---------------------------------------------------------------- refusals
def refused(op, x_t, y_t, attrs, params=None, match=""):
    node, g = graph_of(op, [x_t], y_t, attrs, params)
    x = np.zeros((1, *x_t.shape), NP[x_t.dtype])
    with pytest.raises(UnsupportedError, match=f"layer layer0 \\({op}\\): .*{match}"):
        TABLE[op].run([x], node, g)
    with pytest.raises(UnsupportedError, match="layer0"):
        c_kernel(node, g)


def test_oracle_refusals_name_the_layer():
    x_t = Tensor("x", (4, 4, 2), "s8", 8, 0.1, 3)
    refused("max_pool2d", x_t, Tensor("y", (2, 2, 2), "s8", 8, 0.2, 3), {"kernel": 2}, match="scale/zero point")
    refused("max_pool2d", x_t, Tensor("y", (2, 2, 2), "s8", 8, 0.1, 4), {"kernel": 2}, match="scale/zero point")
    refused("adaptive_max_pool2d", x_t, Tensor("y", (2, 2, 2), "s8", 8, 0.1, 0), {"output": 2},
            match="scale/zero point")
    y_same = Tensor("y", (2, 2, 2), "s8", 8, 0.1, 3)
    refused("max_pool2d", Tensor("x", (2, 2, 2), "s8", 8, 0.1, 3), Tensor("y", (1, 1, 2), "s8", 8, 0.1, 3),
            {"kernel": 2, "stride": 1, "padding": 1, "dilation": 3}, match="wholly in the padding")  # taps -1, 2
    refused("max_pool2d", x_t, y_same, {"kernel": 5}, match="impossible")
    refused("max_pool2d", x_t, y_same, {"kernel": 2, "ceil_mode": True}, match="ceil_mode")
    refused("max_pool2d", x_t, Tensor("y", (3, 3, 2), "s8", 8, 0.1, 3), {"kernel": 2}, match="inconsistent")
    y = Tensor("y", (3, 3, 2), "s8", 8, 0.05, 0)
    refused("avg_pool2d", x_t, y, {"kernel": 2, "stride": 2, "padding": 1, "count_include_pad": False,
                                   **pool_attrs(x_t, y, 4)}, match="count table")
    _, table = avg_pool_params(x_t, y, 2, 2, 1, False)
    short = {k: v[1:] for k, v in table.items()}
    refused("avg_pool2d", x_t, y, {"kernel": 2, "stride": 2, "padding": 1, "count_include_pad": False}, short,
            match="not in the count table")
    refused("avg_pool2d", x_t, y, {"kernel": 2, "stride": 2, "padding": 1}, table, match="count_include_pad=False")
    y1 = Tensor("y", (5, 1, 2), "s8", 8, 0.05, 0)          # kernel 1, padding 2: windows outside the map
    with pytest.raises(UnsupportedError, match="wholly in the padding"):
        avg_pool_params(Tensor("x", (1, 1, 2), "s8"), y1, 1, (1, 1), (2, 0, 2, 0), False)
    refused("adaptive_avg_pool2d", Tensor("x", (5, 2), "s8"), Tensor("y", (3, 2), "s8"),
            {"output": 3, "multiplier": 1 << 30, "shift": 31}, match="count table")
    refused("adaptive_avg_pool2d", Tensor("x", (5, 2), "s8"), Tensor("y", (3, 2), "s8"),
            {"output": 2, "multiplier": 1 << 30, "shift": 31}, match="does not match")
    big = Tensor("x", (50000, 1), "s8")                    # (H + 1) * OH >= 2^31: the C bounds are int32
    refused("adaptive_max_pool2d", big, same_quant(big, "y", (50000, 1)), {"output": 50000}, match="too large")
    refused("mean", x_t, Tensor("y", (2,), "s8"), {"axes": (1, 0), **pool_attrs(x_t, x_t, 16)}, match="sorted")
    refused("mean", x_t, Tensor("y", (2,), "s8"), {"axes": (0, 3), **pool_attrs(x_t, x_t, 16)}, match="sorted")
    refused("mean", x_t, Tensor("y", (4,), "s8"), {"axes": (0, 1), **pool_attrs(x_t, x_t, 16)},
            match="keeps")
    refused("mean", Tensor("x", (300, 300, 2), "s16"), Tensor("y", (2,), "s16"), {"multiplier": 1, "shift": 40},
            match="overflows")     # 90000 * 32768 > 2^31 - 1
    refused("mean", Tensor("x", (1, 2, 3, 4, 5), "s8"), Tensor("y", (5,), "s8"), {"multiplier": 1, "shift": 40},
            match="rank 1 to 4")


def c_refuses(lib, node, g, fields=None, params=None):
    """The node's C kernel with some struct fields / params replaced returns PQLR_ERR_ARG and leaves
    the output untouched."""
    k = c_kernel(node, g)
    k = dataclasses.replace(k, fields={**k.fields, **(fields or {})})
    x_t, y_t = (g.tensor(t) for t in (*node.inputs, *node.outputs))
    y = np.full(y_t.shape, 77, NP[y_t.dtype])
    arrays = {**node.params, **(params or {}), "in0": np.ones(x_t.shape, NP[x_t.dtype]), "out": y}
    status = cdriver.call(lib, k.fn, ctypes_struct(k), *[np.ascontiguousarray(arrays[a]) if a != "out" else y
                                                         for a in k.args])
    assert status == -1 and (y == 77).all(), (k.fn, fields, params)


@pytest.mark.parametrize("dtype", ["s8", "s16"])
def test_c_refuses_bad_parameters(pool_lib, dtype):
    rng = np.random.default_rng(3)
    by_fn = {c_kernel(n, g).fn: (n, g) for n, g, *_ in driver_cases(dtype, rng)}
    assert len(by_fn) == 6
    lo = -128 if dtype == "s8" else -32768
    for fn, (node, g) in by_fn.items():
        fields = c_kernel(node, g).fields
        c_refuses(pool_lib, node, g, {"act_min": 5, "act_max": 4})
        c_refuses(pool_lib, node, g, {"act_min": lo - 1})
        if "dims" in fields:                                # pqlr_mean
            c_refuses(pool_lib, node, g, {"reduce": [0, 2, 0, 1]})
            c_refuses(pool_lib, node, g, {"dims": [0, 3, 5, 2]})
            c_refuses(pool_lib, node, g, {"shift": 0})
            c_refuses(pool_lib, node, g, {"dims": [40000, 40000, 1, 2]})      # size over int32
            dims, zp = ([1, 3000, 3000, 1], 127) if dtype == "s8" else ([1, 300, 300, 1], 0)
            c_refuses(pool_lib, node, g, {"dims": dims, "reduce": [0, 1, 1, 0], "in_zp": zp})  # sum over int32
            continue
        c_refuses(pool_lib, node, g, {"out_h": 0})
        if "kernel_h" in fields:                            # out_h follows from the window
            c_refuses(pool_lib, node, g, {"out_h": fields["out_h"] + 1})
        c_refuses(pool_lib, node, g, {"channels": 0})
        if "kernel_h" not in fields:                        # adaptive: (in_h + 1) * out_h >= 2^31
            c_refuses(pool_lib, node, g, {"in_h": 50000, "out_h": 50000, "in_w": 1, "out_w": 1, "channels": 1})
        if "counts" in node.params:
            t = node.params["counts"]
            c_refuses(pool_lib, node, g, params={"counts": np.where(t == t.max(), 1000, t).astype(np.int32)})
            c_refuses(pool_lib, node, g, params={"counts": np.where(t == t.max(), 0, t).astype(np.int32)})
            c_refuses(pool_lib, node, g, params={"shift": np.zeros_like(node.params["shift"])})
            c_refuses(pool_lib, node, g, {"n_counts": 0})
            c_refuses(pool_lib, node, g, {"in_zp": -lo})                      # zero point out of range
        if "dilation_h" in fields:
            c_refuses(pool_lib, node, g, {"dilation_h": 0})
            c_refuses(pool_lib, node, g, {"in_h": 2, "kernel_h": 2, "stride_h": 1, "pad_top": 1, "pad_bottom": 1,
                                          "dilation_h": 3, "out_h": 1})       # taps -1 and 2 of [0, 2)
            c_refuses(pool_lib, node, g, {"in_h": 2, "kernel_h": 2, "stride_h": 1, "pad_top": 1, "pad_bottom": 1,
                                          "dilation_h": 3, "out_h": 2})        # out_h must be 1
