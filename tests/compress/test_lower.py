"""Lowering: the integer graph (ir.interp.run_graph) against the fake-quant model it came from --
DS-CNN-S and microbert-fast at W8A8, W4A4, W4A8 and W1A16, low-rank layers, and models PQLR did not
define (residual image nets, 1-D convs, SubSpectralNorm, max pooling, concat, broadcasting) -- plus
the layouts the lowering chooses, packing, metadata, the accumulator report and loud failures.

Models get real margins on a synthetic task (class templates + noise): BatchNorm statistics from
the data and a closed-form fitted classifier (random-init logits are near ties, and argmax agreement
would measure noise). Budgets (fake-quant logits vs dequantized integer logits): argmax agreement
>= 99 %; SQNR >= 40 dB for DS-CNN-S; for microbert-fast (rounding differences compound through
LayerNorm, softmax and GELU tables over two blocks) >= 24 dB with 8-bit activations, >= 18 dB with
4-bit ones and >= 50 dB with 16-bit ones. W1A16 keeps the first and last layers at 8 bit.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from pqlr import primitives as P
from pqlr.capture import capture
from pqlr.compress import lowrank
from pqlr.compress.lower import accumulator_report, lower
from pqlr.compress.quantize import QuantConfig, quantize_
from pqlr.deploy.inputs import input_int8
from pqlr.errors import PqlrError
from pqlr.ir.graph import Graph, Node, Tensor
from pqlr.ir.interp import run_graph
from pqlr.models import build_model

SQNR_DB = {"ds-cnn-s": {4: 40.0, 8: 40.0, 16: 40.0}, "microbert-fast": {4: 18.0, 8: 24.0, 16: 50.0}}


def _data(n, seed, shape=(1, 49, 10), classes=12):
    g = torch.Generator().manual_seed(1234)
    templates = torch.randn(classes, *shape, generator=g) * 2
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    return templates[y] + 0.3 * torch.randn(n, *shape, generator=g), y


def _ridge(f, y, classes):
    """Closed-form classifier (weight (C, F), bias (C,)) onto scaled one-hot targets."""
    f = torch.cat([f.double(), torch.ones(len(f), 1, dtype=torch.float64)], 1)
    target = torch.nn.functional.one_hot(y, classes).double() * 8.0 - 4.0
    sol = torch.linalg.solve(f.T @ f + 1e-2 * torch.eye(f.shape[1], dtype=torch.float64), f.T @ target)
    return sol[:-1].T.float(), sol[-1].float()


def _fitted(model, shape, classes=12):
    """The captured model with BatchNorm statistics of the data and its last Linear fitted."""
    gm = capture(model, shape)
    x, y = _data(256, 1, shape, classes)
    for m in gm.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.momentum = None                      # cumulative average: one pass = batch statistics
    head = [n for n in gm.graph.nodes if n.op in ("linear", "conv")][-1]      # a Linear or a 1x1 conv on (C, 1, 1)
    mod = gm.module(head.module)
    with torch.no_grad():
        gm.train()
        gm(x)
        gm.eval()
        feats = []
        hook = mod.register_forward_hook(lambda m, inp, out: feats.append(inp[0]))
        gm(x)
        hook.remove()
        w, b = _ridge(feats[0].reshape(len(x), -1), y, classes)
        mod.weight.copy_(w.reshape(mod.weight.shape))
        mod.bias.copy_(b)
    return gm


def _prepare_convert(gm, wbits, abits, shape=(1, 49, 10), classes=12, first_last_8bit=False):
    x, _ = _data(128, 2, shape, classes)
    cfg = QuantConfig(wbits=wbits, abits=abits, method="ptq", init="mse", calib=128, first_last_8bit=first_last_8bit)
    qm = quantize_(copy.deepcopy(gm), cfg, calib=[x])
    return quantize_(qm, None, step="convert")


def _compare(qm, n=100, shape=(1, 49, 10), classes=12):
    """(argmax agreement, SQNR dB, graph) of the lowered graph vs the fake-quant model, on the same
    quantized inputs."""
    g = lower(qm)
    x, _ = _data(n, 3, shape, classes)
    xi = input_int8(g, x)
    s, z, _ = qm.qparams("input")
    perm = g.meta["input_layout"]["perm"]
    inv = np.argsort(perm)
    x_back = P.dequantize(np.transpose(xi, (0, *(p + 1 for p in inv))), s, z)   # the int8 inputs, as floats
    with torch.no_grad():
        ref = qm(torch.from_numpy(x_back).float()).double().numpy().reshape(n, -1)
    yi = run_graph(g, xi)
    out = g.tensor(g.outputs[0])
    y = P.dequantize(yi, out.scale, out.zero_point).reshape(n, -1)
    sqnr = 10 * np.log10((ref ** 2).sum() / max(((ref - y) ** 2).sum(), 1e-30))
    return float((ref.argmax(1) == y.argmax(1)).mean()), float(sqnr), g


@pytest.fixture(scope="module")
def fitted():
    return {name: _fitted(build_model(name, 12, seed=0), (1, 49, 10)) for name in ("ds-cnn-s", "microbert-fast")}


@pytest.mark.parametrize("name", ["ds-cnn-s", "microbert-fast"])
@pytest.mark.parametrize("wbits,abits", [(8, 8), (4, 4), (4, 8), (1, 16)])
def test_lowered_graph_matches_fake_quant(fitted, name, wbits, abits):
    qm = _prepare_convert(fitted[name], wbits, abits, first_last_8bit=wbits == 1)
    agree, sqnr, g = _compare(qm)
    assert agree >= 0.99, f"{name} W{wbits}A{abits}: argmax agreement {agree:.3f}"
    assert sqnr >= SQNR_DB[name][abits], f"{name} W{wbits}A{abits}: SQNR {sqnr:.1f} dB"
    layers = [n for n in g.nodes if n.op in ("conv2d", "depthwise_conv2d", "fully_connected")]
    assert [n.attrs["wbits"] for n in layers[1:-1]] == [wbits] * (len(layers) - 2)
    assert {layers[0].attrs["wbits"], layers[-1].attrs["wbits"]} == {8 if wbits == 1 else wbits}
    dtypes = {t.dtype for t in g.tensors.values()}
    assert ("s16" in dtypes) == (abits == 16)
    assert g.tensor(g.inputs[0]).dtype == "s8" and g.tensor(g.inputs[0]).size == 490
    assert g.meta["abits"] == abits
    assert not any(r["may_saturate"] for r in accumulator_report(g))


def test_layouts_channels_last_where_kernels_need_it(fitted):
    g = lower(_prepare_convert(fitted["ds-cnn-s"], 8, 8))
    assert g.meta["input_layout"] == {"torch_shape": [1, 49, 10], "perm": [1, 2, 0]}     # (49, 10, 1)
    assert g.tensor(g.inputs[0]).shape == (49, 10, 1)
    assert [n.op for n in g.nodes] == (["conv2d"] + ["depthwise_conv2d", "conv2d"] * 4 +
                                       ["mean", "reshape", "fully_connected"])            # flatten: same bytes
    assert g.tensor("conv").shape == (25, 5, 64)                                          # HWC
    from pqlr.deploy.plan import plan_graph
    plan = plan_graph(g)
    assert g.nodes[-2].name in plan.in_place and plan.arena_bytes == 8640                # nothing copied
    tf = lower(_prepare_convert(fitted["microbert-fast"], 8, 8))
    ops = [n.op for n in tf.nodes]
    assert ops.count("transpose") == 2 * 4                   # per block: q, k (as K^T), v and the context
    assert "conv2d" not in ops and ops.count("matmul") == 4


class ImageNet(nn.Module):
    """An image model: channels-last input, residual add, max pooling, SiLU, concat, a standalone
    BatchNorm after the add, global pooling."""

    def __init__(self, n_classes=5, input_shape=(3, 16, 16)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.b1, self.b2 = nn.Conv2d(8, 4, 1), nn.Conv2d(8, 4, 3, padding=2, dilation=2)
        self.fc = nn.Linear(8, n_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.pool(self.norm(x + self.a(x)))
        x = torch.cat([nn.functional.silu(self.b1(x)), self.b2(x)], dim=1)
        return self.fc(x.mean((2, 3)))


GENERIC = {
    "image": (lambda ex: ImageNet(), (3, 16, 16), 5),
    "bc-resnet": (lambda ex: ex("bc_resnet", "BCResNet1"), (1, 49, 10), 12),
    "matchboxnet": (lambda ex: ex("matchboxnet", "MatchboxNet3x1x64"), (1, 49, 10), 12),
    "tc-resnet": (lambda ex: ex("tc_resnet", "TCResNet8"), (1, 49, 10), 12),
    "mlperf-ds-cnn": (lambda ex: ex("mlperf_ds_cnn", "MLPerfDSCNN"), (1, 49, 10), 12),
    "hello-edge": (lambda ex: ex("hello_edge_cnn", "HelloEdgeCNN"), (1, 49, 10), 12),
}


@pytest.mark.parametrize("name", GENERIC)
def test_models_pqlr_did_not_define_lower_and_match(name, example):
    make, shape, classes = GENERIC[name]
    torch.manual_seed(0)
    gm = _fitted(make(example), shape, classes)
    qm = _prepare_convert(gm, 8, 8, shape, classes)
    agree, sqnr, g = _compare(qm, 64, shape, classes)
    assert agree >= 0.95 and sqnr >= 20.0, f"{name}: agreement {agree:.3f}, SQNR {sqnr:.1f} dB"
    if name == "image":
        assert g.tensor(g.inputs[0]).shape == (16, 16, 3)               # an image arrives HWC
        ops = {n.op for n in g.nodes}
        assert {"add", "channel_affine", "max_pool2d", "lut", "concat", "mean"} <= ops
        assert "transpose" not in ops


def test_lowrank_layers_lower(fitted):
    tf = lowrank.apply(copy.deepcopy(fitted["microbert-fast"]), lowrank.LowRankConfig(rank=16))[0]
    names = {"blocks.0.ffn.fc1.first", "blocks.0.ffn.fc1.second"}
    qm = _prepare_convert(tf, 8, 8)
    agree, sqnr, g = _compare(qm, 64)
    assert names <= {n.name for n in g.nodes}
    assert agree >= 0.95 and sqnr >= SQNR_DB["microbert-fast"][8]
    for n in g.nodes:      # the byte model low-rank decides with is what lowering deploys
        if n.name in names:
            rows, k = n.params["weight"].shape          # 8-bit: one byte per weight
            assert sum(p.nbytes for p in n.params.values()) == lowrank.deployed_bytes(rows, k, 8)


def test_meta_classes_and_feature(fitted):
    qm = _prepare_convert(fitted["ds-cnn-s"], 8, 8)
    classes = [f"word{i}" for i in range(12)]
    g = lower(qm, classes=classes, feature={"n_mfcc": 10})
    assert g.meta["classes"] == classes and g.meta["feature"] == {"n_mfcc": 10}
    assert g.meta["wbits"]["fc"] == 8
    assert lower(qm).meta["feature"] is None
    with pytest.raises(PqlrError, match="class names"):
        lower(qm, classes=["a", "b"])


def test_lower_needs_converted_model(fitted):
    with pytest.raises(PqlrError, match="quantized model"):
        lower(fitted["ds-cnn-s"])
    qm = quantize_(copy.deepcopy(fitted["ds-cnn-s"]), QuantConfig(), calib=[_data(16, 4)[0]])
    with pytest.raises(PqlrError, match="convert"):
        lower(qm)


def test_accumulator_report_flags_possible_saturation():
    k = 40000                                            # 40000 * 65535 * 128 > 2^31 (s16 x int8)
    ts = {"x": Tensor("x", (k,), "s16", 16, 0.01, 0), "y": Tensor("y", (2,), "s16", 16, 0.1, 0)}
    node = Node("big_fc", "fully_connected", ["x"], ["y"], {"wbits": 8},
                {"weight": np.zeros((2, k), np.uint8), "bias": np.array([5, -7], np.int32)})
    small = Node("small_fc", "fully_connected", ["y"], ["z"], {"wbits": 1},
                 {"weight": np.zeros((3, 1), np.uint8), "bias": np.zeros(3, np.int32)})
    ts["z"] = Tensor("z", (3,), "s16", 16, 0.1, 0)
    rows = accumulator_report(Graph(ts, [node, small], ["x"], ["z"]))
    assert [r["layer"] for r in rows] == ["big_fc", "small_fc"]
    assert rows[0]["may_saturate"] and rows[0]["worst"] == P.accumulator_bound(k, 16, 8) + 7
    assert not rows[1]["may_saturate"] and rows[1]["bound"] == 2 * 65535
