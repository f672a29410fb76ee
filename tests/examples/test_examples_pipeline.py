"""Acceptance: the published tinyML models of examples/models, written from their papers, each run
through `pqlr-compress --model examples/models/x.py:Class --teacher examples/models/x.py:Bigger` end
to end (prune, quantize, low-rank where a layer saves bytes, distill) on real data -- FSDD speech for
the keyword spotters, scikit-learn's handwritten digits (npz: and images:) for the image models, real
machine-like recordings for the anomaly autoencoder -- then the written model file is verified on
rv32imac and cortex-m4 in QEMU: C == the integer oracle byte for byte, RAM painted == RAM planned.
Short runs (one epoch per phase, a few clips per class): what is checked here is that every stage
works for models PQLR did not define; bench/examples.py measures their accuracy with real training.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pqlr.cli.compress import main as compress_main
from pqlr.deploy.verify import verify
ROOT = Path(__file__).resolve().parents[2]
FSDD = f"fsdd:{ROOT.parent / 'shared' / 'data' / 'fsdd' / 'recordings'}"
MODELS = ROOT / "examples" / "models"

#  file, student, teacher, data, extra flags
CASES = {
    "bc_resnet": ("BCResNet1", "BCResNet3", "fsdd", []),
    "tc_resnet": ("TCResNet8", "TCResNet14_1_5", "fsdd", []),
    "matchboxnet": ("MatchboxNet3x1x64", "MatchboxNet6x2x64", "fsdd", []),
    "hello_edge_cnn": ("HelloEdgeCNN", "HelloEdgeCNNL", "fsdd", []),
    "mlperf_ds_cnn": ("MLPerfDSCNN", "MLPerfDSCNNL", "fsdd", []),
    "resnet8": ("ResNet8", "ResNet8Wide", "digits_npz", []),
    "mobilenet_v1": ("MobileNetV1_025", "MobileNetV1_050", "digits_images", ["--input-shape", "3x96x96"]),
    "fc_autoencoder": ("FCAutoencoder", "FCAutoencoderWide", "anomaly", ["--task", "anomaly"]),
}


def _dataset(kind, request) -> list[str]:
    if kind == "fsdd":
        return ["--dataset", FSDD, "--holdout-speaker", "theo", "--per-class", "8"]
    if kind == "digits_npz":
        return ["--dataset", f"npz:{request.getfixturevalue('digits_dir') / 'digits_32.npz'}", "--per-class", "16"]
    if kind == "digits_images":
        return ["--dataset", f"images:{request.getfixturevalue('digits_dir') / 'images'}", "--per-class", "12"]
    return ["--dataset", f"npz:{request.getfixturevalue('anomaly_npz')}"]


@pytest.mark.parametrize("file", CASES)
def test_example_model_end_to_end(file, request, tmp_path):
    student, teacher, data, extra = CASES[file]
    out = tmp_path / f"{file}.bin"
    argv = ["--model", f"{MODELS / file}.py:{student}", "--teacher", f"{MODELS / file}.py:{teacher}",
            *_dataset(data, request), *extra, "--sparse", "0.3", "--wbits", "8", "--abits", "8", "--rank", "16",
            "--epochs", "1", "--teacher-epochs", "1", "--prune-epochs", "1", "--qat-epochs", "1",
            "--lowrank-epochs", "1", "--distill-epochs", "1", "--batch-size", "32", "--no-augment",
            "--threads", "1", "--quiet", "--max-drop", "off",     # one-epoch models: the mechanics, not the budget
            "--output", str(out), "--json", str(tmp_path / "report.json")]
    assert compress_main(argv) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    names = [s["name"] for s in report["stages"]]
    assert names == ["original", "pruned", "quantized", "low-rank", "distilled"]
    st = {s["name"]: s for s in report["stages"]}
    assert st["pruned"]["params"] < st["original"]["params"], "structured pruning cut nothing"
    assert st["quantized"]["weight_bytes"] < st["pruned"]["weight_bytes"]       # fp32 -> int8 (+ per-channel terms)
    assert st["pruned"]["macs"] < st["original"]["macs"]
    assert report["teacher"]["params"] > st["original"]["params"]
    final = report["final"]
    assert final["host_check"]["mismatches"] == 0 and final["host_check"]["samples"] > 0
    assert (out.with_suffix("") / "report.md").is_file() and out.read_bytes()[:4] == b"PQLR"
    if data == "anomaly":
        assert final["metric"] == "roc_auc" and 0.0 <= final["accuracy_int"] <= 1.0
    for target in ("rv32imac", "cortex-m4"):
        if shutil.which({"rv32imac": "qemu-system-riscv32", "cortex-m4": "qemu-system-arm"}[target]) is None:
            pytest.skip(f"{target}: QEMU not installed")
        dataset = _dataset(data, request)[1]
        kw = {"holdout_speaker": "theo", "per_class": 8} if data == "fsdd" else {}
        r = verify(out, target, dataset=dataset, limit=2, **kw)
        assert r["mismatches"] == 0 and r["soft_float_symbols"] == [], (target, r["first_mismatch"])
        assert r["arena_plan_bytes"] - 4 < r["arena_peak_bytes"] <= r["arena_plan_bytes"], (
            f"{target}: painted {r['arena_peak_bytes']} B, planned {r['arena_plan_bytes']} B")
        assert r["instructions_per_inference"] > final["macs"]
