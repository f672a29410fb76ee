"""CNN ops: the NumPy oracle (pqlr.ir.ops_nn) and the C reference kernels agree bit for bit.

Hypothesis draws shapes (odd sizes, stride/padding corners), weight bit-widths 8/4/2/1, s8 and s16
activations, zero points, clamps and extreme values/multipliers; the C runs through ctypes
(UBSan build) and, once, as a standalone ASan+UBSan driver emitted through OpDef.c_call.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdriver
from cdriver import NN_SOURCES
from pqlr import primitives as P
from pqlr.errors import UnsupportedError
from pqlr.ir.graph import Graph, Node, Tensor
from pqlr.ir.ops_nn import (NN_OPS, STRUCT_FIELDS, activation_clamp, add_attrs, c_kernel,
                             pool_attrs, requant_params, requantize_attrs)

INT32_MAX = 2**31 - 1
RANGE = {"s8": (-128, 127), "s16": (-32768, 32767)}
NP = {"s8": np.int8, "s16": np.int16}
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


# ---------------------------------------------------------------- helpers
def graph_of(op: str, ins: list[Tensor], out: Tensor, attrs=None, params=None) -> tuple[Node, Graph]:
    node = Node("layer0", op, [t.name for t in ins], [out.name], dict(attrs or {}), dict(params or {}))
    g = Graph({t.name: t for t in [*ins, out]}, [node], [t.name for t in ins], [out.name])
    g.validate()
    return node, g


def run_c(lib, node: Node, g: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    """Run the node's C kernel sample by sample through ctypes."""
    k = c_kernel(node, g)
    params = cdriver.int32_struct(k.struct_type, STRUCT_FIELDS[k.struct_type])(**k.fields)
    out_t = g.tensor(node.outputs[0])
    y = np.zeros((inputs[0].shape[0], *out_t.shape), NP[out_t.dtype])
    arrays = {name: np.ascontiguousarray(v) for name, v in node.params.items()}
    for i in range(y.shape[0]):
        per = {**arrays, "out": y[i], **{f"in{j}": np.ascontiguousarray(x[i]) for j, x in enumerate(inputs)}}
        status = cdriver.call(lib, k.fn, params, *[per.get(a) for a in k.args])
        assert status == 0, f"{k.fn} returned {status}"
    return y


def check(lib, node: Node, g: Graph, inputs: list[np.ndarray]) -> np.ndarray:
    want = NN_OPS[node.op].run(inputs, node, g)
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


# ---------------------------------------------------------------- oracle vs C, per op
def test_struct_layout_matches_header(nn_lib):
    assert nn_lib.pqlr_layout_mismatches() == 0


SEEDS = given(seed=st.integers(0, 2**32 - 1))


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
def test_add_matches_c(nn_lib, seed):
    rng = np.random.default_rng(seed)
    dtype = pick(rng, ["s8", "s16"])
    shape = tuple(int(v) for v in rng.integers(1, 7, int(rng.integers(1, 4))))
    ts = [rand_tensor(rng, n, shape, dtype) for n in ("a", "b", "y")]
    for t in ts:   # scales spanning 2^-12 .. 2^4: ratios up to 2^16 either way
        t.scale = float(2.0 ** rng.uniform(-12, 4))
    act = pick(rng, [None, None, "relu", "relu6"])
    attrs = {**add_attrs(*ts), **activation_clamp(ts[2], act)}
    node, g = graph_of("add", ts[:2], ts[2], attrs)
    n = int(rng.integers(1, 4))
    xs = [rand_values(rng, t, n) for t in ts[:2]]
    y = check(nn_lib, node, g, xs)
    if act is None:   # float sanity: within 1 LSB of the real sum (saturating at the range)
        real = sum(P.dequantize(x, t.scale, t.zero_point) for x, t in zip(xs, ts))
        want = np.clip(real / ts[2].scale + ts[2].zero_point, *P.act_range(ts[2].bits))
        assert np.max(np.abs(y - want)) <= 1.0 + 1e-6


@SETTINGS
@SEEDS
def test_avg_pool_and_mean_match_c(nn_lib, seed):
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
    a, b, y = (Tensor(n, (4,), "s8", 8, 0.1, 0) for n in "aby")
    node, g = graph_of("add", [a, b], y, {**add_attrs(a, b, y), "left_shift": 24})
    with pytest.raises(UnsupportedError, match="layer0 \\(add\\).*overflows"):
        NN_OPS["add"].run([np.zeros((1, 4), np.int8)] * 2, node, g)


def test_builders_follow_the_float_model():
    out = Tensor("y", (4,), "s8", 8, 0.05, -10)
    assert activation_clamp(out, None) == {"act_min": -128, "act_max": 127}
    assert activation_clamp(out, "relu") == {"act_min": -10, "act_max": 127}
    assert activation_clamp(out, "relu6") == {"act_min": -10, "act_max": 110}     # -10 + 6 / 0.05
    assert activation_clamp(Tensor("y", (4,), "s8", 4, 0.5, -8), "relu6") == {"act_min": -8, "act_max": 4}
    with pytest.raises(UnsupportedError, match="gelu"):
        activation_clamp(out, "gelu")
    x_t, y_t = Tensor("x", (6, 5, 3), "s8", 8, 0.1, 4), Tensor("y", (3,), "s8", 8, 0.02, -7)
    node, g = graph_of("mean", [x_t], y_t, pool_attrs(x_t, y_t, 30))
    x = np.random.default_rng(6).integers(-128, 128, (4, 6, 5, 3)).astype(np.int8)
    y = NN_OPS["mean"].run([x], node, g)
    real = ((x.astype(float) - 4) * 0.1).mean(axis=(1, 2))
    assert np.max(np.abs(np.clip(real / 0.02 - 7, -128, 127) - y)) <= 1.0


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
        ts = [rand_tensor(rng, n, (3, 2, 5), dtype) for n in "aby"]
        node, g = graph_of("add", ts[:2], ts[2], {**add_attrs(*ts), **activation_clamp(ts[2], "relu")})
        cases.append((node, g, [rand_values(rng, t, 1)[0] for t in ts[:2]], {}))
        x_t, y_t = rand_tensor(rng, "x", (7, 5, 3), dtype), rand_tensor(rng, "y", (3, 2, 3), dtype)
        attrs = {"kernel": (3, 3), "stride": (2, 2), "padding": (0, 0, 1, 0), **pool_attrs(x_t, y_t, 9)}
        node, g = graph_of("avg_pool2d", [x_t], y_t, attrs)
        cases.append((node, g, [rand_values(rng, x_t, 1)[0]], {}))
        x_t, y_t = rand_tensor(rng, "x", (25, 7), dtype), rand_tensor(rng, "y", (7,), dtype)
        node, g = graph_of("mean", [x_t], y_t, pool_attrs(x_t, y_t, 25))
        cases.append((node, g, [rand_values(rng, x_t, 1)[0]], {}))
        for out_dtype in ("s8", "s16"):
            x_t, y_t = rand_tensor(rng, "x", (3, 4), dtype), rand_tensor(rng, "y", (12,), out_dtype)
            node, g = graph_of("requantize", [x_t], y_t, requantize_attrs(x_t, y_t))
            cases.append((node, g, [rand_values(rng, x_t, 1)[0]], {}))
    return cases


def driver_source(cases) -> str:
    """A C program running every case through the code that OpDef.c_call emits."""
    lines = ['#include <stdio.h>', '#include <string.h>', '#include "pqlr.h"', '']
    checks = []
    for c, (node, g, xs, tile) in enumerate(cases):
        want = NN_OPS[node.op].run([x[None] for x in xs], node, g)[0]
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
        call = NN_OPS[node.op].c_call(node, g, [f"c{c}_in{i}" for i in range(len(xs))], f"c{c}_out", symbols)
        lines += [f"static pqlr_status case_{c}(void)", "{", call, "    return PQLR_OK;", "}", ""]
        checks.append(f'    if (case_{c}() != PQLR_OK || memcmp(c{c}_out, c{c}_want, sizeof c{c}_want)) {{\n'
                      f'        printf("case {c} ({node.op}) differs\\n");\n        bad++;\n    }}')
    return "\n".join(lines + ["int main(void)", "{", "    int bad = 0;", *checks,
                              f'    printf("%d of {len(cases)} cases differ\\n", bad);',
                              "    return bad != 0;", "}", ""])


def test_c_call_code_in_sanitized_driver():
    cases = driver_cases(np.random.default_rng(12))
    ops = {(n.op, g.tensor(n.outputs[0]).dtype) for n, g, _, _ in cases}
    assert {op for op, _ in ops} == set(NN_OPS) and len(ops) == 2 * len(NN_OPS)
    proc = cdriver.run_program(driver_source(cases), NN_SOURCES, name="nn_driver")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"0 of {len(cases)} cases differ" in proc.stdout
