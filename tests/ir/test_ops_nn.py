"""CNN ops: the NumPy oracle (pqlr.ir.ops_nn) and the C reference kernels agree bit for bit.

Hypothesis draws shapes (odd sizes, stride/padding/dilation corners, groups: ordinary, depthwise as
groups with a channel multiplier, none; inputs of rank 3, 2 (a 1-D convolution over T) and 1),
weight bit-widths 8/4/2/1, s8 and s16 activations, zero points, clamps and extreme
values/multipliers; the C runs through ctypes (UBSan build) and, once, as a standalone ASan+UBSan
driver emitted through OpDef.c_call. A float check ties the oracle to PyTorch's F.conv2d / F.conv1d.
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


def test_conv_struct_fields_before_dilation_keep_their_offsets():
    """dilation_h, dilation_w, groups were appended: every older field keeps its offset (the
    layout test above checks the offsets against the header)."""
    old = ("in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "kernel_h", "kernel_w", "stride_h",
           "stride_w", "pad_top", "pad_left", "pad_bottom", "pad_right", "wbits", "in_zp", "out_zp",
           "act_min", "act_max", "n_quant", "ch_begin", "ch_end")
    assert STRUCT_FIELDS["pqlr_conv2d_params"] == (*old, "dilation_h", "dilation_w", "groups")


def conv_case(rng, op: str) -> dict:
    """A random convolution geometry: rank 3 (H, W, C), 2 (T, C: kernel (K, 1), stride (S, 1),
    dilation (D, 1), padding (top, 0, bottom, 0)) or 1 (C,: stride past the window, so 1x1 out);
    dilation 1-3; conv2d groups 1, G (ordinary) or C_in (depthwise as groups, C_out = k * C_in)."""
    rank = pick(rng, [3, 3, 3, 2, 2, 1])
    groups = 1
    if op == "depthwise_conv2d":
        c_in = c_out = int(rng.integers(1, 7))
    else:
        kind = pick(rng, ["one", "one", "groups", "groups", "depthwise"])
        if kind == "one":
            c_in, c_out = int(rng.integers(1, 7)), int(rng.integers(1, 8))
        elif kind == "groups":
            groups = int(rng.integers(2, 4))
            c_in, c_out = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
        else:
            c_in = groups = int(rng.integers(1, 7))
            c_out = c_in * int(rng.integers(1, 4))
    h, w = {3: rng.integers(1, [9, 9]), 2: (rng.integers(1, 13), 1), 1: (1, 1)}[rank]
    h, w = int(h), int(w)
    pads = tuple(int(v) for v in rng.integers(0, 3, 4))
    dil = (1, 1) if rng.random() < 0.4 else tuple(int(v) for v in rng.integers(1, 4, 2))
    if rank == 2:
        pads, dil = (pads[0], 0, pads[2], 0), (dil[0], 1)
    kernel = []
    for size, pad, d in ((h, pads[0] + pads[2], dil[0]), (w, pads[1] + pads[3], dil[1])):
        k_max = (size + pad - 1) // d + 1                     # dilated window inside the padded input
        kernel.append(1 if rank == 2 and size == w else int(rng.integers(1, min(4, k_max) + 1)))
    stride = [int(v) for v in rng.integers(1, 4, 2)]
    if rank == 2:
        stride[1] = 1
    span = [size + p0 + p1 - d * (k - 1) - 1 for size, p0, p1, d, k in
            ((h, pads[0], pads[2], dil[0], kernel[0]), (w, pads[1], pads[3], dil[1], kernel[1]))]
    if rank == 1:                                             # one output pixel
        stride = [sp + int(rng.integers(1, 3)) for sp in span]
    oh, ow = (sp // st + 1 for sp, st in zip(span, stride))
    shapes = {3: ((h, w, c_in), (oh, ow, c_out)), 2: ((h, c_in), (oh, c_out)), 1: ((c_in,), (c_out,))}[rank]
    assert rank != 2 or ow == 1
    attrs = {"kernel": tuple(kernel), "stride": tuple(stride), "padding": pads}
    if dil != (1, 1) or rng.random() < 0.5:                   # the default when absent
        attrs["dilation"] = dil
    if op == "conv2d" and (groups != 1 or rng.random() < 0.5):
        attrs["groups"] = groups
    elif op == "depthwise_conv2d" and rng.random() < 0.3:
        attrs["groups"] = c_in                                # said, and equal to C: accepted
    k = kernel[0] * kernel[1] * (1 if op == "depthwise_conv2d" else c_in // groups)
    return {"in": shapes[0], "out": shapes[1], "attrs": attrs, "k": k, "c_out": c_out}


@SETTINGS
@SEEDS
def test_conv2d_and_depthwise_match_c(nn_lib, seed):
    rng = np.random.default_rng(seed)
    op, dtype = pick(rng, ["conv2d", "depthwise_conv2d"]), pick(rng, ["s8", "s16"])
    case = conv_case(rng, op)
    x_t, y_t = rand_tensor(rng, "x", case["in"], dtype), rand_tensor(rng, "y", case["out"], dtype)
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    wbits, params, fits = rand_weighted(rng, case["c_out"], case["k"], x_t, x, y_t)
    attrs = {**case["attrs"], "wbits": wbits, **rand_clamp(rng, y_t)}
    node, g = graph_of(op, [x_t], y_t, attrs, params)
    assert fits, "K <= 4*4*6 always fits"
    y = check(nn_lib, node, g, [x])
    assert y.shape == (len(x), *case["out"])


@SETTINGS
@SEEDS
def test_fully_connected_matches_c(nn_lib, seed):
    rng = np.random.default_rng(seed)
    dtype = pick(rng, ["s8", "s16"])
    k, c_out = int(rng.integers(1, 400)), int(rng.integers(1, 14))
    lead = pick(rng, [(), (1,), (2,), (5,), (2, 3), (3, 1), (2, 1, 3), (1, 2, 2)])   # ranks 1 to 4
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
    # dilation, groups, 1-D (T, C) and rank-3/4 fully connected
    ("conv2d", (40, 16), (36, 24), 4, "s8", dict(kernel=(3, 1), dilation=(2, 1), groups=4)),   # Conv1d
    ("conv2d", (50, 8), (23, 16), 8, "s16", dict(kernel=(5, 1), stride=(2, 1), dilation=(3, 1),
                                                padding=(4, 0, 4, 0), groups=8)),          # depthwise x2
    ("depthwise_conv2d", (11, 9, 6), (11, 9, 6), 2, "s8", dict(kernel=(3, 3), dilation=(2, 3),
                                                              padding=(2, 3, 2, 3))),
    ("conv2d", (9, 7, 6), (4, 3, 9), 1, "s8", dict(kernel=(3, 2), stride=(2, 2), dilation=(2, 2),
                                                    padding=(1, 0, 2, 1), groups=3)),
    ("fully_connected", (3, 4, 20), (3, 4, 11), 4, "s8", {}),
    ("fully_connected", (2, 3, 2, 17), (2, 3, 2, 5), 8, "s16", {}),
]


@pytest.mark.parametrize("op,in_shape,out_shape,wbits,dtype,attrs", KWS_LAYERS)
def test_kws_layer_shapes_match_c(nn_lib, op, in_shape, out_shape, wbits, dtype, attrs):
    if "groups" in attrs:          # weighted_layer sizes K for groups 1: pass the grouped weights
        node, g, x = grouped_layer(np.random.default_rng(7), op, in_shape, out_shape, wbits, dtype, **attrs)
    else:
        node, g, x = weighted_layer(np.random.default_rng(7), op, in_shape, out_shape, wbits, dtype, **attrs)
    y = check(nn_lib, node, g, [x])
    assert np.unique(y).size > 10, "outputs should spread over many values (multiplier sanity)"


def grouped_layer(rng, op: str, in_shape, out_shape, wbits: int, dtype: str, **attrs):
    """weighted_layer for a conv2d with attrs groups: weight rows of K = KH*KW*C_in/groups."""
    kh, kw = attrs["kernel"]
    node, g, x = weighted_layer(rng, op, in_shape, out_shape, wbits, dtype, **{**attrs, "groups": 1})
    c_out, k = out_shape[-1], kh * kw * in_shape[-1] // attrs["groups"]
    lo, hi = P.weight_range(wbits)
    q = rng.choice([-1, 1], (c_out, k)) if wbits == 1 else rng.integers(lo, hi + 1, (c_out, k))
    node.params["weight"] = P.pack_weights(q, wbits)
    node.attrs["groups"] = attrs["groups"]
    return node, g, x


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


@pytest.mark.parametrize("op", ["conv2d", "depthwise_conv2d", "fully_connected", "grouped", "dilated"])
def test_weight_tile_computes_only_its_channels(nn_lib, op):
    """ch_begin/ch_end + a weight pointer at row ch_begin (a tile buffer) give the untiled values
    on those channels and leave the others untouched (grouped: a tile across two groups;
    dilated: the depthwise general loop)."""
    shapes = {"conv2d": ((5, 4, 3), (5, 4, 7)), "depthwise_conv2d": ((5, 4, 7), (5, 4, 7)),
              "fully_connected": ((3, 20), (3, 7)), "grouped": ((5, 4, 6), (5, 4, 9)),
              "dilated": ((5, 4, 7), (5, 4, 7))}[op]
    attrs = {} if op == "fully_connected" else {"kernel": (3, 3), "padding": (1, 1, 1, 1)}
    rng = np.random.default_rng(3)
    if op == "grouped":
        op, (node, g, x) = "conv2d", grouped_layer(rng, "conv2d", *shapes, 4, "s8", **attrs, groups=3)
    elif op == "dilated":
        attrs.update(dilation=(2, 1), padding=(2, 1, 2, 1))
        op, (node, g, x) = "depthwise_conv2d", weighted_layer(rng, "depthwise_conv2d", *shapes, 4, "s8", **attrs)
    else:
        node, g, x = weighted_layer(rng, op, *shapes, 4, "s8", **attrs)
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


@pytest.mark.parametrize("dtype", ["s8", "s16"])
def test_bad_dilation_and_groups_return_err_arg_and_write_nothing(nn_lib, dtype):
    """The appended fields are checked like the others, on the plain layer (dilation 1, groups 1)
    and on the general one; a depthwise layer's groups must be its channel count."""
    lo = -128 if dtype == "s8" else -32768
    layers = [  # (op, in, out, attrs, bad field sets)
        ("conv2d", (7, 5, 6), (7, 5, 4), dict(kernel=(3, 3), padding=(1, 1, 1, 1)),
         [{"dilation_h": 0}, {"dilation_w": -1}, {"groups": 0}, {"groups": 4}, {"groups": -2},
          {"groups": 3},                                  # divides in_c 6 but not out_c 4
          {"dilation_h": 2},                              # out_h no longer matches
          {"dilation_h": 2**30, "dilation_w": 2**30},     # dilated extent overflows int32: refused
          {"pad_bottom": 2**31 - 8, "dilation_h": 2}]),
        ("conv2d", (9, 6), (5, 6), dict(kernel=(3, 1), dilation=(2, 1), groups=2),    # 1-D, general
         [{"groups": 4}, {"dilation_h": 1}, {"dilation_h": 3}, {"out_h": 6}, {"wbits": 3},
          {"ch_begin": 6}, {"act_min": lo - 1}, {"groups": 0}, {"dilation_w": 0}, {"n_quant": 2},
          {"pad_top": 2**31 - 1, "pad_bottom": 2**31 - 1}]),   # extents past int32 (formed in 64 bits)
        ("depthwise_conv2d", (6, 5, 4), (6, 5, 4), dict(kernel=(3, 3), padding=(1, 1, 1, 1)),
         [{"groups": 1}, {"groups": 2}, {"groups": 0}, {"dilation_w": 0}, {"dilation_h": 2}]),
        ("depthwise_conv2d", (6, 5, 4), (2, 5, 4), dict(kernel=(3, 3), dilation=(2, 1), padding=(0, 1, 0, 1)),
         [{"groups": 1}, {"groups": 8}, {"out_h": 3}, {"dilation_h": 1}, {"in_c": 2, "groups": 2}]),
    ]
    for op, i, o, attrs, bads in layers:
        rng = np.random.default_rng(4)
        node, g, x = (grouped_layer(rng, op, i, o, 8, dtype, **attrs) if "groups" in attrs
                      else weighted_layer(rng, op, i, o, 8, dtype, **attrs))
        k = c_kernel(node, g)
        Params = cdriver.int32_struct(k.struct_type, STRUCT_FIELDS[k.struct_type])
        y = np.zeros(o, NP[dtype])
        args = {**node.params, "in0": np.ascontiguousarray(x[0]), "out": y}
        assert cdriver.call(nn_lib, k.fn, Params(**k.fields), *[args[a] for a in k.args]) == 0
        assert np.array_equal(y, NN_OPS[op].run([x[:1]], node, g)[0])        # the good call is right
        for bad in bads:
            y[...] = 77
            p = Params(**{**k.fields, **bad})
            assert cdriver.call(nn_lib, k.fn, p, *[args[a] for a in k.args]) == -1, (op, bad)
            assert np.all(y == 77), (op, bad)
        args["in0"] = None                                  # NULL input on the general path too
        assert cdriver.call(nn_lib, k.fn, Params(**k.fields), *[args[a] for a in k.args]) == -1
    assert cdriver.call(nn_lib, "pqlr_conv2d_s8", None, None, None, None, None, None, None) == -1


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


def test_oracle_refuses_bad_dilation_groups_and_ranks():
    rng = np.random.default_rng(6)
    node, g, x = grouped_layer(rng, "conv2d", (7, 5, 6), (7, 5, 4), 8, "s8", kernel=(3, 3),
                               padding=(1, 1, 1, 1), groups=2)
    NN_OPS["conv2d"].run([x], node, g)                                      # the good layer runs
    cases = [({"groups": 4}, "does not divide"), ({"groups": 3}, "does not divide"),
             ({"groups": 0}, "invalid"), ({"groups": "two"}, "not an integer"),
             ({"dilation": (0, 1)}, "invalid"), ({"dilation": (2, 1)}, "inconsistent"),
             ({"dilation": (5, 1)}, "larger than the padded input"),
             ({"dilation": (1, 2, 3)}, "needs 2 values"), ({"groups": 1}, "packed")]
    for attrs, msg in cases:
        bad = Node(node.name, node.op, node.inputs, node.outputs, {**node.attrs, **attrs}, node.params)
        with pytest.raises(UnsupportedError, match=f"layer0 \\(conv2d\\).*{msg}"):
            NN_OPS["conv2d"].run([x], bad, g)
    node, g, x = weighted_layer(rng, "depthwise_conv2d", (6, 5, 4), (6, 5, 4), 8, "s8", kernel=(3, 3),
                                padding=(1, 1, 1, 1))
    NN_OPS["depthwise_conv2d"].run([x], Node(node.name, node.op, node.inputs, node.outputs,
                                             {**node.attrs, "groups": 4}, node.params), g)
    for groups in (1, 2):
        bad = Node(node.name, node.op, node.inputs, node.outputs, {**node.attrs, "groups": groups}, node.params)
        with pytest.raises(UnsupportedError, match="layer0 \\(depthwise_conv2d\\).*groups = channels"):
            NN_OPS["depthwise_conv2d"].run([x], bad, g)
    # ranks: conv input of rank 4, output rank != input rank; fully connected of rank 5
    for x_shape, y_shape, msg in [((2, 6, 5, 4), (2, 6, 5, 4), "needs \\(H, W, C\\)"),
                                  ((6, 5, 4), (30, 4), "output rank"), ((6, 4), (6, 1, 4), "output rank")]:
        x_t, y_t = Tensor("x", x_shape, "s8", 8, 0.1, 0), Tensor("y", y_shape, "s8", 8, 0.1, 0)
        bad_node, bad_g = graph_of("depthwise_conv2d", [x_t], y_t, node.attrs, node.params)
        with pytest.raises(UnsupportedError, match=f"layer0.*{msg}"):
            NN_OPS["depthwise_conv2d"].run([np.zeros((1, *x_shape), np.int8)], bad_node, bad_g)
    x_t, y_t = Tensor("x", (1, 2, 1, 2, 3), "s8", 8, 0.1, 0), Tensor("y", (1, 2, 1, 2, 2), "s8", 8, 0.1, 0)
    fc_params = {"weight": P.pack_weights(np.ones((2, 3), np.int64), 8),
                 "multiplier": np.array([2**30], np.int32), "shift": np.array([31], np.int8)}
    fc, fc_g = graph_of("fully_connected", [x_t], y_t, {"wbits": 8}, fc_params)
    with pytest.raises(UnsupportedError, match="layer0 \\(fully_connected\\).*rank 1 to 4"):
        NN_OPS["fully_connected"].run([np.zeros((1, 1, 2, 1, 2, 3), np.int8)], fc, fc_g)


def torch_layer(rng, dims: int, c_in: int, c_out: int, size, kernel, stride, padding, dilation, groups,
                wbits: int):
    """(float weight (C_out, C_in/G, *kernel), float bias, w_scale, int weight rows) of a random layer."""
    w = rng.normal(0, 0.3, (c_out, c_in // groups, *kernel))
    w_scale = np.abs(w).reshape(c_out, -1).max(axis=1) / max(P.weight_range(wbits)[1], 1)
    q = P.quantize_weight(w, w_scale, wbits).astype(np.int64)
    rows = np.moveaxis(q, 1, -1).reshape(c_out, -1)        # (C_out, KH[, KW], Cg) -> (kh, kw, ci) rows
    return w, rng.normal(0, 0.5, c_out), w_scale, q, rows


FLOAT_LAYERS = [  # (dims, c_in, c_out, size, kernel, stride, padding (before.., after..), dilation, groups, wbits)
    (2, 6, 9, (9, 8), (3, 3), (1, 2), ((1, 2), (1, 0)), (2, 1), 3, 8),   # grouped, dilated, asymmetric pad
    (2, 4, 8, (7, 7), (3, 3), (2, 2), ((2, 2), (2, 2)), (2, 2), 4, 4),    # depthwise-as-groups, multiplier 2
    (2, 5, 7, (6, 9), (2, 3), (1, 1), ((0, 0), (1, 1)), (1, 3), 1, 8),    # dilated, groups 1
    (1, 8, 12, (30,), (5,), (2,), ((4, 4),), (3,), 4, 8),                 # Conv1d, grouped, dilated
    (1, 6, 6, (25,), (3,), (1,), ((2, 2),), (2,), 6, 4),                  # Conv1d depthwise (groups = C)
    (1, 3, 5, (11,), (4,), (3,), ((0, 1),), (1,), 1, 2),                  # Conv1d plain, 2-bit
]


@pytest.mark.parametrize("layer", FLOAT_LAYERS)
def test_oracle_matches_torch_conv_within_one_lsb(layer):
    """The integer oracle == PyTorch's F.conv2d / F.conv1d (stride, padding, dilation, groups) on the
    dequantized weights, bias and input, within 1 LSB (the requantization's rounding)."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    dims, c_in, c_out, size, kernel, stride, pads, dilation, groups, wbits = layer
    rng = np.random.default_rng(sum(size) + c_out)
    w, b, w_scale, q, rows = torch_layer(rng, dims, c_in, c_out, size, kernel, stride, pads, dilation,
                                         groups, wbits)
    s_in, zp_in, s_out, zp_out = 0.05, 7, 0.04, -3
    x_q = rng.integers(-128, 128, (3, *size, c_in)).astype(np.int8)          # channels last
    bias = P.quantize_bias(b, s_in, w_scale)
    real_in = torch.tensor(P.dequantize(x_q, s_in, zp_in)).movedim(-1, 1)     # (N, C, *size)
    real_w = torch.tensor(q * w_scale.reshape(-1, *[1] * (dims + 1)))
    flat_pad = [p for before_after in reversed(pads) for p in before_after]  # F.pad: last dim first
    conv = F.conv2d if dims == 2 else F.conv1d
    real = conv(F.pad(real_in, flat_pad), real_w, torch.tensor(bias * s_in * w_scale), stride=stride,
                dilation=dilation, groups=groups).movedim(1, -1).numpy()      # (N, *out, C_out)
    want = np.clip(real / s_out + zp_out, -128, 127)
    # the IR layer: 2-D attrs; a 1-D layer is (T, C) with kernel (K, 1), ..., padding (top, 0, bottom, 0)
    ext = (lambda t, fill: (*t, fill)) if dims == 1 else (lambda t, fill: tuple(t))
    top_left = ext([p[0] for p in pads], 0)
    bottom_right = ext([p[1] for p in pads], 0)
    attrs = {"kernel": ext(kernel, 1), "stride": ext(stride, 1), "dilation": ext(dilation, 1),
             "padding": (top_left[0], top_left[1], bottom_right[0], bottom_right[1]), "groups": groups,
             "wbits": wbits}
    x_t = Tensor("x", (*size, c_in), "s8", 8, s_in, zp_in)
    y_t = Tensor("y", want.shape[1:], "s8", 8, s_out, zp_out)
    params = {"weight": P.pack_weights(rows, wbits), "bias": bias, **requant_params(s_in, w_scale, s_out)}
    node, g = graph_of("conv2d", [x_t], y_t, attrs, params)
    y = NN_OPS["conv2d"].run([x_q], node, g)
    assert y.shape == want.shape and np.unique(y).size > 10
    assert np.max(np.abs(y - want)) <= 1.0


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
    node, g, _ = grouped_layer(np.random.default_rng(8), "conv2d", (40, 16), (36, 24), 4, "s8",
                               kernel=(3, 1), dilation=(2, 1), groups=4)
    assert NN_OPS["conv2d"].macs(node, g) == 36 * 1 * 24 * 3 * 1 * (16 // 4)  # OH*OW*C_out*KH*KW*Cg
    node, g, _ = weighted_layer(np.random.default_rng(8), "depthwise_conv2d", (11, 9, 6), (11, 9, 6), 2, "s8",
                                kernel=(3, 3), dilation=(2, 3), padding=(2, 3, 2, 3))
    assert NN_OPS["depthwise_conv2d"].macs(node, g) == 11 * 9 * 6 * 3 * 3
    node, g, _ = weighted_layer(np.random.default_rng(8), "fully_connected", (2, 3, 2, 17), (2, 3, 2, 5), 8, "s8")
    assert NN_OPS["fully_connected"].macs(node, g) == 12 * 17 * 5           # rows = 2*3*2
    for name, op in NN_OPS.items():
        assert OPS[name] is op and op.name == name


# ---------------------------------------------------------------- standalone ASan + UBSan driver
def driver_cases(rng) -> list[tuple[Node, Graph, list[np.ndarray], dict]]:
    """(node, graph, one sample's inputs, tile) for every op and dtype, plus weight tiles."""
    cases = []
    for dtype in ("s8", "s16"):
        for op, i, o, wbits, dt, attrs in KWS_LAYERS[3:]:
            make = grouped_layer if "groups" in attrs else weighted_layer
            node, g, x = make(rng, op, i, o, wbits if dtype == "s8" else 1, dtype, **attrs)
            cases.append((node, g, [x[0]], {}))
        node, g, x = grouped_layer(rng, "conv2d", (9, 6), (5, 6), 4, dtype, kernel=(3, 1), dilation=(2, 1),
                                   groups=2)                               # 1-D, tile across groups
        cases.append((node, g, [x[0]], {"ch_begin": 2, "ch_end": 5}))
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
