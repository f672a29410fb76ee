"""Whole models on real data (FSDD, speaker-disjoint): the integer program (NumPy oracle) against the
fake-quant model at W8A8, W4A4, W4A8, W1A16 and a mixed-precision assignment -- accuracy within
0.3 points -- and the generated C against the oracle, byte for byte, on the host and (W8A8, W4A4)
on the RV32IMAC and Cortex-M4 emulators."""
import copy

import pytest

from pqlr.deploy.inputs import input_int8
from pqlr.compress.mixed import MixedConfig, plan_mixed
from pqlr.compress.quantize import QuantConfig, quantize_
from pqlr.data import FeatureConfig, load_dataset
from pqlr.ir.interp import run_graph
from pqlr.compress.lower import lower
from pqlr.models import build_model
from pqlr.train import DEFAULT_CACHE, TrainConfig, evaluate, train

FSDD = "fsdd:../shared/data/fsdd/recordings"
BITS = {"W8A8": (8, 8), "W4A4": (4, 4), "W4A8": (4, 8), "W1A16": (1, 16)}


@pytest.fixture(scope="module")
def data():
    return load_dataset(FSDD, holdout_speaker="theo", seed=0, progress=False)   # test: 500 clips of theo


def _trained(name, data, epochs):
    m = build_model(name, len(data.classes), seed=0)
    train(m, data, TrainConfig(epochs=epochs, augment=False, seed=0, lr=3e-3), progress=False)
    return m.eval()


@pytest.fixture(scope="module")
def models(data):
    return {"ds-cnn-s": _trained("ds-cnn-s", data, 8), "microbert-2l": _trained("microbert-2l", data, 6)}


def _quantized(model, data, wbits, abits, per_layer=None):
    x, _ = DEFAULT_CACHE.get(data.train, FeatureConfig())
    calib = [x[i:i + 64] for i in range(0, 128, 64)]
    cfg = QuantConfig(wbits=wbits, abits=abits, method="lsq+", calib=128, init="percentile",
                      per_layer_wbits=per_layer, first_last_8bit=(wbits == 1))
    q = quantize_(copy.deepcopy(model), cfg, step="prepare", calib=calib, input_shape=(1, 49, 10))
    if wbits < 8 or abits < 8:      # one short QAT epoch so low-bit models are worth comparing
        train(q, data, TrainConfig(epochs=1, augment=False, seed=0, lr=1e-3), progress=False)
    return quantize_(q, cfg, step="convert")


def _compare(q, data):
    g = lower(q, classes=data.classes, feature=FeatureConfig())
    feats, labels = DEFAULT_CACHE.get(data.test, FeatureConfig())
    y = run_graph(g, input_int8(g, feats))
    acc_int = float((y.reshape(len(y), -1).argmax(1) == labels.numpy()).mean())
    acc_fq = float(evaluate(q, data.test).accuracy)
    return g, acc_int, acc_fq


@pytest.mark.parametrize("name", ["ds-cnn-s", "microbert-2l"])
@pytest.mark.parametrize("bits", list(BITS))
def test_integer_accuracy_matches_fake_quant(models, data, name, bits):
    q = _quantized(models[name], data, *BITS[bits])
    _, acc_int, acc_fq = _compare(q, data)
    if bits != "W1A16":   # binary weights need far more than the one QAT epoch given here to learn
        assert acc_fq > 0.5, f"{name} {bits}: fake-quant model did not learn ({acc_fq:.3f})"
    assert abs(acc_int - acc_fq) <= 0.003 + 1e-9, f"{name} {bits}: int {acc_int:.4f} vs fake-quant {acc_fq:.4f}"


def test_mixed_precision_meets_budget_and_matches(models, data):
    m = models["ds-cnn-s"]
    x, _ = DEFAULT_CACHE.get(data.train, FeatureConfig())
    calib = [x[:64]]
    probe = quantize_(copy.deepcopy(m), QuantConfig(wbits=8, abits=8, calib=64), step="prepare", calib=calib,
                      input_shape=(1, 49, 10))
    budget = 12_000
    bits, table = plan_mixed(probe, calib, MixedConfig(flash=budget))
    assert len(set(bits.values())) > 1 and len(table) == len(bits)
    q = _quantized(m, data, 8, 8, per_layer=bits)
    g, acc_int, acc_fq = _compare(q, data)
    packed = sum(n.params["weight"].nbytes for n in g.nodes if "weight" in n.params)
    assert packed <= budget
    assert abs(acc_int - acc_fq) <= 0.003 + 1e-9


@pytest.mark.emulator
@pytest.mark.parametrize("target", ["host", "rv32imac", "cortex-m4"])
@pytest.mark.parametrize("name, bits", [("ds-cnn-s", "W8A8"), ("ds-cnn-s", "W4A4"),
                                        ("microbert-2l", "W8A8"), ("microbert-2l", "W4A4")])
def test_generated_c_is_bit_exact_on_targets(models, data, name, bits, target):
    from pqlr.deploy.verify import verify_graph

    q = _quantized(models[name], data, *BITS[bits])
    g, _, _ = _compare(q, data)
    feats, labels = DEFAULT_CACHE.get(data.test, FeatureConfig())
    n = (8 if name == "ds-cnn-s" else 4) if target != "host" else 64
    r = verify_graph(g, None, input_int8(g, feats[:n]), target, labels=labels[:n].numpy())
    assert r["mismatches"] == 0 and r["samples"] == n
    assert not r["soft_float_symbols"]
    if target != "host":
        assert r["instructions_per_inference"] > r["macs"]


@pytest.mark.emulator
def test_optimized_kernels_bit_exact_and_under_4_instructions_per_mac(models, data):
    """DS-CNN-S W8A8 on rv32imac: the optimized kernels (chosen at build time) give the same bytes
    as the oracle and retire <= 4 instructions per MAC over the whole network (issue target)."""
    from pqlr.deploy.verify import verify_graph

    q = _quantized(models["ds-cnn-s"], data, 8, 8)
    g, _, _ = _compare(q, data)
    feats, labels = DEFAULT_CACHE.get(data.test, FeatureConfig())
    x = input_int8(g, feats[:4])
    ref = verify_graph(g, None, x, "rv32imac", kernels="reference")
    opt = verify_graph(g, None, x, "rv32imac", kernels="opt")
    assert ref["mismatches"] == 0 and opt["mismatches"] == 0
    assert opt["instructions_per_mac"] <= 4.0, opt["instructions_per_mac"]
    assert opt["instructions_per_inference"] * 3 < ref["instructions_per_inference"]
