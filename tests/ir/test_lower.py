"""Lowering: the integer graph (ir.interp.run_graph) against the fake-quant model it came from,
for DS-CNN-S and microbert-fast at W8A8, W4A4, W4A8 and W1A16, plus low-rank layers, packing,
metadata, the accumulator report and loud failures.

Models get real margins on a synthetic 12-class task (class templates + noise): BatchNorm
statistics from the data and a closed-form fitted classifier (random-init logits are near ties,
and argmax agreement would measure noise). Budgets (fake-quant logits vs dequantized integer logits, 100 samples):
argmax agreement >= 99 %; SQNR >= 40 dB for DS-CNN-S; for microbert-fast (rounding differences
compound through LayerNorm, softmax and GELU tables over two blocks) >= 24 dB with 8-bit
activations, >= 18 dB with 4-bit ones and >= 50 dB with 16-bit ones (all ops s16). W1A16 keeps the first and last layers at 8 bit
(first_last_8bit, as binary networks are deployed); every other layer is binary.
"""
import numpy as np
import pytest
import torch

from pqlr import primitives as P
from pqlr.compress.lowrank import LowRankConv1x1, LowRankLinear, deployed_bytes
from pqlr.compress.qmodules import RUN
from pqlr.compress.quantize import QuantConfig, quantize_
from pqlr.errors import PqlrError
from pqlr.ir.graph import Graph, Node, Tensor
from pqlr.ir.interp import run_graph
from pqlr.ir.lower import accumulator_report, lower
from pqlr.models import build_model

SQNR_DB = {"ds-cnn-s": {4: 40.0, 8: 40.0, 16: 40.0}, "microbert-fast": {4: 18.0, 8: 24.0, 16: 50.0}}


def _data(n, seed):
    g = torch.Generator().manual_seed(1234)
    templates = torch.nn.functional.avg_pool2d(torch.randn(12, 1, 49, 10, generator=g) * 4, 3, 1, 1)
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 12, (n,), generator=g)
    return templates[y] + 0.3 * torch.randn(n, 1, 49, 10, generator=g), y


@pytest.fixture(scope="module")
def trained():
    """name -> state dict with real margins, cheaply: BatchNorm statistics from one train-mode pass,
    then the classifier fitted in closed form (ridge regression onto scaled one-hot targets)."""
    states = {}
    x, y = _data(256, 1)
    for name in ("ds-cnn-s", "microbert-fast"):
        model = build_model(name, 12, seed=0)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None                      # cumulative average: one pass = batch statistics
        with torch.no_grad():
            model.train()
            model(x)
            model.eval()
            head = model.fc if name.startswith("ds") else model.head
            feats = []
            hook = head.register_forward_hook(lambda mod, inp, out: feats.append(inp[0]))
            model(x)
            hook.remove()
            w, b = _ridge(feats[0], y)
            head.weight.copy_(w)
            head.bias.copy_(b)
        states[name] = model.state_dict()
    return states


def _quantized(name, state, wbits, abits, **build_kw):
    model = build_model(name, 12, seed=0, **build_kw)
    model.load_state_dict(state)
    model.eval()
    return model


def _ridge(f, y):
    """Closed-form classifier (weight (12, F), bias (12,)) onto scaled one-hot targets."""
    f = torch.cat([f.double(), torch.ones(len(f), 1, dtype=torch.float64)], 1)
    target = torch.nn.functional.one_hot(y, 12).double() * 8.0 - 4.0
    sol = torch.linalg.solve(f.T @ f + 1e-2 * torch.eye(f.shape[1], dtype=torch.float64), f.T @ target)
    return sol[:-1].T.float(), sol[-1].float()


def _prepare_convert(model, wbits, abits, init="minmax", first_last_8bit=False):
    """PTQ, then (as a short QAT would) the classifier refitted on the quantized features so the
    quantized model has real margins too, re-calibration, convert."""
    x, y = _data(128, 2)
    cfg = QuantConfig(wbits=wbits, abits=abits, method="ptq", init=init, calib=128, first_last_8bit=first_last_8bit)
    qm = quantize_(model, cfg, calib=[x])
    qm.eval()
    head = qm.program.ops[-1]
    env = {}
    with torch.no_grad():
        for op in qm.program.ops:
            env[op.output] = qm.quant(op.output, RUN[op.kind](qm, op, [env[i] for i in op.inputs] or [x]))
        w, b = _ridge(env[head.inputs[0]], y)
        qm.layer(head.layer).weight.copy_(w)
        qm.layer(head.layer).bias.copy_(b)
    qm.calibrate([x], 128, init, cfg.percentile)
    return quantize_(qm, None, step="convert")


def _compare(qm, n=100):
    """(argmax agreement, SQNR dB, integer logits) of the lowered graph vs the fake-quant model."""
    g = lower(qm)
    x, _ = _data(n, 3)
    s, z, _ = qm.qparams("input")
    xi = P.quantize_act(x[:, 0].numpy()[..., None], s, z, 8)       # (N, 49, 10, 1) int8
    with torch.no_grad():
        ref = qm(torch.from_numpy(P.dequantize(xi[..., 0], s, z)[:, None]).float()).double().numpy()
    yi = run_graph(g, xi)
    out = g.tensor(g.outputs[0])
    y = P.dequantize(yi, out.scale, out.zero_point)
    sqnr = 10 * np.log10((ref ** 2).sum() / max(((ref - y) ** 2).sum(), 1e-30))
    return float((ref.argmax(1) == y.argmax(1)).mean()), float(sqnr), g


@pytest.mark.parametrize("name", ["ds-cnn-s", "microbert-fast"])
@pytest.mark.parametrize("wbits,abits", [(8, 8), (4, 4), (4, 8), (1, 16)])
def test_lowered_graph_matches_fake_quant(trained, name, wbits, abits):
    qm = _prepare_convert(_quantized(name, trained[name], wbits, abits), wbits, abits, first_last_8bit=wbits == 1)
    agree, sqnr, g = _compare(qm)
    assert agree >= 0.99, f"{name} W{wbits}A{abits}: argmax agreement {agree:.3f}"
    assert sqnr >= SQNR_DB[name][abits], f"{name} W{wbits}A{abits}: SQNR {sqnr:.1f} dB"
    layers = [n for n in g.nodes if n.op in ("conv2d", "depthwise_conv2d", "fully_connected")]
    assert [n.attrs["wbits"] for n in layers[1:-1]] == [wbits] * (len(layers) - 2)
    assert {layers[0].attrs["wbits"], layers[-1].attrs["wbits"]} == {8 if wbits == 1 else wbits}
    for n in layers:                                     # packed exactly as primitives.pack_weights
        k = g.tensor(n.inputs[0]).shape[-1] if n.op == "fully_connected" else int(np.prod(n.attrs["kernel"]))
        k *= g.tensor(n.inputs[0]).shape[-1] if n.op == "conv2d" else 1
        assert n.params["weight"].shape == (len(n.params["bias"]), P.packed_row_bytes(k, n.attrs["wbits"]))
    dtypes = {t.dtype for t in g.tensors.values()}
    assert ("s16" in dtypes) == (abits == 16)
    assert g.tensor(g.inputs[0]).shape == (49, 10, 1) and g.tensor(g.inputs[0]).dtype == "s8"
    assert g.meta["abits"] == abits and g.meta["model"]["arch"] in ("ds_cnn", "transformer")
    assert not any(r["may_saturate"] for r in accumulator_report(g))


def test_lowrank_layers_lower(trained):
    tf = _quantized("microbert-fast", trained["microbert-fast"], 8, 8)
    for blk in tf.blocks:                                # exact factorization (full rank): same function
        lin = blk.ffn.fc1
        lr = LowRankLinear(lin.in_features, lin.out_features, 16)
        u, s, vh = torch.linalg.svd(lin.weight.detach(), full_matrices=False)
        lr.first.weight.data.copy_(s[:16, None].sqrt() * vh[:16])
        lr.second.weight.data.copy_(u[:, :16] * s[:16].sqrt())
        lr.second.bias.data.copy_(lin.bias.detach())
        blk.ffn.fc1 = lr
    cnn = _quantized("ds-cnn-s", trained["ds-cnn-s"], 8, 8)
    pw = cnn.blocks[3].pw
    lrc = LowRankConv1x1(64, 64, 32, bias=False)
    u, s, vh = torch.linalg.svd(pw.weight.detach()[:, :, 0, 0], full_matrices=False)
    lrc.first.weight.data.copy_((s[:32, None].sqrt() * vh[:32])[:, :, None, None])
    lrc.second.weight.data.copy_((u[:, :32] * s[:32].sqrt())[:, :, None, None])
    cnn.blocks[3].pw = lrc
    for model, names in ((tf, {"blocks.0.ffn.fc1.first", "blocks.0.ffn.fc1.second"}),
                         (cnn, {"blocks.3.pw.first", "blocks.3.pw.second"})):
        qm = _prepare_convert(model, 8, 8)
        agree, sqnr, g = _compare(qm, 64)
        assert names <= {n.name for n in g.nodes}
        assert agree >= 0.99 and sqnr >= SQNR_DB["microbert-fast"][8]
        for n in g.nodes:      # the byte model low-rank decides with is what lowering deploys
            if n.name in names:
                rows, k = n.params["weight"].shape          # 8-bit: one byte per weight
                assert sum(p.nbytes for p in n.params.values()) == deployed_bytes(rows, k, 8)


def test_meta_classes_and_feature(trained):
    qm = _prepare_convert(_quantized("ds-cnn-s", trained["ds-cnn-s"], 8, 8), 8, 8)
    classes = [f"word{i}" for i in range(12)]
    g = lower(qm, classes=classes, feature={"n_mfcc": 10})
    assert g.meta["classes"] == classes and g.meta["feature"] == {"n_mfcc": 10}
    assert g.meta["wbits"]["fc"] == 8 and tuple(g.meta["model"]["channels"]) == (64,) * 5
    assert lower(qm).meta["feature"]["kind"] == "mfcc"          # default: the front end's FeatureConfig()
    with pytest.raises(PqlrError, match="class names"):
        lower(qm, classes=["a", "b"])
    with pytest.raises(PqlrError, match="input shape"):
        lower(qm, input_shape=(98, 10))


def test_lower_needs_converted_model(trained):
    model = _quantized("ds-cnn-s", trained["ds-cnn-s"], 8, 8)
    with pytest.raises(PqlrError, match="quantized model"):
        lower(model)
    qm = quantize_(model, QuantConfig(), calib=[_data(16, 4)[0]])
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
