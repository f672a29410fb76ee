"""bench/peers: PQLR side by side with the tools users would pick instead (TFLite Micro via
litert-torch, onnxruntime's quantizer, brevitas, torch-pruning, bakenn), on the same DS-CNN-S, the
same splits, the same calibration clips and the same fine-tuning epochs. Writes
bench/results/peers.json and prints the markdown tables (report.py). Run it in bench/peers/.venv
(`make bench-peers` builds that environment and runs this):

    OMP_NUM_THREADS=1 bench/peers/.venv/bin/python bench/peers/run.py --threads 1

Per split, one float model is trained and cached (runs/float/); each split's results are cached
too (runs/results/), so an interrupted run continues where it stopped (--fresh to redo; bakenn's
row, which depends on the float model and the clips only, keeps its own cache: its PTQ takes
~15 min per split).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as md
import json
import platform
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

from common import RUNS, Settings, load_split, float_model, accuracy, stats  # noqa: E402
from pqlr.compress.quantize import QuantConfig  # noqa: E402

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")
PEERS = ("tflite-micro", "litert-torch", "onnxruntime", "onnx", "brevitas", "torch-pruning", "bakenn",
         "torch", "torchao", "ai-edge-litert", "numpy", "pqlr-torch")
ROOT = HERE.parents[1]


def parse_args(argv=None):
    d = Settings()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fsdd", default=str(ROOT.parent / "shared/data/fsdd/recordings"), help="FSDD recordings folder")
    p.add_argument("--speech-commands", default=str(ROOT.parent / "shared/data/speech_commands_mini"),
                   help="Speech Commands folder ('' to skip)")
    p.add_argument("--speakers", default=",".join(SPEAKERS), help="held-out FSDD speakers (comma-separated; '' = none)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="float training epochs (shared model)")
    p.add_argument("--ft-epochs", type=int, default=d.ft_epochs, help="fine-tuning epochs: QAT and after pruning")
    p.add_argument("--calib", type=int, default=d.calib, help="calibration clips (same for every contender)")
    p.add_argument("--repeats", type=int, default=d.repeats, help="timed invokes per contender (median)")
    p.add_argument("--sparsity", default="0.5,0.7", help="channel fractions removed by pruning")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--rv32-splits", type=int, default=1, help="splits measured on rv32imac (QEMU; same model size each)")
    p.add_argument("--bakenn-splits", type=int, default=99,
                   help="splits bakenn runs on (its NumPy calibration takes seconds per clip; default: all)")
    p.add_argument("--no-flagship", action="store_true")
    p.add_argument("--quick", action="store_true", help="smoke run: 1 speaker, 1 epoch, 0 fine-tune, 32 clips")
    p.add_argument("--fresh", action="store_true", help="ignore cached per-split results")
    p.add_argument("--json", default=str(ROOT / "bench/results/peers.json"))
    a = p.parse_args(argv)
    if a.quick:
        a.speakers, a.epochs, a.ft_epochs, a.calib, a.repeats = "theo", 1, 0, 32, 20
        a.speech_commands, a.sparsity, a.no_flagship = "", "0.5", True
        if a.json == p.get_default("json"):
            a.json = str(RUNS / "peers_quick.json")
    return a


def attempt(rows: dict, key: str, fn, log=print):
    """rows[key] = fn(), or {"could_not_run": reason} when the contender fails."""
    t = time.perf_counter()
    try:
        rows[key] = fn()
    except Exception as e:
        rows[key] = {"could_not_run": f"{type(e).__name__}: {str(e).strip().splitlines()[0][:400] if str(e).strip() else ''}"}
        traceback.print_exc()
    if isinstance(rows[key], dict):
        rows[key]["seconds"] = round(time.perf_counter() - t, 1)
    log(f"    {key}: {_short(rows[key])}")


def _short(r) -> str:
    if not isinstance(r, dict):
        return str(r)
    if "could_not_run" in r:
        return "COULD NOT RUN " + r["could_not_run"]
    return ", ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
                     if k in ("accuracy", "weight_bytes", "tflite_bytes", "arena_min_bytes", "bin_bytes", "params", "macs"))


def run_split(spec: str, holdout: str | None, s: Settings, a, rv32: bool, with_bakenn: bool = True) -> dict:
    import flagship  # noqa: F401  (import errors show up before hours of training)
    import peer_bakenn
    import peer_brevitas
    import peer_ort
    import peer_tflm
    import peer_tp
    import pqlr_side

    split = load_split(spec, holdout, s)
    work = RUNS / "work" / split.name.replace("/", "-")
    work.mkdir(parents=True, exist_ok=True)
    model, train_info = float_model(split, s)
    out = {"split": split.name, "spec": spec.split(":")[0], "holdout": holdout, "classes": split.classes,
           "n_train": len(split.data.train), "n_test": int(len(split.y_test)), "float_train": train_info,
           "float": {"accuracy": accuracy(model, split), **stats(model)}}
    print(f"[{split.name}] float accuracy {out['float']['accuracy']:.4f} ({out['n_test']} test clips)", flush=True)
    r: dict = {}
    attempt(r, "pqlr_int8", lambda: pqlr_side.int8_ptq(model, split, s, work, rv32=rv32))
    attempt(r, "tflm_int8", lambda: peer_tflm.evaluate(peer_tflm.convert(model, split, work / "litert" / "model.tflite"), split, s))
    attempt(r, "ort_int8", lambda: peer_ort.run(model, split, work / "onnx"))
    tfl = work / "litert" / "model.tflite"
    if with_bakenn:     # cached on its own: it depends on the float model and clips only, not on PQLR
        bkey = hashlib.sha256(repr((spec, holdout, s.epochs, s.calib, s.batch_size, s.lr, s.seed, s.repeats, rv32)
                                   ).encode()).hexdigest()[:10]
        bcache = RUNS / "results" / f"bakenn-{split.name.replace('/', '-')}-{bkey}.json"
        if bcache.is_file():
            r["bakenn_int8"] = json.loads(bcache.read_text())
            print(f"    bakenn_int8: from {bcache.relative_to(HERE)}", flush=True)
        else:
            attempt(r, "bakenn_int8", lambda: peer_bakenn.run(model, split, s, work, tflite=tfl, rv32=rv32))
            if "could_not_run" not in r["bakenn_int8"]:
                bcache.parent.mkdir(parents=True, exist_ok=True)
                bcache.write_text(json.dumps(r["bakenn_int8"], indent=1, default=str))
    attempt(r, "pqlr_int4_qat", lambda: pqlr_side.int4_qat(model, split, s))
    attempt(r, "brevitas_int4_qat", lambda: peer_brevitas.int4_qat(model, split, s))
    for sp in (float(v) for v in a.sparsity.split(",") if v):
        attempt(r, f"pqlr_prune_{sp:g}", lambda: pqlr_side.channel_prune(model, split, s, sp))
        attempt(r, f"tp_prune_{sp:g}", lambda: peer_tp.channel_prune(model, split, s, sp, int8_of=pqlr_side.int8_of))
    out["rows"] = r
    return out


def versions() -> dict:
    v = {}
    for name in PEERS:
        try:
            v[name] = md.version(name)
        except md.PackageNotFoundError:
            v[name] = None
    return v


def source() -> dict:
    """The PQLR commit the run measured (and whether the tree had local changes)."""
    import subprocess
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True).stdout
        return {"commit": head, "src_modified": bool(dirty.strip())}
    except OSError:
        return {"commit": None}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").is_file() else platform.processor()
    import os
    return {"cpu": cpu, "cores": os.cpu_count(), "arch": platform.machine(), "python": platform.python_version(),
            "os": platform.platform(), "torch_threads": torch.get_num_threads()}


def main(argv=None) -> int:
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    s = Settings(epochs=a.epochs, ft_epochs=a.ft_epochs, calib=a.calib, repeats=a.repeats)
    plan = [(f"fsdd:{a.fsdd}", spk.strip()) for spk in a.speakers.split(",") if spk.strip()]
    if a.speech_commands:
        plan.append((f"speech_commands:{a.speech_commands}", None))
    t0 = time.time()
    splits = []
    for i, (spec, holdout) in enumerate(plan):
        bk = i < a.bakenn_splits
        key = hashlib.sha256(repr((spec, holdout, asdict(s), a.sparsity, i < a.rv32_splits,
                                   *(() if bk else ("no-bakenn",)))).encode()).hexdigest()[:10]
        cache = RUNS / "results" / f"{(holdout or spec.split(':')[0])}-{key}.json"
        if cache.is_file() and not a.fresh:
            print(f"[{holdout or spec}] results from {cache.relative_to(HERE)}", flush=True)
            splits.append(json.loads(cache.read_text()))
            continue
        res = run_split(spec, holdout, s, a, rv32=i < a.rv32_splits, with_bakenn=bk)
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(res, indent=1, default=str))
        splits.append(res)
    out = {"benchmark": "peers", "command": " ".join(["bench/peers/run.py", *(argv if argv is not None else sys.argv[1:])]),
           "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(), "versions": versions(), "pqlr_source": source(),
           "settings": {**asdict(s), "sparsity": a.sparsity, "model": "ds-cnn-s",
                        "pqlr_quant_defaults": asdict(QuantConfig())}, "splits": splits}
    if a.rv32_splits > 0 and plan:        # PQLR's optimized kernels on the first split's model (not cached)
        import pqlr_side
        spec, holdout = plan[0]
        sp = load_split(spec, holdout, s)
        m, _ = float_model(sp, s)
        ex: dict = {}
        attempt(ex, "pqlr_int8_rv32_opt", lambda: pqlr_side.int8_rv32_opt(m, sp, s))
        out["pqlr_int8_rv32_opt"] = ex["pqlr_int8_rv32_opt"]
    if not a.no_flagship:
        import flagship
        fl: dict = {}
        attempt(fl, "flagship", lambda: flagship.run(s, RUNS / "work"))
        out["flagship"] = fl["flagship"]
    out["seconds"] = round(time.time() - t0, 1)
    from pqlr.io import write_json
    write_json(a.json, out)
    import report
    print(report.markdown(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
