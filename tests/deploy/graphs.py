"""Small hand-built integer graphs for the deploy tests (random packed weights, fixed seeds)."""
from __future__ import annotations

import numpy as np

from pqlr import primitives as P
from pqlr.ir.graph import Graph, Node, Tensor
from pqlr.ir.opkit import activation_clamp
from pqlr.ir.ops_elem import add_attrs
from pqlr.ir.ops_nn import requant_params, requantize_attrs
from pqlr.ir.ops_pool import pool_attrs


def _t(name, shape, scale, zp, dtype="s8", bits=8):
    return Tensor(name, tuple(shape), dtype, bits, scale, zp)


def _weighted(rng, name, op, x, out, c_out, k, wbits, attrs, relu=True):
    lo, hi = P.weight_range(wbits)
    q = rng.integers(lo, hi + 1, size=(c_out, k)) if wbits > 1 else rng.choice([-1, 1], size=(c_out, k))
    w_scale = rng.uniform(0.01, 0.05, size=c_out)
    params = {"weight": P.pack_weights(q, wbits),
              "bias": rng.integers(-300, 300, size=c_out).astype(np.int32),
              **requant_params(x.scale, w_scale, out.scale)}
    return Node(name, op, [x.name], [out.name], {**attrs, "wbits": wbits,
                                                 **activation_clamp(out, "relu" if relu else None)}, params)


def cnn(seed: int = 0, h: int = 10, w: int = 6, c_in: int = 3, c: int = 12, classes: int = 5,
        wbits: tuple[int, int, int] = (4, 8, 2)) -> Graph:
    """input (h, w, c_in) -> conv3x3 -> depthwise3x3/2 -> requantize (in place) -> mean -> fc."""
    rng = np.random.default_rng(seed)
    oh, ow = (h + 1) // 2, (w + 1) // 2
    ts = [_t("x", (h, w, c_in), 0.05, -3), _t("c1", (h, w, c), 0.04, -128), _t("d1", (oh, ow, c), 0.03, -128),
          _t("r1", (oh, ow, c), 0.035, -120), _t("m1", (c,), 0.02, -100), _t("y", (classes,), 0.1, 4)]
    x, c1, d1, r1, m1, y = ts
    nodes = [
        _weighted(rng, "conv1", "conv2d", x, c1, c, 9 * c_in, wbits[0],
                  {"kernel": (3, 3), "stride": (1, 1), "padding": (1, 1, 1, 1)}),
        _weighted(rng, "dw1", "depthwise_conv2d", c1, d1, c, 9, wbits[1],
                  {"kernel": (3, 3), "stride": (2, 2), "padding": (1, 1, 1, 1)}),
        Node("rq1", "requantize", ["d1"], ["r1"], {**requantize_attrs(d1, r1), **activation_clamp(r1, None)}),
        Node("pool", "mean", ["r1"], ["m1"], {**pool_attrs(r1, m1, oh * ow), **activation_clamp(m1, None)}),
        _weighted(rng, "fc", "fully_connected", m1, y, classes, c, wbits[2], {}, relu=False),
    ]
    g = Graph({t.name: t for t in ts}, nodes, ["x"], ["y"], {"classes": [f"k{i}" for i in range(classes)]})
    g.validate()
    return g


def random_input(graph: Graph, n: int, seed: int = 1) -> np.ndarray:
    t = graph.tensor(graph.inputs[0])
    lo, hi = P.act_range(t.bits)
    return np.random.default_rng(seed).integers(lo, hi + 1, size=(n, *t.shape)).astype(np.int8 if t.dtype == "s8" else np.int16)


def with_add(g: Graph) -> Graph:
    """cnn() plus add1 = r1 + d1 before the pool: rq1 can no longer run in place, add1 can."""
    import copy


    g = copy.deepcopy(g)
    d1, r1 = g.tensors["d1"], g.tensors["r1"]
    a1 = g.tensors["a1"] = Tensor("a1", r1.shape, "s8", 8, 0.05, -128)
    g.nodes.insert(3, Node("add1", "add", ["r1", "d1"], ["a1"], add_attrs(r1, d1, a1)))
    g.nodes[4].inputs = ["a1"]
    g.nodes[4].attrs.update(pool_attrs(a1, g.tensors["m1"], d1.shape[0] * d1.shape[1]))
    g.validate()
    return g


def tokens(seed: int = 0, t: int = 6, k: int = 8, d: int = 16, classes: int = 4) -> Graph:
    """(T, K) tokens -> fc per token -> layernorm -> GELU lut (in place) -> softmax -> mean -> fc."""
    from pqlr.ir.ops_tf import gelu_table, layernorm_params, softmax_table

    rng = np.random.default_rng(seed)
    ts = [_t("x", (t, k), 0.05, 3), _t("h", (t, d), 0.04, -5), _t("n", (t, d), 0.03, 0),
          _t("g", (t, d), 0.02, -60), _t("s", (t, d), 1 / 256, -128), _t("m", (d,), 1 / 256, -128),
          _t("y", (classes,), 0.05, 2)]
    x, h, n, g_, s, m, y = ts
    ln_params, ln_attrs = layernorm_params(rng.uniform(0.5, 1.5, d), rng.uniform(-0.2, 0.2, d), 1e-5,
                                           h.scale, n.scale)
    nodes = [
        _weighted(rng, "proj", "fully_connected", x, h, d, k, 4, {}, relu=False),
        Node("ln", "layernorm", ["h"], ["n"], ln_attrs, ln_params),
        Node("gelu", "lut", ["n"], ["g"], {}, {"table": gelu_table(n.scale, n.zero_point, g_.scale, g_.zero_point)}),
        Node("attn", "softmax", ["g"], ["s"], {}, {"table": softmax_table(g_.scale)}),
        Node("pool", "mean", ["s"], ["m"], {**pool_attrs(s, m, t), **activation_clamp(m, None)}),
        _weighted(rng, "head", "fully_connected", m, y, classes, d, 8, {}, relu=False),
    ]
    gr = Graph({tt.name: tt for tt in ts}, nodes, ["x"], ["y"], {"name": "tokens"})
    gr.validate()
    return gr


def s16(seed: int = 0) -> Graph:
    """W1A16: int16 activations, 1-bit conv + 1-bit fc, then a requantize to int8 logits."""
    rng = np.random.default_rng(seed)
    ts = [_t("x", (6, 5, 2), 0.01, 0, "s16", 16), _t("c", (6, 5, 6), 0.02, 0, "s16", 16),
          _t("m", (6,), 0.02, 0, "s16", 16), _t("f", (3,), 0.05, 0, "s16", 16), _t("y", (3,), 0.1, 0)]
    x, c, m, f, y = ts
    nodes = [
        _weighted(rng, "conv", "conv2d", x, c, 6, 9 * 2, 1, {"kernel": (3, 3), "padding": (1, 1, 1, 1)}),
        Node("pool", "mean", ["c"], ["m"], {**pool_attrs(c, m, 30), **activation_clamp(m, None)}),
        _weighted(rng, "fc", "fully_connected", m, f, 3, 6, 1, {}, relu=False),
        Node("out", "requantize", ["f"], ["y"], {**requantize_attrs(f, y), **activation_clamp(y, None)}),
    ]
    gr = Graph({tt.name: tt for tt in ts}, nodes, ["x"], ["y"], {"name": "w1a16"})
    gr.validate()
    return gr
