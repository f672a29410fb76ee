"""In-place pointwise / depthwise convolutions: the kernels == the NumPy oracle when output == input
(ctypes, UBSan, guard bytes around every buffer; (H, W, C) maps and 1-D (T, C) ones), dilated or
grouped layers are never run in place (no scratch size; the C refuses them, writing nothing), and
DS-CNN-S W8A8 planned with them fits in 12 KB of RAM (TFLite Micro: 24.3 KB) with generated C ==
oracle on the host and on RV32IMAC."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ir"))

import cdriver  # noqa: E402
from pqlr import primitives as P  # noqa: E402
from pqlr.errors import UnsupportedError  # noqa: E402
from pqlr.deploy.plan import plan_graph, run_node, split_layers  # noqa: E402
from pqlr.deploy.tiles import plan_with_tiles  # noqa: E402
from pqlr.ir.graph import Graph, Node, Tensor  # noqa: E402
from pqlr.ir.ops_nn import (IN_PLACE_KERNELS, NN_OPS, STRUCT_FIELDS, c_kernel,  # noqa: E402
                            in_place_scratch_bytes, requant_params)

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])
SOURCES = ["pqlr_conv2d_1x1_inplace_s8.c", "pqlr_depthwise_conv2d_inplace_s8.c"]
GUARD, PAINT = 16, 0x5A


@pytest.fixture(scope="module")
def lib():
    return cdriver.load_library(SOURCES, name="nn_inplace")


def conv_node(rng, op: str, h: int, w: int, c_in: int, c_out: int, kernel, pads, wbits: int,
              stride=(1, 1), dilation=(1, 1), groups: int = 1, rank: int = 3) -> tuple[Node, Graph]:
    """One s8 conv2d / depthwise_conv2d layer with random weights, qparams, bias and clamp; rank 2:
    the (h, c) map of a 1-D convolution (w must be 1)."""
    kh, kw = kernel
    oh = (h + pads[0] + pads[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pads[1] + pads[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    zp_in, zp_out = (int(v) for v in rng.integers(-128, 128, 2))
    assert rank == 3 or w == ow == 1
    x = Tensor("x", (h, w, c_in) if rank == 3 else (h, c_in), "s8", 8, 0.05, zp_in)
    y = Tensor("y", (oh, ow, c_out) if rank == 3 else (oh, c_out), "s8", 8, 0.1, zp_out)
    k = kh * kw * (1 if op == "depthwise_conv2d" else c_in // groups)
    lo, hi = P.weight_range(wbits)
    wv = rng.integers(lo, hi + 1, (c_out, k)) if wbits > 1 else rng.choice([-1, 1], (c_out, k))
    w_scale = 2.0 ** rng.uniform(-6, -2, c_out if rng.random() < 0.5 else 1)
    params = {"weight": P.pack_weights(wv.astype(np.int8), wbits),
              "bias": rng.integers(-2000, 2000, c_out).astype(np.int32),
              **requant_params(x.scale, w_scale, y.scale)}
    attrs = {"kernel": kernel, "stride": stride, "padding": pads, "wbits": wbits,       # some clamp
             "act_min": int(rng.integers(-128, -32)), "act_max": int(rng.integers(32, 128))}
    if dilation != (1, 1):
        attrs["dilation"] = dilation
    if groups != 1:
        attrs["groups"] = groups
    node = Node("layer0", op, ["x"], ["y"], attrs, params)
    g = Graph({"x": x, "y": y}, [node], ["x"], ["y"])
    return node, g


def run_in_place(lib, node: Node, g: Graph, x: np.ndarray, parts=None, same: bool = True) -> np.ndarray:
    """Run the in-place kernel of `node` on one sample x (H, W, C_in) with output == input (or
    disjoint buffers), scratch of exactly in_place_scratch_bytes; channel `parts` [(b, e)] make one
    call each. Guard bytes around the buffer and the scratch must stay painted."""
    marked = Node(node.name, node.op, node.inputs, node.outputs, {**node.attrs, "in_place": True}, node.params)
    k = c_kernel(marked, g)
    assert k.fn == IN_PLACE_KERNELS[node.op] and k.args[-1] == "scratch"
    out_t = g.tensor("y")
    n_buf = max(x.size, out_t.size)
    buf = np.full(n_buf + 2 * GUARD, PAINT, np.int8)
    buf[GUARD:GUARD + x.size] = x.ravel()
    other = np.full(out_t.size + 2 * GUARD, PAINT, np.int8)
    n_scratch = in_place_scratch_bytes(node, g)
    scratch = np.full(n_scratch + 2 * GUARD, PAINT, np.int8)
    Params = cdriver.int32_struct(k.struct_type, STRUCT_FIELDS[k.struct_type])
    rows = node.params["weight"].shape[0]
    for b, e in parts or [(0, rows)]:
        p = Params(**{**k.fields, "ch_begin": b, "ch_end": e})
        w = np.ascontiguousarray(node.params["weight"][b:e])
        inp, out = buf[GUARD:], (buf[GUARD:] if same else other[GUARD:])
        args = {"in0": inp, "weight": w, "bias": node.params["bias"], "multiplier": node.params["multiplier"],
                "shift": node.params["shift"], "out": out, "scratch": scratch[GUARD:]}
        assert cdriver.call(lib, k.fn, p, *[args[a] for a in k.args]) == 0
    for a, n in ((buf, n_buf), (scratch, n_scratch), (other, out_t.size)):
        assert (a[:GUARD] == PAINT).all() and (a[GUARD + n:] == PAINT).all(), "wrote outside its buffer"
    res = buf if same else other
    return res[GUARD:GUARD + out_t.size].reshape(out_t.shape)


def check(lib, node, g, rng, parts=None):
    x = rng.integers(-128, 128, (2, *g.tensor("x").shape)).astype(np.int8)
    want = NN_OPS[node.op].run([x], node, g)
    for i in range(len(x)):
        np.testing.assert_array_equal(run_in_place(lib, node, g, x[i], parts), want[i])
    np.testing.assert_array_equal(run_in_place(lib, node, g, x[0], parts, same=False), want[0])


# ---------------------------------------------------------------- kernels
@SETTINGS
@given(h=st.integers(1, 6), w=st.integers(1, 7), c_in=st.integers(1, 9), c_out=st.integers(1, 9),
       wbits=st.sampled_from([8, 4, 2, 1]), seed=st.integers(0, 2**31 - 1))
def test_pointwise_in_place_matches_oracle(lib, h, w, c_in, c_out, wbits, seed):
    rng = np.random.default_rng(seed)
    node, g = conv_node(rng, "conv2d", h, w, c_in, c_out, (1, 1), (0, 0, 0, 0), wbits)
    assert in_place_scratch_bytes(node, g) == c_out        # one pixel's outputs
    check(lib, node, g, rng)                               # c_out > c_in walks pixels backwards


@SETTINGS
@given(h=st.integers(1, 7), w=st.integers(1, 7), c=st.integers(1, 9), kh=st.integers(1, 5),
       kw=st.integers(1, 5), wbits=st.sampled_from([8, 4, 2, 1]), split=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_depthwise_in_place_matches_oracle(lib, h, w, c, kh, kw, wbits, split, seed):
    rng = np.random.default_rng(seed)
    pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
    node, g = conv_node(rng, "depthwise_conv2d", h, w, c, c, (kh, kw), (pt, pl, kh - 1 - pt, kw - 1 - pl), wbits)
    assert in_place_scratch_bytes(node, g) == (pt + 1) * w * c      # ring of pad_top + 1 rows
    cut = int(rng.integers(1, c)) if split and c > 1 else c
    check(lib, node, g, rng, parts=[(0, cut), (cut, c)] if cut < c else None)   # channel tiles


def test_layers_that_cannot_run_in_place(lib):
    rng = np.random.default_rng(0)
    cases = [("conv2d", (3, 3), (1, 1, 1, 1), (1, 1)), ("conv2d", (1, 1), (0, 0, 0, 0), (2, 1)),
             ("depthwise_conv2d", (3, 3), (1, 1, 1, 1), (2, 2)), ("depthwise_conv2d", (3, 3), (0, 0, 0, 0), (1, 1))]
    for op, kernel, pads, stride in cases:
        node, g = conv_node(rng, op, 6, 5, 4, 4, kernel, pads, 8, stride)
        assert in_place_scratch_bytes(node, g) is None, (op, kernel, pads, stride)
        node.attrs["in_place"] = True
        with pytest.raises(UnsupportedError, match="no in-place kernel fits"):
            c_kernel(node, g)
    # the C refuses what the planner refuses, and a NULL scratch, before writing anything
    node, g = conv_node(rng, "depthwise_conv2d", 6, 5, 4, 4, (3, 3), (0, 0, 0, 0), 8)
    k = c_kernel(Node("d", node.op, ["x"], ["y"], node.attrs, node.params), g)
    p = cdriver.int32_struct(k.struct_type, STRUCT_FIELDS[k.struct_type])(**k.fields)
    buf, scratch = np.zeros(6 * 5 * 4, np.int8), np.zeros(512, np.int8)
    prm = node.params
    assert cdriver.call(lib, "pqlr_depthwise_conv2d_inplace_s8", p, buf, prm["weight"], prm["bias"],
                        prm["multiplier"], prm["shift"], buf, scratch) == -1
    node, g = conv_node(rng, "conv2d", 6, 5, 4, 4, (1, 1), (0, 0, 0, 0), 8)
    k = c_kernel(node, g)
    p = cdriver.int32_struct(k.struct_type, STRUCT_FIELDS[k.struct_type])(**{**k.fields, "ch_end": 2})
    prm = node.params
    for s in (scratch, None):      # a channel tile, then no scratch
        assert cdriver.call(lib, "pqlr_conv2d_1x1_inplace_s8", p, buf, prm["weight"], prm["bias"],
                            prm["multiplier"], prm["shift"], buf, s) == -1
        p.ch_end = 4


@pytest.mark.parametrize("op,kernel,pads", [("conv2d", (1, 1), (0, 0, 0, 0)), ("depthwise_conv2d", (3, 1), (1, 0, 1, 0)),
                                            ("depthwise_conv2d", (5, 1), (1, 0, 3, 0))])
def test_conv1d_in_place_matches_oracle(lib, op, kernel, pads):
    """A 1-D (T, C) layer is the (T, 1, C) map: pointwise and 'same' depthwise run in place."""
    rng = np.random.default_rng(17)
    c_out = 7 if op == "conv2d" else 5
    node, g = conv_node(rng, op, 13, 1, 5, c_out, kernel, pads, 4, rank=2)
    assert in_place_scratch_bytes(node, g) == (c_out if op == "conv2d" else (pads[0] + 1) * 5)
    check(lib, node, g, rng)


NOT_IN_PLACE = [  # (op, h, w, c_in, c_out, kernel, pads, dilation, groups, rank): shapes that would fit
    ("depthwise_conv2d", 6, 5, 4, 4, (3, 3), (2, 2, 2, 2), (2, 2), 1, 3),   # 'same' size, dilated
    ("depthwise_conv2d", 9, 1, 4, 4, (3, 1), (2, 0, 2, 0), (2, 1), 1, 2),   # 1-D, dilated
    ("conv2d", 6, 5, 4, 6, (1, 1), (0, 0, 0, 0), (1, 1), 2, 3),             # grouped pointwise
    ("conv2d", 6, 5, 4, 8, (1, 1), (0, 0, 0, 0), (1, 1), 4, 3),             # depthwise as groups
    ("conv2d", 6, 5, 4, 4, (1, 1), (0, 0, 0, 0), (2, 2), 1, 3),             # dilated 1x1 (no effect, refused)
    ("depthwise_conv2d", 6, 5, 4, 4, (1, 1), (0, 0, 0, 0), (1, 3), 1, 3),   # likewise: only dilation refuses it
]


@pytest.mark.parametrize("case", NOT_IN_PLACE)
def test_dilated_and_grouped_layers_never_run_in_place(lib, case):
    """No scratch size (the planner keeps them out of place), a marked node is refused, and the C
    in-place kernel returns -1 for the layer's struct, writing nothing (scratch and buffer intact)."""
    op, h, w, c_in, c_out, kernel, pads, dilation, groups, rank = case
    node, g = conv_node(np.random.default_rng(3), op, h, w, c_in, c_out, kernel, pads, 8,
                        dilation=dilation, groups=groups, rank=rank)
    assert in_place_scratch_bytes(node, g) is None
    marked = Node(node.name, node.op, node.inputs, node.outputs, {**node.attrs, "in_place": True}, node.params)
    with pytest.raises(UnsupportedError, match="no in-place kernel fits"):
        c_kernel(marked, g)
    k = c_kernel(node, g)                                    # the reference call, same struct
    p = cdriver.int32_struct(k.struct_type, STRUCT_FIELDS[k.struct_type])(**k.fields)
    buf = np.full(h * w * max(c_in, c_out), PAINT, np.int8)
    scratch = np.full(1024, PAINT, np.int8)
    prm = node.params
    assert cdriver.call(lib, IN_PLACE_KERNELS[op], p, buf, prm["weight"], prm["bias"], prm["multiplier"],
                        prm["shift"], buf, scratch) == -1
    assert (buf == PAINT).all() and (scratch == PAINT).all()
    y = NN_OPS[op].run([np.zeros((1, *g.tensor("x").shape), np.int8)], node, g)     # the oracle runs it
    assert y.shape == (1, *g.tensor("y").shape)


# ---------------------------------------------------------------- DS-CNN-S W8A8, whole model
@pytest.fixture(scope="module")
def dscnn():
    torch = pytest.importorskip("torch")
    from pqlr.compress.lower import lower
    from pqlr.compress.quantize import QuantConfig, quantize_
    from pqlr.deploy.inputs import input_int8
    from pqlr.models import build_model

    torch.manual_seed(0)
    x = torch.randn(24, 1, 49, 10)
    qm = quantize_(build_model("ds-cnn-s", 12, seed=0).eval(),
                   QuantConfig(wbits=8, abits=8, method="ptq", init="minmax"), calib=[x], input_shape=(1, 49, 10))
    g = lower(quantize_(qm, None, step="convert"))
    return g, input_int8(g, x[:3])


def test_dscnn_plan_fits_12kb(dscnn):
    g, _ = dscnn
    before, plan = plan_graph(g, in_place=False), plan_graph(g)
    assert before.arena_bytes == 16000                     # two live 25x5x64 int8 tensors
    dw_pw = [n.name for n in g.nodes if n.name.startswith("blocks.")]
    assert [n for n in plan.in_place if n in dw_pw] == dw_pw and len(dw_pw) == 8   # every dw and pw layer
    # one 8000 B feature map + the depthwise line buffer (2 rows x 5 x 64); input/output live outside
    assert plan.scratch_bytes == 2 * 5 * 64 and plan.arena_bytes == 8000 + 640
    arena, tiles = plan_with_tiles(g)
    assert arena.arena_bytes + tiles.ram_bytes <= 12 * 1024
    i_pw = next(i for i, n in enumerate(g.nodes) if n.name == "blocks.0.pw")
    assert run_node(g, plan, i_pw).attrs["in_place"] and "in_place" not in g.nodes[i_pw].attrs


def test_dscnn_generated_c_matches_oracle_in_12kb(dscnn, tmp_path):
    from pqlr.deploy.host import run_host
    from pqlr.deploy.package import write_package
    from pqlr.ir.interp import run_graph

    g, xi = dscnn
    ref = run_graph(g, xi)
    assert len(np.unique(ref)) > 8
    pkg = write_package(tmp_path / "const", g)
    model_c = (pkg.out_dir / "src" / "model.c").read_text()
    assert model_c.count("pqlr_conv2d_1x1_inplace_s8(&p") == 4
    assert model_c.count("pqlr_depthwise_conv2d_inplace_s8(&p") == 4
    assert pkg.ram_bytes <= 12 * 1024
    y, high_water = run_host(pkg.out_dir, g, xi, margin=1024)
    assert np.array_equal(y, ref)
    assert 8000 < high_water <= pkg.arena.arena_bytes      # painted arena: never past the plan
    y, _ = run_host(pkg.out_dir, g, xi[:1], sanitize=True) # exact-size arena under ASan/UBSan
    assert np.array_equal(y, ref[:1])
    # small streamed tiles: split pointwise layers fall back (a channel part would overwrite input
    # pixels the next part reads), split depthwise layers stay in place (channels are independent)
    tiled = write_package(tmp_path / "tiled", g, n_tiles=48)
    split = split_layers(tiled.tiles)
    assert {g.nodes[i].op for i in split} >= {"conv2d", "depthwise_conv2d"}
    for i in split:
        assert (i in tiled.arena.in_place_layers) == (g.nodes[i].op == "depthwise_conv2d")
    y, _ = run_host(tiled.out_dir, g, xi)
    assert np.array_equal(y, ref)


@pytest.mark.emulator
def test_dscnn_on_rv32imac(dscnn):
    from pqlr.deploy.verify import verify_graph

    g, xi = dscnn
    missing = [t for t in ("riscv64-unknown-elf-gcc", "qemu-system-riscv32") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    r = verify_graph(g, None, xi[:1], "rv32imac")
    assert r["mismatches"] == 0 and r["samples"] == 1
    assert 8000 < r["arena_peak_bytes"] <= r["arena_plan_bytes"] <= 12 * 1024
