"""Benchmark: what the accuracy budget (`--max-drop`) changes, on real and synthetic speech.

Each case is one `pqlr-compress` command, DS-CNN-S at 50% channels and INT8 weights and
activations, the defaults for everything not named (6 float epochs, 150 on the 35-clip Speech
Commands sample; 2 QAT epochs; rank 16 low-rank). It runs twice side by side: with the budget off
(`--max-drop off`: every setting as asked, as PQLR behaved before the budget existed) and with the
default budget (`--max-drop 0.5`). Recorded per stage: validation and test accuracy, deployed weight
bytes, what the budget tried and chose; per run: the integer program's test accuracy, wall time.

    OMP_NUM_THREADS=2 .venv/bin/python bench/budget.py --threads 2 --json bench/results/budget.json
    .venv/bin/python bench/budget.py --cases fsdd --json /tmp/b.json      # one case

Not part of the test suite (~35 min on 2 cores for the three cases).
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch

from pqlr.cli import Parser
from pqlr.cli.compress import add_arguments, config_from_args
from pqlr.io import write_json
from pqlr.pipeline import run_pipeline

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
COMMON = ["--model", "ds-cnn-s", "--sparse", "0.5", "--wbits", "8", "--abits", "8"]
CASES = {
    "fsdd": ("FSDD, test speaker theo", ["--dataset", f"fsdd:{DATA}/fsdd/recordings", "--holdout-speaker", "theo"]),
    "kws_english": ("kws_english (synthetic, 12 classes)", ["--dataset", "kws_english"]),
    # ~10 clips a word: 35 training clips, so 150 float epochs (each is one batch) instead of 6
    "speech_commands": ("Speech Commands sample: yes, no, up, down",
                        ["--dataset", f"speech_commands:{DATA}/speech_commands_mini", "--words", "yes,no,up,down",
                         "--epochs", "150"]),
}
BUDGETS = (("off", ["--max-drop", "off"]), ("0.5", ["--max-drop", "0.5"]))


def run_one(argv: list[str], out: Path, threads: int | None) -> dict:
    p = Parser(prog="pqlr-compress")
    add_arguments(p)
    args = p.parse_args([*argv, "--output", str(out), "--quiet", *(["--threads", str(threads)] if threads else [])])
    cfg = config_from_args(args)
    t = time.time()
    rep = run_pipeline(cfg, log=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
    stages = []
    for s in rep["stages"]:
        b = (s.get("details") or {}).get("budget")
        stages.append({"name": s["name"], "val_accuracy": s.get("val_accuracy"), "accuracy": s["accuracy"],
                       "weight_bytes": s["weight_bytes"], "macs": s["macs"],
                       "budget": None if not b else {k: b.get(k) for k in ("chosen", "tries", "within", "drop_points",
                                                                         "tolerance_points")}})
    f = rep["final"]
    return {"stages": stages, "budget_lines": rep.get("budget", []), "notes": rep.get("notes", []),
            "final": {"accuracy": f["accuracy"], "accuracy_int": f["accuracy_int"], "weight_bytes": f["weight_bytes"],
                      "ram_peak_bytes": f.get("ram_peak_bytes")},
            "seconds": round(time.time() - t, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    p.add_argument("--out", default="runs/bench_budget", help="folder for the model files")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", default=None, help="write the results here (after every run)")
    a = p.parse_args(argv)
    names = [c.strip() for c in a.cases.split(",") if c.strip()]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        p.error(f"unknown case(s) {', '.join(unknown)}; cases: {', '.join(CASES)}")
    result = {"benchmark": "budget",
              "command": " ".join(["bench/budget.py", *(argv if argv is not None else sys.argv[1:])]),
              "torch": torch.__version__, "machine": platform.machine(),
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cases": []}
    for name in names:
        data, flags = CASES[name]
        case = {"case": name, "data": data, "flags": COMMON + flags, "runs": {}}
        result["cases"].append(case)
        for label, extra in BUDGETS:
            print(f"{name}, --max-drop {label}", file=sys.stderr, flush=True)
            r = run_one(COMMON + flags + extra, Path(a.out) / f"{name}_{label}.bin", a.threads)
            case["runs"][label] = r
            st = "  ".join(f"{s['name']} {100 * s['accuracy']:.1f}%" for s in r["stages"])
            print(f"{name} --max-drop {label}: {st}  integer {100 * r['final']['accuracy_int']:.1f}%  "
                  f"{r['final']['weight_bytes']:,} B  ({r['seconds']:.0f} s)", flush=True)
            if a.json:
                write_json(a.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
