"""pqlr.deploy.verify on a REAL tiny model: a DS-CNN (8 channels) PTQ-calibrated on FSDD features,
lowered, written to a .bin, then verified on host (ASan/UBSan), RV32IMAC and Cortex-M4 (QEMU) on
real held-out-speaker clips: 0 mismatching bytes, instruction counts, sizes, fake-quant accuracy."""
from __future__ import annotations

import copy
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pqlr.capture import capture  # noqa: E402
from pqlr.compress.quantize import QuantConfig, quantize_  # noqa: E402
from pqlr.data import FeatureConfig, load_dataset  # noqa: E402
from pqlr.deploy.binfmt import write_bin  # noqa: E402
from pqlr.deploy.plan import plan_graph  # noqa: E402
from pqlr.deploy.tiles import plan_tiles  # noqa: E402
from pqlr.deploy.verify import dataset_inputs, summary, verify, verify_graph  # noqa: E402
from pqlr.errors import PqlrError  # noqa: E402
from pqlr.hw import toolchains  # noqa: E402
from pqlr.io import save_state  # noqa: E402
from pqlr.ir.interp import run_graph  # noqa: E402
from pqlr.compress.lower import lower  # noqa: E402
from pqlr.models import build_model  # noqa: E402
from pqlr.pipeline.checkpoint import fakequant_accuracy  # noqa: E402
from pqlr.train.batches import compute_features  # noqa: E402

import graphs  # noqa: E402  (tests/deploy/graphs.py)

FSDD = Path(__file__).resolve().parents[3] / "shared" / "data" / "fsdd"
KEYS = {"mismatches", "mismatched_bytes", "samples", "accuracy_int", "accuracy_c", "accuracy_fakequant", "target",
        "counter", "instructions_per_inference", "macs", "instructions_per_mac", "layers", "text_bytes",
        "rodata_bytes", "data_bytes", "bss_bytes", "stack_peak_bytes", "arena_peak_bytes", "ram_peak_bytes",
        "soft_float_symbols", "seconds"}


def have(target: str) -> bool:
    tc = toolchains.TOOLCHAINS[target]
    return all(shutil.which(t) for t in (tc.cc, tc.size, tc.nm, *tc.emulator[:1]))


@pytest.fixture(scope="session")
def fsdd():
    if not (FSDD / "recordings").is_dir():
        pytest.skip(f"{FSDD} not present")
    return load_dataset(f"fsdd:{FSDD}", per_class=3, holdout_speaker="george", progress=False)


@pytest.fixture(scope="session")
def tiny_model(fsdd, tmp_path_factory):
    """(bin paths {streamed, const}, fake-quant checkpoint, converted QuantModel, graph)."""
    torch.manual_seed(0)
    fcfg = FeatureConfig()
    model = build_model("ds-cnn-s", len(fsdd.classes), seed=0, channels=(8, 8, 8))
    calib = compute_features(fsdd.train, fcfg)                       # (N, 1, 49, 10) real clips
    cfg = QuantConfig(wbits=4, abits=8, method="ptq", init="minmax")
    qm = quantize_(copy.deepcopy(model), cfg, calib=[calib], input_shape=(1, 49, 10))
    qm = quantize_(qm, None, step="convert")
    g = lower(qm, classes=fsdd.classes, feature=fcfg)
    d = tmp_path_factory.mktemp("verify")
    arena = plan_graph(g).arena_bytes
    write_bin(d / "streamed.bin", g, plan_tiles(g, arena, n_tiles=3, double_buffer=True))
    write_bin(d / "const.bin", g)
    ckpt = d / "quantized.safetensors"       # the layout of a `pqlr compress` stage checkpoint
    captured = capture(model, (1, 49, 10))
    save_state(ckpt, {**{f"float.{k}": v for k, v in captured.state_dict().items()},
                      **{f"quant.{k}": v for k, v in qm.state_dict().items()}},
               {"stage": "quantized", "model_spec": captured.spec(), "quant_config": asdict(cfg)})
    return {"streamed": d / "streamed.bin", "const": d / "const.bin"}, ckpt, qm, g


@pytest.mark.emulator
@pytest.mark.parametrize("target,layout", [("host", "streamed"), ("rv32imac", "streamed"), ("cortex-m4", "const")])
def test_real_model_bit_exact_on_target(tiny_model, fsdd, target, layout):
    if not have(target):
        pytest.skip(f"{target} toolchain not installed")
    bins, ckpt, qm, g = tiny_model
    r = verify(bins[layout], target, dataset=fsdd, limit=8, fakequant=lambda f, y: fakequant_accuracy(ckpt, f, y),
               sanitize=target == "host")
    assert KEYS <= set(r)
    assert r["samples"] == 8 and r["mismatches"] == 0 and r["mismatched_bytes"] == 0
    assert r["soft_float_symbols"] == []
    assert r["accuracy_int"] == r["accuracy_c"]
    # the oracle's accuracy, recomputed here from the same clips
    x, y, feats, _ = dataset_inputs(g, {}, fsdd, "test", 8)
    assert r["accuracy_int"] == float(np.mean(run_graph(g, x).argmax(axis=1) == y))
    with torch.no_grad():
        assert r["accuracy_fakequant"] == float(np.mean(qm(feats).argmax(dim=1).numpy() == y))
    assert r["macs"] == sum(layer["macs"] for layer in r["layers"]) > 0
    assert [layer["name"] for layer in r["layers"]] == [n.name for n in g.nodes]
    assert 0 < r["arena_peak_bytes"] <= r["arena_plan_bytes"]
    assert r["text_bytes"] > 0 and r["rodata_bytes"] > 0
    if target == "host":
        assert r["counter"] == "none" and r["instructions_per_inference"] is None and r["sanitized"]
    else:
        assert r["instructions_per_inference"] > r["macs"] > 0
        assert all(layer["instructions"] > 0 for layer in r["layers"])
        # per-layer medians vs the median total: the layers are nearly all of it
        assert 0.95 <= sum(layer["instructions"] for layer in r["layers"]) / r["instructions_per_inference"] <= 1.01
        assert r["stack_peak_bytes"] > 0
        assert r["ram_peak_bytes"] == r["arena_peak_bytes"] + r["tile_buffer_bytes"] + r["stack_peak_bytes"]
    assert (r["n_tiles"] == 3 and r["tile_buffer_bytes"] > 0) if layout == "streamed" else r["tile_buffer_bytes"] == 0
    assert "PASS" in summary(r)


def test_graph_core_catches_a_wrong_kernel_parameter(monkeypatch):
    """verify_graph is a real check: C generated from a graph with one bias changed differs from
    the oracle of the original graph, and the report says where."""
    import pqlr.deploy.verify as verify_mod

    g, bad = graphs.cnn(), graphs.cnn()
    x = graphs.random_input(g, 6)
    ok = verify_graph(g, None, x, "host")
    assert ok["mismatches"] == 0 and ok["samples"] == 6 and ok["accuracy_int"] is None
    bad.nodes[-1].params["bias"] = bad.nodes[-1].params["bias"] + 600        # fc bias, every class
    orig = verify_mod.run_graph
    monkeypatch.setattr(verify_mod, "run_graph", lambda _graph, xx: orig(g, xx))  # oracle of the original
    r = verify_graph(bad, None, x, "host", labels=np.zeros(6, dtype=np.int64))
    assert r["mismatches"] == 6 and r["mismatched_bytes"] > 6 and r["first_mismatch"]["sample"] == 0
    assert r["first_mismatch"]["oracle"] != r["first_mismatch"]["c"]
    assert "FAIL" in summary(r)


@pytest.mark.parametrize("name", ["s16", "tokens"])
def test_graph_core_int16_and_transformer_ops_on_host(name):
    """W1A16 (int16 input/activations: bytes compared little-endian) and the transformer ops."""
    g = getattr(graphs, name)()
    x = graphs.random_input(g, 4)
    r = verify_graph(g, None, x, "host", labels=np.arange(4) % 3)
    assert r["mismatches"] == 0 and r["samples"] == 4 and r["accuracy_int"] == r["accuracy_c"]
    assert r["macs"] == sum(layer["macs"] for layer in r["layers"]) > 0


def test_bad_inputs_fail_loudly(tiny_model, fsdd, tmp_path):
    bins, _, _, g = tiny_model
    with pytest.raises(PqlrError, match="no such model file"):
        verify(tmp_path / "missing.bin", "host", dataset=fsdd, limit=2)
    corrupt = tmp_path / "corrupt.bin"
    data = bytearray(bins["const"].read_bytes())
    data[200] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    with pytest.raises(PqlrError, match="corrupt.bin: corrupt .bin"):
        verify(corrupt, "host", dataset=fsdd, limit=2)
    with pytest.raises(PqlrError, match="unknown target 'esp32'"):
        verify(bins["const"], "esp32", dataset=fsdd, limit=2)
    with pytest.raises(PqlrError, match="--limit must be >= 1"):
        verify(bins["const"], "host", dataset=fsdd, limit=0)
    other = copy.copy(fsdd)
    other.classes = list(reversed(fsdd.classes))
    with pytest.raises(PqlrError, match="classes"):
        verify(bins["const"], "host", dataset=other, limit=2)
    with pytest.raises(PqlrError, match="int8 array"):
        verify_graph(g, None, np.zeros((2, *g.tensor(g.inputs[0]).shape), np.int16), "host")
    with pytest.raises(PqlrError, match="inputs or a dataset"):
        verify(bins["const"], "host")
