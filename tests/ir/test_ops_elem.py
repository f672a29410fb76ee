"""Element-wise ops (pqlr.ir.ops_elem: add, sub, mul with broadcasting, prelu, channel_affine): the
NumPy oracle and the C reference kernels agree bit for bit (hypothesis through ctypes, UBSan build;
once as a standalone ASan+UBSan driver via OpDef.c_call); each op is within 1 LSB of the real op on
dequantized values; bad layers are refused by the oracle (naming the layer) and by the C."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import settings

import cdriver
from cdriver import ELEM_SOURCES
from opcases import (NP, SEEDS, SETTINGS, check, ctypes_struct, driver_source, graph_of, pick, rand_clamp,
                     rand_tensor, rand_values)
from pqlr import primitives as P
from pqlr.errors import UnsupportedError
from pqlr.ir.graph import Node, Tensor
from pqlr.ir.opkit import activation_clamp, span
from pqlr.ir.ops import c_kernel
from pqlr.ir.ops_elem import (ADD_LEFT_SHIFT, TABLE, add_attrs, channel_affine_params, mul_attrs,
                              prelu_params)


def test_struct_layout_matches_header(elem_lib):
    assert elem_lib.pqlr_layout_mismatches() == 0


# ---------------------------------------------------------------- cases
def rand_shapes(rng, rank: int):
    """(a, b, out) shapes of one rank: per dim both full, a broadcasts, b broadcasts, or both 1."""
    out = tuple(int(v) for v in rng.integers(1, 6, rank))
    a, b = [], []
    for o in out:
        kind = pick(rng, ["full", "full", "a1", "b1"]) if o > 1 else "full"
        a.append(1 if kind == "a1" else o)
        b.append(1 if kind == "b1" else o)
    return tuple(a), tuple(b), out


def binary_case(rng, op: str, dtype: str, rank: int, constant: bool, scale_range=(-12, 4)):
    """A random add/sub/mul node: (node, graph, inputs, (a, b, out) tensors, operands); operands are the
    two value arrays, the constant as (1, *b.shape) when b is a param (then inputs holds only a)."""
    sa, sb, so = rand_shapes(rng, rank)
    a, b, y = (rand_tensor(rng, n, s, dtype) for n, s in (("a", sa), ("b", sb), ("y", so)))
    for t in (a, b, y):     # scales 2^-12 .. 2^4: ratios up to 2^16 either way
        t.scale = float(2.0 ** rng.uniform(*scale_range))
    attrs = {**(mul_attrs if op == "mul" else add_attrs)(a, b, y), **rand_clamp(rng, y)}
    n = int(rng.integers(1, 4))
    if constant:            # b is a quantized constant (params["b"]) described by b_scale / b_zero_point
        b.bits = 16 if dtype == "s16" else 8
        vb = rand_values(rng, b, 1)[0]
        node, g = graph_of(op, [a], y, {**attrs, "b_scale": b.scale, "b_zero_point": b.zero_point}, {"b": vb})
        return node, g, [rand_values(rng, a, n)], (a, b, y), [None, vb[None]]
    node, g = graph_of(op, [a, b], y, attrs)
    xs = [rand_values(rng, a, n), rand_values(rng, b, n)]
    return node, g, xs, (a, b, y), xs


def real_clip(real: np.ndarray, y_t: Tensor, node: Node) -> np.ndarray:
    """The real result in output LSBs, clamped like the op."""
    lo, hi = node.attrs.get("act_min", P.act_range(y_t.bits)[0]), node.attrs.get("act_max", P.act_range(y_t.bits)[1])
    return np.clip(real / y_t.scale + y_t.zero_point, lo, hi)


# ---------------------------------------------------------------- add, sub, mul: oracle vs C, float
@settings(SETTINGS, max_examples=240)        # 3 ops x 2 dtypes x 2 operand forms x ranks 1..4
@SEEDS
def test_binary_ops_match_c(elem_lib, seed):
    rng = np.random.default_rng(seed)
    op, dtype = pick(rng, ["add", "sub", "mul"]), pick(rng, ["s8", "s16"])
    constant = rng.random() < 0.4
    node, g, xs, (a, b, y_t), operands = binary_case(rng, op, dtype, int(rng.integers(1, 5)), constant)
    y = check(elem_lib, node, g, xs)
    assert y.shape == (xs[0].shape[0], *y_t.shape)
    # float: within 1 LSB of the real op (TFLite add/sub rescale the inputs at 2 max(s) / 2^left_shift:
    # exact to a quarter LSB while max(s) / s_out <= 2^(left_shift - 3))
    va = P.dequantize(xs[0], a.scale, a.zero_point)
    vb = P.dequantize(operands[1], b.scale, b.zero_point)
    real = {"add": va + vb, "sub": va - vb, "mul": va * vb}[op]
    if op == "mul" or max(a.scale, b.scale) / y_t.scale <= 2.0 ** (ADD_LEFT_SHIFT[dtype] - 3):
        assert np.max(np.abs(y - real_clip(real, y_t, node))) <= 1.0 + 1e-6


def test_binary_ops_follow_float_with_broadcasting():
    """Residual add, a per-channel constant bias, gating mul, a scalar subtracted: within 1 LSB."""
    rng = np.random.default_rng(7)
    cases = [("add", (6, 5, 8), (6, 5, 8)), ("add", (6, 5, 8), (1, 1, 8)), ("mul", (6, 5, 8), (1, 1, 8)),
             ("mul", (4, 8), (4, 1)), ("sub", (3, 7), (1, 1)), ("sub", (1, 7), (3, 1))]
    for (op, sa, sb), dtype in [(c, d) for c in cases for d in ("s8", "s16")]:
        so = np.broadcast_shapes(sa, sb)
        bits = 16 if dtype == "s16" else 8
        a = Tensor("a", sa, dtype, bits, 0.02, 0 if bits == 16 else -5)
        b = Tensor("b", sb, dtype, bits, 0.05, 0 if bits == 16 else 9)
        y = Tensor("y", so, dtype, bits, 0.15 if op == "mul" else 0.06, 0 if bits == 16 else 3)
        if bits == 16:      # a (-2.6, 2.6), b (-6.4, 6.4)
            a.scale, b.scale, y.scale = a.scale / 256, b.scale / 256, 20 / 32768 if op == "mul" else 10 / 32768
        node, g = graph_of(op, [a, b], y, (mul_attrs if op == "mul" else add_attrs)(a, b, y))
        xs = [rand_values(rng, t, 8) for t in (a, b)]
        got = TABLE[op].run(xs, node, g)
        va, vb = (P.dequantize(x, t.scale, t.zero_point) for x, t in zip(xs, (a, b)))
        real = {"add": va + vb, "sub": va - vb, "mul": va * vb}[op]
        err = np.abs(got - real_clip(real, y, node))
        assert got.shape == (8, *so) and err.max() <= 1.0, (op, sa, sb, dtype, err.max())


def test_same_shape_operands_take_the_flat_loop():
    """Nothing broadcasts: both strides equal the output's (the C runs its contiguous loop)."""
    ts = [Tensor(n, (5, 4, 3), "s8", 8, 0.1, 0) for n in "aby"]
    node, g = graph_of("add", ts[:2], ts[2], add_attrs(*ts))
    k = c_kernel(node, g)
    assert k.fields["dims"] == [1, 5, 4, 3] and k.fields["size"] == 60
    assert k.fields["in1_strides"] == k.fields["in2_strides"] == [0, 12, 3, 1]
    assert k.args == ("in0", "in1", "out")
    b = Tensor("b", (1, 1, 3), "s8", 8, 0.1, 0)
    node, g = graph_of("mul", ts[:1], ts[2], {**mul_attrs(ts[0], b, ts[2]), "b_scale": 0.1, "b_zero_point": 0},
                       {"b": np.array([[[1, 2, 3]]], np.int8)})
    k = c_kernel(node, g)
    assert k.fields["in2_strides"] == [0, 0, 0, 1] and k.args == ("in0", "b", "out")


# ---------------------------------------------------------------- prelu
def prelu_case(rng, dtype: str):
    rank = int(rng.integers(1, 5))
    shape = tuple(int(v) for v in rng.integers(1, 6, rank))
    axis = int(rng.integers(-rank, rank))
    x_t, y_t = rand_tensor(rng, "x", shape, dtype), rand_tensor(rng, "y", shape, dtype)
    x_t.scale, y_t.scale = (float(2.0 ** rng.uniform(-10, 0)) for _ in range(2))
    n_slopes = pick(rng, [1, shape[axis]])
    kind = pick(rng, ["leaky", "random", "random", "big", "zero"])
    alpha = {"leaky": np.full(n_slopes, 0.01), "random": rng.uniform(-3, 3, n_slopes),
             "big": rng.uniform(1, 40, n_slopes) * rng.choice([-1, 1], n_slopes), "zero": np.zeros(n_slopes)}[kind]
    params, attrs = prelu_params(alpha if n_slopes > 1 or rng.random() < 0.5 else float(alpha[0]), x_t, y_t, axis)
    node, g = graph_of("prelu", [x_t], y_t, {**attrs, **rand_clamp(rng, y_t)}, params)
    return node, g, x_t, y_t, alpha, axis


@settings(SETTINGS, max_examples=120)
@SEEDS
def test_prelu_matches_c(elem_lib, seed):
    rng = np.random.default_rng(seed)
    node, g, x_t, y_t, alpha, axis = prelu_case(rng, pick(rng, ["s8", "s16"]))
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    y = check(elem_lib, node, g, [x])
    v = P.dequantize(x, x_t.scale, x_t.zero_point)
    shape = [1] * (x.ndim)
    shape[axis % len(x_t.shape) + 1] = alpha.size
    real = np.where(v >= 0, v, v * alpha.reshape(shape))
    assert np.max(np.abs(y - real_clip(real, y_t, node))) <= 1.0 + 1e-6


def test_prelu_negative_slope_is_a_negative_multiplier():
    x_t, y_t = Tensor("x", (2, 3), "s8", 8, 0.1, 0), Tensor("y", (2, 3), "s8", 8, 0.1, 0)
    params, attrs = prelu_params(np.array([-0.5, 0.25, 2.0]), x_t, y_t)
    assert params["multiplier_neg"].dtype == np.int32 and params["shift_neg"].dtype == np.int8
    assert params["multiplier_neg"][0] < 0 < params["multiplier_neg"][1] and attrs["axis"] == -1
    node, g = graph_of("prelu", [x_t], y_t, attrs, params)
    x = np.array([[[-10, -10, -10], [7, -7, -3]]], np.int8)
    np.testing.assert_array_equal(TABLE["prelu"].run([x], node, g), [[[5, -2, -20], [7, -2, -6]]])
    # requantize(-7, -M(0.5)) = floor(3.5 + 0.5) = 4; requantize(-7, M(0.25)) = floor(-1.75 + 0.5) = -2
    assert TABLE["prelu"].run([np.array([[[-7, -7, 0]] * 2], np.int8)], node, g)[0, 0, :2].tolist() == [4, -2]


# ---------------------------------------------------------------- channel_affine
def affine_case(rng, dtype: str):
    rank = int(rng.integers(1, 5))
    shape = tuple(int(v) for v in rng.integers(1, 6, rank))
    axis = int(rng.integers(-rank, rank))
    c = shape[axis]
    x_t, y_t = rand_tensor(rng, "x", shape, dtype), rand_tensor(rng, "y", shape, dtype)
    scale = rng.normal(0, 1.5, c) * (rng.random(c) > 0.15)              # some zero scales
    shift = rng.normal(0, 2, c) * (rng.random(c) > 0.15)
    lo, hi = P.act_range(x_t.bits)
    x_range = (hi - lo) * x_t.scale                                        # output scale for the real range
    y_t.scale = float(max(np.max(np.abs(scale)) * x_range + np.max(np.abs(shift)), 1e-3)
                      / (hi - lo) * 2.0 ** rng.uniform(-1, 1))
    params, attrs = channel_affine_params(scale, shift, x_t, y_t, axis)
    if rng.random() < 0.25:                       # raw parameters: any int8 gamma, beta at the int32 edge
        params["gamma"] = rng.integers(-128, 128, c).astype(np.int8)
        room = 2**31 - 1 - span(x_t) * 128
        params["beta"] = rng.integers(-room, room + 1, c).astype(np.int32)
    node, g = graph_of("channel_affine", [x_t], y_t, {**attrs, **rand_clamp(rng, y_t)}, params)
    return node, g, x_t, y_t, scale, shift, axis


@settings(SETTINGS, max_examples=120)
@SEEDS
def test_channel_affine_matches_c(elem_lib, seed):
    rng = np.random.default_rng(seed)
    node, g, x_t, y_t, scale, shift, axis = affine_case(rng, pick(rng, ["s8", "s16"]))
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    y = check(elem_lib, node, g, [x])
    assert y.shape == (x.shape[0], *y_t.shape)


def test_channel_affine_follows_float():
    """BatchNorm-like channels (including zero scale, negative scale, large shift): within 1 LSB."""
    rng = np.random.default_rng(11)
    scale = np.array([1.3, -0.7, 0.0, 0.02, 4.0, -2.5])
    shift = np.array([0.5, -1.0, 2.0, 0.0, -3.0, 30.0])
    for dtype, bits, zp_x, zp_y, axis, shape in [("s8", 8, -20, 7, -1, (4, 3, 6)), ("s8", 4, 2, -1, 0, (6, 5)),
                                                 ("s16", 16, 0, 0, 1, (2, 6, 3))]:
        lo, hi = P.act_range(bits)
        x_t = Tensor("x", shape, dtype, bits, 8.0 / (hi - lo), zp_x)
        y_t = Tensor("y", shape, dtype, bits, 40.0 / (hi - lo), zp_y)
        params, attrs = channel_affine_params(scale, shift, x_t, y_t, axis)
        assert params["gamma"].tolist() == [127, -127, 0, 127, 127, -127]
        node, g = graph_of("channel_affine", [x_t], y_t, attrs, params)
        x = rand_values(rng, x_t, 16)
        view = [1] * (len(shape) + 1)
        view[axis % len(shape) + 1] = len(scale)
        real = P.dequantize(x, x_t.scale, zp_x) * scale.reshape(view) + shift.reshape(view)
        err = np.abs(TABLE["channel_affine"].run([x], node, g) - real_clip(real, y_t, node))
        assert err.max() <= 1.0, (dtype, err.max())


def test_channel_affine_params_keep_beta_in_int32():
    x_t, y_t = Tensor("x", (3,), "s8", 8, 1e-4, 0), Tensor("y", (3,), "s8", 8, 50.0, 0)
    params, _ = channel_affine_params([1e-3, 0.0, 0.0], [1e4, 1e4, 0.0], x_t, y_t)
    assert np.all(np.abs(params["beta"].astype(np.int64)) <= 2**30)
    assert params["gamma"].tolist()[1:] == [0, 0] and params["beta"][2] == 0
    node, g = graph_of("channel_affine", [x_t], y_t, {}, params)
    y = TABLE["channel_affine"].run([np.array([[0, 0, 0]], np.int8)], node, g)
    assert y.tolist() == [[127, 127, 0]]            # 1e4 / 50 = 200 saturates; a zero shift stays 0


# ---------------------------------------------------------------- refusals
def refused(op: str, node: Node, g, xs, msg: str):
    with pytest.raises(UnsupportedError, match=f"layer0 \\({op}\\).*{msg}"):
        TABLE[op].run(xs, node, g)


def test_oracle_refuses_bad_layers_naming_them():
    a, b, y = (Tensor(n, (4,), "s8", 8, 0.1, 0) for n in "aby")
    x = np.zeros((1, 4), np.int8)
    node, g = graph_of("add", [a, b], y, {**add_attrs(a, b, y), "left_shift": 24})
    refused("add", node, g, [x, x], "overflows")
    b3 = Tensor("b", (3,), "s8", 8, 0.1, 0)
    for op, attrs in (("add", add_attrs(a, b3, y)), ("sub", add_attrs(a, b3, y)), ("mul", mul_attrs(a, b3, y))):
        node, g = graph_of(op, [a, b3], y, attrs)
        refused(op, node, g, [x, np.zeros((1, 3), np.int8)], "do not broadcast")
    b2 = Tensor("b", (1, 4), "s8", 8, 0.1, 0)
    node, g = graph_of("mul", [a, b2], y, mul_attrs(a, b2, y))
    refused("mul", node, g, [x, np.zeros((1, 1, 4), np.int8)], "ranks")
    a1, b1, y4 = Tensor("a", (1,), "s8", 8, 0.1, 0), Tensor("b", (1,), "s8", 8, 0.1, 0), y
    node, g = graph_of("add", [a1, b1], y4, add_attrs(a1, b1, y4))   # out larger than the broadcast
    refused("add", node, g, [x[:, :1], x[:, :1]], "do not broadcast")
    s16 = [Tensor(n, (4,), "s16", 16, 0.1, 0) for n in "aby"]
    s16[0].zero_point = s16[1].zero_point = 20000               # |d_a d_b| up to 52768^2 > 2^31
    node, g = graph_of("mul", s16[:2], s16[2], mul_attrs(*s16))
    refused("mul", node, g, [x.astype(np.int16)] * 2, "overflows int32")
    node, g = graph_of("sub", [a, b], y, {**add_attrs(a, b, y), "left_shift": 25})
    refused("sub", node, g, [x, x], "overflows int32")
    const = {"b_scale": 0.1, "b_zero_point": 0}
    node, g = graph_of("add", [a], y, {**add_attrs(a, b, y), **const}, {"b": np.zeros(4, np.int16)})
    refused("add", node, g, [x], "constant operand b is int16")
    node, g = graph_of("add", [a], y, add_attrs(a, b, y), {"b": np.zeros(4, np.int8)})
    refused("add", node, g, [x], "b_scale and b_zero_point")
    # prelu / channel_affine
    params, attrs = prelu_params([0.1, 0.2, 0.3], a, y)
    node, g = graph_of("prelu", [a], y, attrs, params)
    refused("prelu", node, g, [x], "multiplier_neg has shape")
    params, attrs = prelu_params(0.1, a, y, axis=1)
    node, g = graph_of("prelu", [a], y, attrs, params)
    refused("prelu", node, g, [x], "axis 1")
    node, g = graph_of("prelu", [a], y, attrs | {"axis": 0}, {**params, "shift_neg": np.array([63], np.int8)})
    refused("prelu", node, g, [x], "shift_neg")
    params, attrs = channel_affine_params(np.ones(4), np.zeros(4), a, y)
    params["beta"] = np.array([0, 2**31 - 1 - 128 * 127, -(2**31 - 128 * 127), 0], np.int32)
    node, g = graph_of("channel_affine", [a], y, attrs, params)
    refused("channel_affine", node, g, [x], "beta\\[2\\].*out of range")
    params["beta"][2] = 0
    node, g = graph_of("channel_affine", [a], y, {**attrs, "act_min": 5, "act_max": 4}, params)
    refused("channel_affine", node, g, [x], "clamp")
    with pytest.raises(UnsupportedError, match="layer bn1: .*finite"):
        channel_affine_params([1.0, np.nan], [0.0, 1.0], a, y, name="bn1")
    with pytest.raises(UnsupportedError, match="layer bn1: "):      # M = s_in s_g / s_out >= 2^30
        channel_affine_params([1.0], [0.0], Tensor("x", (1,), "s8", 8, 1e6, 0), Tensor("y", (1,), "s8", 8, 1e-6, 0),
                              name="bn1")


def c_cases():
    """One small layer per kernel and dtype: (node, graph, per-call arrays)."""
    rng = np.random.default_rng(3)
    out = []
    for dtype in ("s8", "s16"):
        for op, constant in (("add", False), ("sub", True), ("mul", False)):
            node, g, xs, *_ = binary_case(rng, op, dtype, 3, constant)
            out.append((node, g, xs))
        node, g, x_t, *_ = prelu_case(np.random.default_rng(5), dtype)
        out.append((node, g, [rand_values(rng, x_t, 1)]))
        node, g, x_t, *_ = affine_case(np.random.default_rng(6), dtype)
        out.append((node, g, [rand_values(rng, x_t, 1)]))
    return out


def test_c_refuses_bad_arguments_writing_nothing(elem_lib):
    bad_by_struct = {
        "pqlr_add_params": [{"size": 0}, {"size": 1000}, {"dims": [0, 1, 1, 1]}, {"in1_strides": [0, 0, 0, -1]},
                            {"size": 8, "dims": [1, 1, 2, 4], "in2_strides": [0, 0, 2**30, 2**30]},  # offsets > 2^31
                            {"left_shift": 31}, {"left_shift": 27},
                            {"left_shift": 23, "in1_multiplier": 2**31 - 1, "in1_shift": 31,   # sum of the
                             "in2_multiplier": 2**31 - 1, "in2_shift": 31},                     # terms > 2^31
                            {"in1_shift": 0}, {"out_multiplier": -1}, {"act_max": 2**15},
                            {"act_min": 3, "act_max": 2}, {"in2_zp": 2**15}],
        "pqlr_mul_params": [{"size": 7}, {"dims": [1, 1, -2, 1]}, {"shift": 63}, {"multiplier": -5},
                            {"out_zp": -2**15 - 1}, {"act_min": -2**15 - 1}],
        "pqlr_prelu_params": [{"outer": 0}, {"n_neg": 0}, {"channels": 2**20, "inner": 2**12},
                              {"shift_pos": 0}, {"multiplier_pos": -1}, {"act_max": 2**15}],
        "pqlr_channel_affine_params": [{"inner": -1}, {"in_zp": 2**15}, {"act_min": 1, "act_max": 0}],
    }
    for node, g, xs in c_cases():
        k = c_kernel(node, g)
        dt = g.tensor(node.outputs[0]).dtype
        shape = g.tensor(node.outputs[0]).shape
        base = {name: np.ascontiguousarray(v) for name, v in node.params.items()}
        base.update({f"in{i}": np.ascontiguousarray(x[0]) for i, x in enumerate(xs)})
        good = [{**base, "out": np.zeros(shape, NP[dt])}.get(a) for a in k.args]
        assert cdriver.call(elem_lib, k.fn, struct_of(k), *good) == 0, k.fn
        for bad in bad_by_struct[k.struct_type]:
            y = np.full(shape, 77, NP[dt])
            status = cdriver.call(elem_lib, k.fn, struct_of(k, bad), *[{**base, "out": y}.get(a) for a in k.args])
            assert status == -1 and np.all(y == 77), (k.fn, bad)
        for i, a in enumerate(k.args):            # every pointer is required
            args = [{**base, "out": np.zeros(shape, NP[dt])}.get(b) for b in k.args]
            args[i] = None
            assert cdriver.call(elem_lib, k.fn, struct_of(k), *args) == -1, (k.fn, a)
        if k.struct_type == "pqlr_prelu_params":  # a slope shift out of range
            y = np.full(shape, 77, NP[dt])
            args = [{**base, "shift_neg": np.full_like(base["shift_neg"], 63), "out": y}.get(a) for a in k.args]
            assert cdriver.call(elem_lib, k.fn, struct_of(k), *args) == -1 and np.all(y == 77)
        if k.struct_type == "pqlr_channel_affine_params":   # beta past the int32 accumulator
            y = np.full(shape, 77, NP[dt])
            beta = np.full_like(base["beta"], 2**31 - 1)
            gamma = np.full_like(base["gamma"], 1)
            args = [{**base, "beta": beta, "gamma": gamma, "out": y}.get(a) for a in k.args]
            assert cdriver.call(elem_lib, k.fn, struct_of(k), *args) == -1 and np.all(y == 77)


def struct_of(k, change: dict | None = None):
    """The ctypes struct of kernel k with some fields changed (array fields as lists)."""
    return ctypes_struct(replace(k, fields={**k.fields, **(change or {})}))


# ---------------------------------------------------------------- standalone ASan + UBSan driver
def test_c_call_code_in_sanitized_driver():
    rng = np.random.default_rng(12)
    cases = []
    for dtype in ("s8", "s16"):
        for op in ("add", "sub", "mul"):
            for constant in (False, True):
                node, g, xs, *_ = binary_case(rng, op, dtype, int(rng.integers(2, 5)), constant)
                cases.append((node, g, [x[0] for x in xs], {}))
        ts = [rand_tensor(rng, n, (3, 2, 5), dtype) for n in "aby"]   # residual add with a ReLU
        node, g = graph_of("add", ts[:2], ts[2], {**add_attrs(*ts), **activation_clamp(ts[2], "relu")})
        cases.append((node, g, [rand_values(rng, t, 1)[0] for t in ts[:2]], {}))
        for make in (prelu_case, affine_case):
            node, g, x_t, *_ = make(rng, dtype)
            cases.append((node, g, [rand_values(rng, x_t, 1)[0]], {}))
    kinds = {(n.op, g.tensor(n.outputs[0]).dtype, len(n.inputs)) for n, g, *_ in cases}
    assert {op for op, *_ in kinds} == set(TABLE)
    assert len(kinds) == 2 * (3 * 2 + 2)
    proc = cdriver.run_program(driver_source(cases), ELEM_SOURCES, name="elem_driver")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"0 of {len(cases)} cases differ" in proc.stdout
