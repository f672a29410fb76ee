"""The published tinyML models of examples/models through `pqlr-compress`, measured: float and
compressed accuracy, deployed bytes, planned arena, and retired instructions per inference of the
generated C on rv32imac (QEMU, exact count) -- one row per model.

Data (all real, offline; say so next to every figure):
  keyword spotters   FSDD spoken digits, train on 5 speakers, test on the 6th (theo)
  ResNet-8           scikit-learn's 1,797 handwritten digits, bilinearly resized to 32x32x3 (npz:)
  MobileNetV1 0.25   the same digits resized to 96x96x3, read from PNG folders (images:), 10 classes
  FC autoencoder     real running-tap / exercise-bike recordings as "normal", the same with speech,
                     dishes or miaowing mixed in as "anomalous" (examples/data/make_anomaly.py); ROC AUC

    .venv/bin/python bench/examples.py --json bench/results/examples.json [--only resnet8,tc_resnet]
    .venv/bin/python bench/doc_tables.py        # then render the table of docs/benchmarks.md from it

About 2.5 h on 2 cores (--threads 2), most of it training. Each row keeps its full command.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from pqlr.cli.compress import main as compress_main
from pqlr.deploy.verify import verify
from pqlr.io import write_json

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
FSDD = f"fsdd:{SHARED / 'fsdd' / 'recordings'}"
MODELS = ROOT / "examples" / "models"

# name: (file, student, teacher, data, epochs (student, teacher), extra flags)
CASES = {
    "bc_resnet": ("bc_resnet", "BCResNet1", "BCResNet3", "fsdd", (20, 15), []),
    "tc_resnet": ("tc_resnet", "TCResNet8", "TCResNet14_1_5", "fsdd", (20, 15), []),
    "matchboxnet": ("matchboxnet", "MatchboxNet3x1x64", "MatchboxNet6x2x64", "fsdd", (20, 15), []),
    "hello_edge_cnn": ("hello_edge_cnn", "HelloEdgeCNN", "HelloEdgeCNNL", "fsdd", (20, 15), []),
    "mlperf_ds_cnn": ("mlperf_ds_cnn", "MLPerfDSCNN", "MLPerfDSCNNL", "fsdd", (20, 10), []),
    "resnet8": ("resnet8", "ResNet8", "ResNet8Wide", "digits32", (15, 10), []),
    "mobilenet_v1": ("mobilenet_v1", "MobileNetV1_025", "MobileNetV1_050", "digits96", (10, 6),
                     ["--input-shape", "3x96x96"]),
    "fc_autoencoder": ("fc_autoencoder", "FCAutoencoder", "FCAutoencoderWide", "anomaly", (30, 20),
                       ["--task", "anomaly"]),
}
DATA_NOTE = {"fsdd": "FSDD, test speaker theo", "digits32": "sklearn digits 32x32 (npz)",
             "digits96": "sklearn digits 96x96 (images)", "anomaly": "running tap / bike vs mixes"}


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"ex_data_{name}", ROOT / "examples" / "data" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def dataset_flags(kind: str, work: Path) -> list[str]:
    if kind == "fsdd":
        return ["--dataset", FSDD, "--holdout-speaker", "theo"]
    if kind in ("digits32", "digits96"):
        if not (work / "digits" / "digits_32.npz").is_file():
            _script("make_digits").make(str(work / "digits"), size=32, channels=3, images=True)
        if kind == "digits32":
            return ["--dataset", f"npz:{work / 'digits' / 'digits_32.npz'}"]
        return ["--dataset", f"images:{work / 'digits' / 'images'}"]
    path = work / "anomaly.npz"
    if not path.is_file():
        _script("make_anomaly").make(str(path), SHARED)
    return ["--dataset", f"npz:{path}"]


def run_case(name: str, work: Path, threads: int, verify_samples: int) -> dict:
    file, student, teacher, data, (ep, tep), extra = CASES[name]
    out = work / name / f"{name}.bin"
    report_path = work / name / "report.json"
    flags = dataset_flags(data, work)
    argv = ["--model", f"{MODELS / file}.py:{student}", "--teacher", f"{MODELS / file}.py:{teacher}", *flags, *extra,
            "--sparse", "0.3", "--wbits", "8", "--abits", "8", "--rank", "16", "--epochs", str(ep),
            "--teacher-epochs", str(tep), "--prune-epochs", str(max(1, ep // 4)), "--qat-epochs", str(max(1, ep // 5)),
            "--lowrank-epochs", str(max(1, ep // 5)), "--distill-epochs", str(max(1, ep // 5)),
            "--threads", str(threads), "--quiet", "--output", str(out), "--json", str(report_path)]
    t0 = time.time()
    if compress_main(argv) != 0:
        raise SystemExit(f"{name}: pqlr-compress failed")
    seconds = time.time() - t0
    report = json.loads(report_path.read_text())
    dataset = flags[1]
    kw = {"holdout_speaker": "theo"} if data == "fsdd" else {}
    r = verify(out, "rv32imac", dataset=dataset, limit=verify_samples, **kw)
    st = {s["name"]: s for s in report["stages"]}
    final = report["final"]
    return {
        "model": name, "student": student, "teacher": teacher, "data": DATA_NOTE[data],
        "metric": final["metric"], "command": "pqlr-compress " + " ".join(argv),
        "float": st["original"]["accuracy"], "pruned": st["pruned"]["accuracy"],
        "compressed_fakequant": final["accuracy"], "compressed_int": final["accuracy_int"],
        "teacher_metric": report["teacher"]["accuracy"],
        "params_float": st["original"]["params"], "weight_bytes_float": st["original"]["weight_bytes"],
        "weight_bytes": final["weight_bytes"], "code_bytes": final["code_bytes"],
        "arena_bytes": final["ram"]["arena"], "ram_bytes": final["ram_peak_bytes"],
        "macs_float": st["original"]["macs"], "macs": final["weight_macs"],
        "instructions_rv32imac": r["instructions_per_inference"], "rv32_mismatches": r["mismatches"],
        "rv32_samples": r["samples"], "arena_painted_bytes": r["arena_peak_bytes"],
        "arena_plan_bytes": r["arena_plan_bytes"], "seconds": round(seconds, 1),
        "budget": report.get("budget", []),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", help="write the rows here")
    p.add_argument("--only", help="comma-separated case names (default: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--verify-samples", type=int, default=10)
    p.add_argument("--work", help="folder for data and packages (default: a temporary one)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    names = a.only.split(",") if a.only else list(CASES)
    work = Path(a.work) if a.work else Path(tempfile.mkdtemp(prefix="pqlr-examples-"))
    rows = []
    for name in names:
        print(f"== {name}", file=sys.stderr, flush=True)
        rows.append(run_case(name, work, a.threads, a.verify_samples))
        if a.json:
            write_json(a.json, {"date": time.strftime("%Y-%m-%d"), "rows": rows})
    for r in rows:
        print(f"{r['model']:12s} float {100 * r['float']:.1f}%  compressed (integer) {100 * r['compressed_int']:.1f}%  "
              f"{r['weight_bytes']:,} B  arena {r['arena_bytes']:,} B  {r['instructions_rv32imac']:,} instructions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
