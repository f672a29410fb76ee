"""Optimized CNN kernels (pqlr_nn_opt.h, *_opt.c) == the NumPy oracle == the reference kernels, bit for bit.

Hypothesis draws conv / depthwise / fully connected layers (odd sizes, strides, padding, channel
tiles, channel counts that are not multiples of 4, weights 8/4/2/1 bit, extreme zero points, biases
and multipliers incl. shifts < 33 that take the 64-bit requantization); the C runs through ctypes
(UBSan build). A real graph then runs on rv32imac in QEMU with the "opt" variant (pqlr.ir.ops_select):
same output bytes as the oracle, fewer retired instructions than the reference.
The optimized convolutions take plain layers only: a dilated or grouped layer is refused by the C
(-1, nothing written) and ops_select keeps the reference kernel for that node; 1-D (T, C)
convolutions and fully connected layers of any rank run optimized.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cdriver
from pqlr import primitives as P
from pqlr.errors import PqlrError
from pqlr.ir.graph import Graph, Node, Tensor
from opcases import struct_fields
from pqlr.ir.opkit import activation_clamp
from pqlr.ir.ops import OPS as NN_OPS
from pqlr.ir.ops import c_kernel
from pqlr.ir.ops_pool import pool_attrs
from pqlr.ir.ops_select import OPT_KERNELS, c_call, kernel_name, layer_kernel, use_variant

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
OPS = ("conv2d", "depthwise_conv2d", "fully_connected", "avg_pool2d")


@pytest.fixture(scope="module")
def lib():
    names = [f"pqlr_{op}_s8{v}.c" for op in OPS for v in ("", "_opt")]
    return cdriver.load_library(names, name="pqlr_nn_opt_test")


def layer(rng, op: str, wbits: int, shape, c_out: int, kernel=(1, 1), stride=(1, 1), padding=(0, 0, 0, 0),
          zp_in: int = -128, small_shift: bool = False, dilation=(1, 1), groups: int = 1) -> tuple[Node, Graph]:
    """One random s8 layer with packed weights, bias within the accumulator bound, per-channel quant.
    Convolutions: shape (H, W, C), or (T, C) read as (T, 1, C) (the output keeps the rank)."""
    x = Tensor("x", tuple(shape), "s8", 8, 0.05, zp_in)
    if op == "fully_connected":
        k, out_shape = shape[-1], (*shape[:-1], c_out)
    else:
        h, w, c_in = shape if len(shape) == 3 else (shape[0], 1, shape[1])
        oh = (h + padding[0] + padding[2] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
        ow = (w + padding[1] + padding[3] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
        k = kernel[0] * kernel[1] * (1 if op == "depthwise_conv2d" else c_in // groups)
        out_shape = (oh, ow, c_out) if len(shape) == 3 else (oh, c_out)
    y = Tensor("y", out_shape, "s8", 8, 0.1, int(rng.integers(-128, 128)))
    lo, hi = P.weight_range(wbits)
    q = rng.integers(lo, hi + 1, size=(c_out, k)) if wbits > 1 else rng.choice([-1, 1], size=(c_out, k))
    if rng.random() < 0.3:
        q[0] = lo                                               # extreme weights
    room = 2**31 - 1 - P.accumulator_bound(k, 8, wbits)
    bias = rng.integers(-min(room, 2**20), min(room, 2**20) + 1, size=c_out).astype(np.int32)
    bias[0] = room if rng.random() < 0.2 else bias[0]           # at the bound
    real = rng.uniform(2.0 ** -3, 0.5, c_out) if small_shift else rng.uniform(1e-5, 2e-3, c_out)
    m, n = zip(*(P.quantize_multiplier(float(r)) for r in real))
    n_q = c_out if rng.random() < 0.7 else 1
    attrs = {"wbits": wbits, **activation_clamp(y, "relu" if rng.random() < 0.5 else None)}
    if op != "fully_connected":
        attrs.update(kernel=kernel, stride=stride, padding=padding, dilation=dilation)
    if groups != 1:
        attrs["groups"] = groups
    params = {"weight": P.pack_weights(q, wbits), "bias": bias,
              "multiplier": np.array(m[:n_q], np.int32), "shift": np.array(n[:n_q], np.int8)}
    node = Node("l0", op, ["x"], ["y"], attrs, params)
    g = Graph({"x": x, "y": y}, [node], ["x"], ["y"])
    g.validate()
    return node, g


def run_c(lib, fn: str, node: Node, g: Graph, x: np.ndarray, tile=None) -> np.ndarray:
    """Run `fn` on each sample of x through ctypes; tile = (ch_begin, ch_end) computes only those."""
    k = c_kernel(node, g)
    fields = dict(k.fields)
    w = node.params.get("weight")
    if tile is not None:
        fields["ch_begin"], fields["ch_end"] = tile
        w = w[tile[0]:tile[1]]
    params = cdriver.int32_struct(k.struct_type, struct_fields()[k.struct_type])(**fields)
    y = np.zeros((len(x), *g.tensor("y").shape), np.int8)
    arrays = {a: np.ascontiguousarray(v) for a, v in node.params.items()}
    if w is not None:
        arrays["weight"] = np.ascontiguousarray(w)
    for i in range(len(x)):
        per = {**arrays, "in0": np.ascontiguousarray(x[i]), "out": y[i]}
        assert cdriver.call(lib, fn, params, *[per.get(a) for a in k.args]) == 0
    return y


def check(lib, node: Node, g: Graph, x: np.ndarray, tile=None) -> None:
    ref_fn = c_kernel(node, g).fn
    opt_fn = kernel_name(ref_fn, "opt")
    assert opt_fn == ref_fn + "_opt"
    want = NN_OPS[node.op].run([x], node, g)
    got = run_c(lib, opt_fn, node, g, x, tile)
    if tile is None:
        np.testing.assert_array_equal(got, want)
    else:
        np.testing.assert_array_equal(got[..., tile[0]:tile[1]], want[..., tile[0]:tile[1]])
    np.testing.assert_array_equal(got, run_c(lib, ref_fn, node, g, x, tile))


def inputs(rng, g: Graph, n: int = 2) -> np.ndarray:
    x = rng.integers(-128, 128, size=(n, *g.tensor("x").shape)).astype(np.int8)
    x[0].flat[: max(1, x[0].size // 3)] = -128                   # extreme inputs
    return x


# ---------------------------------------------------------------- hypothesis: random layers
@SETTINGS
@given(seed=st.integers(0, 2**31), op=st.sampled_from(["conv2d", "depthwise_conv2d"]),
       wbits=st.sampled_from([8, 8, 4, 4, 2, 1]), h=st.integers(1, 9), w=st.integers(1, 9),
       c_in=st.integers(1, 9), c_out=st.integers(1, 11), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 2), sw=st.integers(1, 2), pads=st.tuples(*[st.integers(0, 2)] * 4),
       zp=st.sampled_from([-128, 127, 0, -3]), small_shift=st.booleans(), tiled=st.booleans())
def test_conv_opt_matches(lib, seed, op, wbits, h, w, c_in, c_out, kh, kw, sh, sw, pads, zp, small_shift, tiled):
    rng = np.random.default_rng(seed)
    if op == "depthwise_conv2d":
        c_out = c_in
    if h + pads[0] + pads[2] < kh or w + pads[1] + pads[3] < kw:
        return
    node, g = layer(rng, op, wbits, (h, w, c_in), c_out, (kh, kw), (sh, sw), pads, zp, small_shift)
    tile = None
    if tiled and c_out > 1:
        b = int(rng.integers(0, c_out - 1))
        tile = (b, int(rng.integers(b + 1, c_out + 1)))
    check(lib, node, g, inputs(rng, g), tile)


@SETTINGS
@given(seed=st.integers(0, 2**31), wbits=st.sampled_from([8, 8, 4, 4, 2, 1]), rows=st.integers(0, 7),
       k=st.integers(1, 40), c_out=st.integers(1, 13), zp=st.sampled_from([-128, 127, 5]),
       small_shift=st.booleans(), lead=st.sampled_from([(), (), (2,), (3, 2)]))
def test_fully_connected_opt_matches(lib, seed, wbits, rows, k, c_out, zp, small_shift, lead):
    """Any rank: (K,), (T, K), and (..., T, K) of rank 3 and 4 (rows = the product)."""
    rng = np.random.default_rng(seed)
    shape = (k,) if rows == 0 else (*lead, rows, k)
    node, g = layer(rng, "fully_connected", wbits, shape, c_out, zp_in=zp, small_shift=small_shift)
    check(lib, node, g, inputs(rng, g))


@SETTINGS
@given(seed=st.integers(0, 2**31), mean=st.booleans(), h=st.integers(1, 9), w=st.integers(1, 9),
       c=st.integers(1, 11), kh=st.integers(1, 4), kw=st.integers(1, 4), pads=st.tuples(*[st.integers(0, 1)] * 4),
       zp=st.sampled_from([-128, 127, 0]), relu=st.booleans())
def test_avg_pool_opt_matches(lib, seed, mean, h, w, c, kh, kw, pads, zp, relu):
    rng = np.random.default_rng(seed)
    kh, kw = (h, w) if mean else (kh, kw)
    if h + pads[0] + pads[2] < kh or w + pads[1] + pads[3] < kw or (mean and any(pads)):
        return
    x = Tensor("x", (h, w, c), "s8", 8, 0.05, zp)
    stride = (int(rng.integers(1, kh + 1)), int(rng.integers(1, kw + 1)))
    oh, ow = (h + pads[0] + pads[2] - kh) // stride[0] + 1, (w + pads[1] + pads[3] - kw) // stride[1] + 1
    y = Tensor("y", (c,) if mean else (oh, ow, c), "s8", 8, float(rng.uniform(0.01, 0.2)), int(rng.integers(-128, 128)))
    attrs = {**pool_attrs(x, y, kh * kw), **activation_clamp(y, "relu" if relu else None)}
    if not mean:
        attrs.update(kernel=(kh, kw), stride=stride, padding=pads)
    node = Node("l0", "mean" if mean else "avg_pool2d", ["x"], ["y"], attrs, {})
    g = Graph({"x": x, "y": y}, [node], ["x"], ["y"])
    g.validate()
    check(lib, node, g, inputs(rng, g))


@pytest.mark.parametrize("op,kernel,stride,padding", [
    ("conv2d", (1, 1), (1, 1), (0, 0, 0, 0)),                  # DS-CNN pointwise: the GEMM path
    ("conv2d", (10, 4), (2, 2), (5, 1, 5, 1)),                 # DS-CNN first conv
    ("depthwise_conv2d", (3, 3), (1, 1), (1, 1, 1, 1)),        # DS-CNN depthwise: unrolled 3x3
])
@pytest.mark.parametrize("wbits", [8, 4])
def test_ds_cnn_shapes(lib, op, kernel, stride, padding, wbits):
    rng = np.random.default_rng(7)
    shape = (49, 10, 1) if kernel == (10, 4) else (25, 5, 16)
    node, g = layer(rng, op, wbits, shape, 16, kernel, stride, padding)
    check(lib, node, g, inputs(rng, g))


@pytest.mark.parametrize("op,kernel,stride,padding", [
    ("conv2d", (3, 1), (1, 1), (1, 0, 1, 0)),                 # Conv1d on (T, C), padded
    ("conv2d", (1, 1), (1, 1), (0, 0, 0, 0)),                 # pointwise over T
    ("conv2d", (5, 1), (2, 1), (2, 0, 1, 0)),                 # strided, asymmetric
    ("depthwise_conv2d", (3, 1), (1, 1), (1, 0, 1, 0)),
])
@pytest.mark.parametrize("wbits", [8, 4])
def test_conv1d_shapes(lib, op, kernel, stride, padding, wbits):
    """(T, C) inputs are (T, 1, C) maps: the optimized kernels take them like any plain layer."""
    rng = np.random.default_rng(5)
    node, g = layer(rng, op, wbits, (23, 12), 12, kernel, stride, padding)
    assert len(g.tensor("y").shape) == 2
    check(lib, node, g, inputs(rng, g))


@pytest.mark.parametrize("stride", [(1, 1), (2, 2), (2, 1), (1, 2)])
@pytest.mark.parametrize("padding", [(0, 0, 0, 0), (1, 1, 1, 1), (2, 0, 1, 2), (0, 2, 2, 1)])
def test_depthwise_3x3_paths(lib, stride, padding):
    """Column runs (stride 1: the sliding run), padded edge columns, edge rows, odd run lengths."""
    rng = np.random.default_rng(sum(stride) * 10 + sum(padding))
    node, g = layer(rng, "depthwise_conv2d", 8, (7, 4, 5), 5, (3, 3), stride, padding, zp_in=127)
    check(lib, node, g, inputs(rng, g))


def test_bad_arguments_rejected(lib):
    node, g = layer(np.random.default_rng(0), "conv2d", 8, (4, 4, 3), 4, (3, 3))
    k = c_kernel(node, g)
    bad = cdriver.int32_struct(k.struct_type, struct_fields()[k.struct_type])(**{**k.fields, "out_h": 9})
    y = np.zeros(g.tensor("y").shape, np.int8)
    x = np.zeros(g.tensor("x").shape, np.int8)
    prm = node.params
    assert cdriver.call(lib, "pqlr_conv2d_s8_opt", bad, x, prm["weight"], prm["bias"], prm["multiplier"],
                        prm["shift"], y) == -1
    assert not y.any()


UNSUPPORTED = [  # (op, shape, c_out, kernel, stride, padding, dilation, groups): the opt kernels refuse
    ("conv2d", (6, 5, 4), 4, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1),
    ("conv2d", (6, 5, 4), 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 2),
    ("conv2d", (6, 5, 4), 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 4),  # depthwise as groups, x2
    ("conv2d", (1, 1, 4), 4, (1, 1), (1, 1), (0, 0, 0, 0), (2, 1), 1),  # dilated 1x1: still refused
    ("conv2d", (12, 6), 6, (3, 1), (1, 1), (2, 0, 2, 0), (2, 1), 3),    # Conv1d, grouped and dilated
    ("conv2d", (7, 7, 3), 4, (2, 2), (3, 3), (0, 0, 0, 0), (2, 2), 1),  # out size as if undilated
    ("depthwise_conv2d", (6, 5, 4), 4, (3, 3), (1, 1), (2, 1, 2, 1), (2, 1), 4),
    ("depthwise_conv2d", (12, 5), 5, (3, 1), (1, 1), (3, 0, 3, 0), (3, 1), 5),   # Conv1d depthwise
    ("depthwise_conv2d", (7, 5, 4), 4, (2, 1), (3, 1), (0, 0, 0, 0), (2, 1), 4),  # out size as if undilated
    ("depthwise_conv2d", (6, 5, 4), 4, (1, 1), (1, 1), (0, 0, 0, 0), (3, 2), 4),  # dilated 1x1
]


@pytest.mark.parametrize("case", UNSUPPORTED)
def test_opt_kernels_refuse_dilated_and_grouped_layers(lib, case):
    """The optimized kernel returns -1 and writes nothing; the reference kernel (what ops_select
    emits for the node) computes the oracle's values."""
    op, shape, c_out, kernel, stride, padding, dilation, groups = case
    rng = np.random.default_rng(21)
    node, g = layer(rng, op, 8, shape, c_out, kernel, stride, padding, -3, dilation=dilation, groups=groups)
    ref_fn = c_kernel(node, g).fn
    assert layer_kernel(node, g, "opt") == ref_fn and layer_kernel(node, g, "reference") == ref_fn
    x = inputs(rng, g, 1)
    k = c_kernel(node, g)
    params = cdriver.int32_struct(k.struct_type, struct_fields()[k.struct_type])(**k.fields)
    y = np.full(g.tensor("y").shape, 55, np.int8)
    args = {**node.params, "in0": np.ascontiguousarray(x[0]), "out": y}
    assert cdriver.call(lib, kernel_name(ref_fn, "opt"), params, *[args[a] for a in k.args]) == -1
    assert np.all(y == 55)
    np.testing.assert_array_equal(run_c(lib, ref_fn, node, g, x), NN_OPS[op].run([x], node, g))


def test_selection_is_per_layer():
    """Under "opt", a dilated / grouped layer keeps its reference call (no prototype added), the
    plain layers beside it are renamed; use_variant applies the same rule to the ops table."""
    rng = np.random.default_rng(2)
    plain, g_plain = layer(rng, "conv2d", 8, (6, 5, 4), 4, (3, 3), padding=(1, 1, 1, 1))
    for case in UNSUPPORTED:
        op, shape, c_out, kernel, stride, padding, dilation, groups = case
        node, g = layer(rng, op, 8, shape, c_out, kernel, stride, padding, dilation=dilation, groups=groups)
        syms = {p: f"pqlr_l0_{p}" for p in node.params}
        ref = NN_OPS[op].c_call(node, g, ["in"], "out", syms)
        assert c_call(node, g, ["in"], "out", syms, "opt") == ref
        assert f"PQLR_CHECK(pqlr_{op}_s8(&p, in," in ref and "_opt" not in ref
        with use_variant("opt"):
            assert NN_OPS[op].c_call(node, g, ["in"], "out", syms) == ref
            assert "pqlr_conv2d_s8_opt(&p" in NN_OPS["conv2d"].c_call(plain, g_plain, ["in"], "out", syms)
    fc, g_fc = layer(rng, "fully_connected", 4, (2, 3, 5, 9), 7)        # rank 4: optimized
    assert layer_kernel(fc, g_fc, "opt") == "pqlr_fully_connected_s8_opt"
    assert layer_kernel(plain, g_plain, "opt") == "pqlr_conv2d_s8_opt"
    assert layer_kernel(plain, g_plain, "reference") == "pqlr_conv2d_s8"


def conv1d_graph(seed: int = 0) -> Graph:
    """(T, C) input -> Conv1d -> grouped dilated Conv1d -> dilated depthwise Conv1d -> per-token FC:
    plain layers (optimized under "opt") beside dilated / grouped ones (reference)."""
    rng = np.random.default_rng(seed)
    t = [Tensor(n, s, "s8", 8, sc, zp) for n, s, sc, zp in (
        ("x", (20, 6), 0.05, -3), ("c1", (20, 8), 0.04, -128), ("c2", (18, 8), 0.03, -128),
        ("d1", (18, 8), 0.035, -120), ("y", (18, 5), 0.1, 4))]
    specs = [("c1", "conv2d", "x", 8, dict(kernel=(3, 1), padding=(1, 0, 1, 0)), 1, 8),
             ("c2", "conv2d", "c1", 8, dict(kernel=(3, 1), dilation=(2, 1), padding=(1, 0, 1, 0)), 2, 4),
             ("d1", "depthwise_conv2d", "c2", 8, dict(kernel=(3, 1), dilation=(3, 1), padding=(3, 0, 3, 0)), 8, 8),
             ("y", "fully_connected", "d1", 5, {}, 1, 4)]
    ts = {x.name: x for x in t}
    nodes = []
    for out, op, src, c_out, attrs, groups, wbits in specs:
        c_in = ts[src].shape[-1]
        kh, kw = attrs.get("kernel", (1, 1))
        k = c_in if op == "fully_connected" else kh * kw * (1 if op == "depthwise_conv2d" else c_in // groups)
        lo, hi = P.weight_range(wbits)
        q = rng.integers(lo, hi + 1, (c_out, k))
        spread = np.sqrt(k) * 60 * np.sqrt(np.mean(q**2.0))     # rough accumulator spread
        m, n = zip(*(P.quantize_multiplier(float(r)) for r in rng.uniform(40, 80, c_out) / spread))
        params = {"weight": P.pack_weights(q, wbits),
                  "bias": rng.integers(-300, 300, c_out).astype(np.int32),
                  "multiplier": np.array(m, np.int32), "shift": np.array(n, np.int8)}
        attrs = {**attrs, "wbits": wbits, **({"groups": groups} if op == "conv2d" else {}),
                 **activation_clamp(ts[out], "relu" if op != "fully_connected" else None)}
        nodes.append(Node(out, op, [src], [out], attrs, params))
    g = Graph(ts, nodes, ["x"], ["y"], {"classes": [f"k{i}" for i in range(5)]})
    g.validate()
    return g


def test_mixed_graph_generated_c_opt_and_reference():
    """The generated C of a graph mixing plain and dilated/grouped 1-D layers: optimized kernels where
    they apply, reference kernels elsewhere, same bytes as the oracle on the host (ASan + UBSan)."""
    from pqlr.deploy.verify import verify_graph
    from pqlr.ir.interp import run_graph

    g = conv1d_graph()
    kernels = [layer_kernel(n, g, "opt") for n in g.nodes]
    assert kernels == ["pqlr_conv2d_s8_opt", "pqlr_conv2d_s8", "pqlr_depthwise_conv2d_s8",
                       "pqlr_fully_connected_s8_opt"]
    x = np.random.default_rng(4).integers(-128, 128, (3, 20, 6)).astype(np.int8)
    assert len(np.unique(run_graph(g, x))) > 10
    for variant in ("reference", "opt"):        # reference: planned with in-place kernels where they fit
        r = verify_graph(g, None, x, "host", sanitize=variant == "opt", kernels=variant)
        assert r["mismatches"] == 0 and r["samples"] == 3, variant


# ---------------------------------------------------------------- selection
def test_kernel_selection():
    node, g = layer(np.random.default_rng(0), "conv2d", 8, (4, 4, 3), 4, (3, 3))
    syms = {p: f"pqlr_l0_{p}" for p in node.params}
    assert kernel_name("pqlr_conv2d_s8", "reference") == "pqlr_conv2d_s8"
    assert kernel_name("pqlr_add_s8", "opt") == "pqlr_add_s8"
    text = c_call(node, g, ["in"], "out", syms, "opt")
    assert "PQLR_CHECK(pqlr_conv2d_s8_opt(&p, in, (const int8_t *)pqlr_l0_weight" in text
    assert "pqlr_status pqlr_conv2d_s8_opt(const pqlr_conv2d_params *" in text
    assert c_call(node, g, ["in"], "out", syms, "reference") == NN_OPS["conv2d"].c_call(node, g, ["in"], "out", syms)
    with pytest.raises(PqlrError, match="variant"):
        kernel_name("pqlr_conv2d_s8", "fast")
    from pqlr.ir.ops import OPS as TABLE
    before = TABLE["conv2d"]
    with use_variant("opt"):
        assert "_opt(&p" in TABLE["conv2d"].c_call(node, g, ["in"], "out", syms)
    assert TABLE["conv2d"] is before
    assert set(OPT_KERNELS) == {f"pqlr_{op}_s8" for op in OPS}


# ---------------------------------------------------------------- QEMU rv32imac
def test_rv32imac_graph_bit_exact_and_faster():
    import importlib.util
    from pathlib import Path

    from pqlr.deploy.verify import verify_graph
    from pqlr.hw.toolchains import toolchain

    try:
        toolchain("rv32imac")
    except PqlrError as e:
        pytest.skip(str(e))
    spec = importlib.util.spec_from_file_location(
        "deploy_graphs", Path(__file__).resolve().parents[1] / "deploy" / "graphs.py")
    graphs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(graphs)
    g = graphs.cnn(seed=3, h=9, w=7, c_in=4, c=8, classes=5, wbits=(8, 4, 8))
    x = graphs.random_input(g, 3)
    ref = verify_graph(g, None, x, "rv32imac")
    with use_variant("opt"):
        opt = verify_graph(g, None, x, "rv32imac")
    assert ref["mismatches"] == 0 and opt["mismatches"] == 0 and not opt["soft_float_symbols"]
    for r, o in zip(ref["layers"], opt["layers"]):
        if r["op"] in ("conv2d", "depthwise_conv2d"):
            assert o["instructions"] < r["instructions"], (r, o)


@pytest.mark.parametrize("x_val,w_val", [(-128, -8), (127, -8), (-128, 7), (None, None)])
def test_int4_packed_sums_at_their_bounds(lib, x_val, w_val):
    """pqlr_dot4x4_w4 keeps two pixels per register for up to 30 products: all-extreme inputs and
    weights over K = 67 (chunks of 30 + 30 + 6 + an odd step) must still match exactly."""
    rng = np.random.default_rng(11)
    node, g = layer(rng, "conv2d", 4, (3, 3, 67), 8, (1, 1))
    if w_val is not None:
        q = np.full((8, 67), w_val)
        q[1::2] = -8 if w_val == 7 else 7                      # mixed signs across channels
        node.params["weight"] = P.pack_weights(q, 4)
        node.params["bias"] = np.zeros(8, np.int32)
    x = inputs(rng, g, 3)
    if x_val is not None:
        x[:] = x_val
        x[1, ::2] = -x_val - 1 if x_val < 0 else -128         # neighbouring pixels of opposite sign
    check(lib, node, g, x)
