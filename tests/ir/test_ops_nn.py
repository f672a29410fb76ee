"""CNN ops: the NumPy oracle (pqlr.ir.ops_nn) and the C reference kernels agree bit for bit.

Hypothesis draws shapes (odd sizes, stride/padding corners), weight bit-widths 8/4/2/1, s8 and s16
activations, zero points, clamps and extreme values/multipliers; the C runs through ctypes
(UBSan build) and, once, as a standalone ASan+UBSan driver emitted through OpDef.c_call.
"""
from __future__ import annotations

import numpy as np
import pytest

import cdriver
from cdriver import NN_SOURCES
from opcases import (INT32_MAX, NP, RANGE, SEEDS, SETTINGS, check, graph_of, pick, rand_clamp, rand_multipliers,
                     rand_tensor, rand_values, rand_weighted, weighted_layer, driver_source)
from pqlr import primitives as P
from pqlr.errors import UnsupportedError
from pqlr.ir.graph import Graph, Node, Tensor
from pqlr.ir.ops_nn import NN_OPS, STRUCT_FIELDS, activation_clamp, c_kernel, requant_params, requantize_attrs


# ---------------------------------------------------------------- oracle vs C, per op
def test_struct_layout_matches_header(nn_lib):
    assert nn_lib.pqlr_layout_mismatches() == 0


@SETTINGS
@SEEDS
def test_conv2d_and_depthwise_match_c(nn_lib, seed):
    rng = np.random.default_rng(seed)
    op, dtype = pick(rng, ["conv2d", "depthwise_conv2d"]), pick(rng, ["s8", "s16"])
    h, w, c_in = (int(v) for v in rng.integers(1, [8, 8, 7]))
    pads = tuple(int(v) for v in rng.integers(0, 3, 4))
    kh = int(rng.integers(1, min(5, h + pads[0] + pads[2]) + 1))
    kw = int(rng.integers(1, min(5, w + pads[1] + pads[3]) + 1))
    sh, sw = (int(v) for v in rng.integers(1, 4, 2))
    oh, ow = (h + pads[0] + pads[2] - kh) // sh + 1, (w + pads[1] + pads[3] - kw) // sw + 1
    c_out = c_in if op == "depthwise_conv2d" else int(rng.integers(1, 8))
    x_t, y_t = rand_tensor(rng, "x", (h, w, c_in), dtype), rand_tensor(rng, "y", (oh, ow, c_out), dtype)
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    k = kh * kw * (1 if op == "depthwise_conv2d" else c_in)
    wbits, params, fits = rand_weighted(rng, c_out, k, x_t, x, y_t)
    attrs = {"kernel": (kh, kw), "stride": (sh, sw), "padding": pads, "wbits": wbits, **rand_clamp(rng, y_t)}
    node, g = graph_of(op, [x_t], y_t, attrs, params)
    assert fits, "K <= 7*4*6 always fits"
    check(nn_lib, node, g, [x])


@SETTINGS
@SEEDS
def test_fully_connected_matches_c(nn_lib, seed):
    rng = np.random.default_rng(seed)
    dtype = pick(rng, ["s8", "s16"])
    k, c_out = int(rng.integers(1, 400)), int(rng.integers(1, 14))
    lead = pick(rng, [(), (1,), (2,), (5,)])                      # (K,) or (T, K) tokens
    x_t, y_t = rand_tensor(rng, "x", (*lead, k), dtype), rand_tensor(rng, "y", (*lead, c_out), dtype)
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    wbits, params, fits = rand_weighted(rng, c_out, k, x_t, x, y_t)
    node, g = graph_of("fully_connected", [x_t], y_t, {"wbits": wbits, **rand_clamp(rng, y_t)}, params)
    if not fits:      # s16 x 8-bit weights beyond K = 255: refused, naming the layer
        with pytest.raises(UnsupportedError, match="layer0.*accumulator"):
            NN_OPS["fully_connected"].run([x], node, g)
        return
    check(nn_lib, node, g, [x])


@SETTINGS
@SEEDS
def test_requantize_matches_c(nn_lib, seed):
    rng = np.random.default_rng(seed)
    a, b = pick(rng, ["s8", "s16"]), pick(rng, ["s8", "s16"])
    shape = tuple(int(v) for v in rng.integers(1, 8, int(rng.integers(1, 4))))
    x_t, y_t = rand_tensor(rng, "x", shape, a), rand_tensor(rng, "y", shape[::-1], b)
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    m, n = rand_multipliers(rng, 1, np.std(x.astype(float)) + 1, y_t)
    node, g = graph_of("requantize", [x_t], y_t, {"multiplier": int(m[0]), "shift": int(n[0]),
                                                   **rand_clamp(rng, y_t)})
    check(nn_lib, node, g, [x])


# ---------------------------------------------------------------- deterministic corners
KWS_LAYERS = [  # (op, in, out, wbits, dtype, attrs): DS-CNN / KWS-transformer shapes and corners
    ("conv2d", (49, 10, 1), (25, 5, 64), 8, "s8", dict(kernel=(10, 4), stride=(2, 2), padding=(4, 1, 5, 2))),
    ("depthwise_conv2d", (25, 5, 64), (25, 5, 64), 4, "s8", dict(kernel=(3, 3), padding=(1, 1, 1, 1))),
    ("conv2d", (25, 5, 64), (25, 5, 64), 2, "s8", dict(kernel=(1, 1))),
    ("conv2d", (25, 5, 63), (25, 5, 33), 1, "s16", dict(kernel=(1, 1))),        # W1A16 pointwise
    ("depthwise_conv2d", (9, 7, 5), (3, 3, 5), 1, "s16", dict(kernel=(3, 3), stride=(3, 3), padding=(0, 1, 0, 1))),
    ("fully_connected", (64,), (12,), 8, "s8", {}),
    ("fully_connected", (25, 64), (25, 129), 4, "s8", {}),                      # per token
    ("fully_connected", (7, 255), (7, 3), 8, "s16", {}),                     # largest s16 x int8 K
]


@pytest.mark.parametrize("op,in_shape,out_shape,wbits,dtype,attrs", KWS_LAYERS)
def test_kws_layer_shapes_match_c(nn_lib, op, in_shape, out_shape, wbits, dtype, attrs):
    node, g, x = weighted_layer(np.random.default_rng(7), op, in_shape, out_shape, wbits, dtype, **attrs)
    y = check(nn_lib, node, g, [x])
    assert np.unique(y).size > 10, "outputs should spread over many values (multiplier sanity)"


@pytest.mark.parametrize("dtype", ["s8", "s16"])
@pytest.mark.parametrize("wbits", [8, 4, 2, 1])
def test_accumulator_bound_holds_at_extremes(nn_lib, dtype, wbits):
    """|x - zp| = 2^b - 1 and max-magnitude weights of one sign: the accumulator reaches exactly
    accumulator_bound(K) + bias = 2^31 - 1 without overflow; one more input is refused."""
    b = 16 if dtype == "s16" else 8
    lo, hi = RANGE[dtype]
    wlo = P.weight_range(wbits)[0]
    per = (2**b - 1) * abs(wlo)
    k = min(INT32_MAX // per, 20000)
    bound = P.accumulator_bound(k, b, wbits)
    assert bound == k * per <= INT32_MAX
    x_t, y_t = Tensor("x", (k,), dtype, b, 1.0, hi), Tensor("y", (1,), dtype, b, 1.0, 0)
    m, n = P.quantize_multiplier(1000.0 / 2**31)
    params = {"weight": P.pack_weights(np.full((1, k), wlo), wbits),
              "bias": np.array([INT32_MAX - bound], np.int32),
              "multiplier": np.array([m], np.int32), "shift": np.array([n], np.int8)}
    node, g = graph_of("fully_connected", [x_t], y_t, {"wbits": wbits}, params)
    x = np.full((1, k), lo, NP[dtype])                 # x - zp = -(2^b - 1), w < 0: products > 0
    y = check(nn_lib, node, g, [x])
    assert int(y[0, 0]) == min(hi, (INT32_MAX * m + (1 << (n - 1))) >> n)
    if k == INT32_MAX // per:                          # the next K cannot be guaranteed: refused
        x_t.shape = (k + 1,)
        node.params["weight"] = P.pack_weights(np.full((1, k + 1), wlo), wbits)
        node.params["bias"] = np.zeros(1, np.int32)
        with pytest.raises(UnsupportedError, match="layer0.*accumulator"):
            NN_OPS["fully_connected"].run([np.full((1, k + 1), lo, NP[dtype])], node, g)


@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d", "fully_connected"])
def test_weight_tile_computes_only_its_channels(nn_lib, op):
    """ch_begin/ch_end + a weight pointer at row ch_begin (a tile buffer) give the untiled values
    on those channels and leave the others untouched."""
    shapes = {"conv2d": ((5, 4, 3), (5, 4, 7)), "depthwise_conv2d": ((5, 4, 7), (5, 4, 7)),
              "fully_connected": ((3, 20), (3, 7))}[op]
    attrs = {} if op == "fully_connected" else {"kernel": (3, 3), "padding": (1, 1, 1, 1)}
    node, g, x = weighted_layer(np.random.default_rng(3), op, *shapes, 4, "s8", **attrs)
    want = NN_OPS[op].run([x[:1]], node, g)[0]
    k = c_kernel(node, g)
    begin, end = 2, 5
    p = cdriver.int32_struct(k.struct_type, STRUCT_FIELDS[k.struct_type])(**{**k.fields, "ch_begin": begin, "ch_end": end})
    tile = np.ascontiguousarray(node.params["weight"][begin:end])    # rows 2..4 only
    y = np.full(want.shape, 99, np.int8)
    arrays = {**node.params, "weight": tile, "in0": np.ascontiguousarray(x[0]), "out": y}
    assert cdriver.call(nn_lib, k.fn, p, *[arrays[a] for a in k.args]) == 0
    np.testing.assert_array_equal(y[..., begin:end], want[..., begin:end])
    assert np.all(y[..., :begin] == 99) and np.all(y[..., end:] == 99)


def test_bad_arguments_return_err_arg_and_write_nothing(nn_lib):
    node, g, x = weighted_layer(np.random.default_rng(4), "conv2d", (5, 4, 3), (5, 4, 2), 8, "s8",
                                kernel=(3, 3), padding=(1, 1, 1, 1))
    k = c_kernel(node, g)
    Params = cdriver.int32_struct(k.struct_type, STRUCT_FIELDS[k.struct_type])
    base = {**node.params, "in0": np.ascontiguousarray(x[0])}
    bad_fields = [{"out_h": 4}, {"wbits": 3}, {"stride_h": 0}, {"pad_top": -1}, {"act_max": 128},
                  {"act_min": 10, "act_max": 9}, {"n_quant": 2 + 1}, {"ch_end": 3}, {"ch_begin": 2}]
    for bad in bad_fields:
        y = np.full((5, 4, 2), 77, np.int8)
        p = Params(**{**k.fields, **bad})
        assert cdriver.call(nn_lib, k.fn, p, *[{**base, "out": y}[a] for a in k.args]) == -1, bad
        assert np.all(y == 77), bad
    y = np.zeros((5, 4, 2), np.int8)
    for i, a in enumerate(k.args):           # every pointer but bias is required
        args = [{**base, "out": y}[b] for b in k.args]
        args[i] = None
        assert cdriver.call(nn_lib, k.fn, Params(**k.fields), *args) == (0 if a == "bias" else -1), a
    bad_shift = {**base, "out": y, "shift": np.array([0, 40], np.int8)}
    assert cdriver.call(nn_lib, k.fn, Params(**k.fields), *[bad_shift[a] for a in k.args]) == -1


def test_oracle_refuses_bad_layers_naming_them():
    rng = np.random.default_rng(5)
    node, g, x = weighted_layer(rng, "conv2d", (5, 4, 3), (5, 4, 2), 8, "s8", kernel=(3, 3), padding=(1, 1, 1, 1))
    run = NN_OPS["conv2d"].run
    cases = [({"attrs": {"wbits": 3}}, "wbits"), ({"attrs": {"padding": (0, 0, 0, 0)}}, "inconsistent"),
             ({"attrs": {"act_max": 300}}, "clamp"), ({"params": {"shift": np.array([63], np.int8)}}, "shift"),
             ({"params": {"weight": node.params["weight"][:, :-1]}}, "packed"),
             ({"params": {"multiplier": np.ones(3, np.int32)}}, "lengths")]
    for change, msg in cases:
        bad = Node(node.name, node.op, node.inputs, node.outputs, {**node.attrs, **change.get("attrs", {})},
                   {**node.params, **change.get("params", {})})
        with pytest.raises(UnsupportedError, match=f"layer0 \\(conv2d\\).*{msg}"):
            run([x], bad, g)
    g.tensors["y"].dtype = "s16"
    with pytest.raises(UnsupportedError, match="requantize"):
        run([x], node, g)


def test_builders_follow_the_float_model():
    out = Tensor("y", (4,), "s8", 8, 0.05, -10)
    assert activation_clamp(out, None) == {"act_min": -128, "act_max": 127}
    assert activation_clamp(out, "relu") == {"act_min": -10, "act_max": 127}
    assert activation_clamp(out, "relu6") == {"act_min": -10, "act_max": 110}     # -10 + 6 / 0.05
    assert activation_clamp(Tensor("y", (4,), "s8", 4, 0.5, -8), "relu6") == {"act_min": -8, "act_max": 4}
    with pytest.raises(UnsupportedError, match="gelu"):
        activation_clamp(out, "gelu")


def test_requant_params_match_float_fully_connected():
    """Integer FC with requant_params is within 1 LSB of the float layer on dequantized weights."""
    rng = np.random.default_rng(9)
    w, b = rng.normal(0, 0.2, (10, 30)), rng.normal(0, 0.5, 10)
    w_scale = np.abs(w).max(axis=1) / 7
    q, s_in, s_out = P.quantize_weight(w, w_scale, 4), 0.1, 0.15
    x_t, y_t = Tensor("x", (30,), "s8", 8, s_in, 3), Tensor("y", (10,), "s8", 8, s_out, -5)
    params = {"weight": P.pack_weights(q, 4), "bias": P.quantize_bias(b, s_in, w_scale),
              **requant_params(s_in, w_scale, s_out)}
    node, g = graph_of("fully_connected", [x_t], y_t, {"wbits": 4}, params)
    x = rng.integers(-128, 128, (16, 30)).astype(np.int8)
    y = NN_OPS["fully_connected"].run([x], node, g)
    real = P.dequantize(x, s_in, 3) @ (q * w_scale[:, None]).T + params["bias"] * s_in * w_scale
    assert np.max(np.abs(np.clip(real / s_out - 5, -128, 127) - y)) <= 1.0


def test_macs_scratch_and_op_table():
    from pqlr.ir.ops import OPS
    node, g, _ = weighted_layer(np.random.default_rng(8), *KWS_LAYERS[0][:5], **KWS_LAYERS[0][5])
    assert NN_OPS["conv2d"].macs(node, g) == 25 * 5 * 64 * 10 * 4 * 1       # MLPerf DS-CNN conv1
    node, g, _ = weighted_layer(np.random.default_rng(8), *KWS_LAYERS[1][:5], **KWS_LAYERS[1][5])
    assert NN_OPS["depthwise_conv2d"].macs(node, g) == 25 * 5 * 64 * 9
    node, g, _ = weighted_layer(np.random.default_rng(8), *KWS_LAYERS[6][:5], **KWS_LAYERS[6][5])
    assert NN_OPS["fully_connected"].macs(node, g) == 25 * 64 * 129
    assert NN_OPS["fully_connected"].scratch_bytes(node, g) == 0
    for name, op in NN_OPS.items():
        assert OPS[name] is op and op.name == name


# ---------------------------------------------------------------- standalone ASan + UBSan driver
def driver_cases(rng) -> list[tuple[Node, Graph, list[np.ndarray], dict]]:
    """(node, graph, one sample's inputs, tile) for every op and dtype, plus weight tiles."""
    cases = []
    for dtype in ("s8", "s16"):
        for op, i, o, wbits, dt, attrs in KWS_LAYERS[3:]:
            node, g, x = weighted_layer(rng, op, i, o, wbits if dtype == "s8" else 1, dtype, **attrs)
            cases.append((node, g, [x[0]], {}))
        node, g, x = weighted_layer(rng, "fully_connected", (4, 9), (4, 6), 2, dtype)
        cases.append((node, g, [x[0]], {"ch_begin": 1, "ch_end": 4}))
        node, g, x = weighted_layer(rng, "depthwise_conv2d", (4, 3, 5), (4, 3, 5), 4, dtype,
                                    kernel=(3, 3), padding=(1, 1, 1, 1))
        cases.append((node, g, [x[0]], {"ch_begin": 3, "ch_end": 5}))
        for out_dtype in ("s8", "s16"):
            x_t, y_t = rand_tensor(rng, "x", (3, 4), dtype), rand_tensor(rng, "y", (12,), out_dtype)
            node, g = graph_of("requantize", [x_t], y_t, requantize_attrs(x_t, y_t))
            cases.append((node, g, [rand_values(rng, x_t, 1)[0]], {}))
    return cases


def test_c_call_code_in_sanitized_driver():
    cases = driver_cases(np.random.default_rng(12))
    ops = {(n.op, g.tensor(n.outputs[0]).dtype) for n, g, _, _ in cases}
    assert {op for op, _ in ops} == set(NN_OPS) and len(ops) == 2 * len(NN_OPS)
    proc = cdriver.run_program(driver_source(cases), NN_SOURCES, name="nn_driver")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"0 of {len(cases)} cases differ" in proc.stdout
