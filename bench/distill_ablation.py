"""Benchmark: what distillation adds to the article's command, over the same schedule without a teacher.

The article's command (`bench/results/article_command_report.json`, teacher tinybert-6l: its soft
targets in every training phase, then 4 distillation epochs) against the same schedule without
`--teacher`. With the teacher, the accuracy budget settled on 4 QAT epochs and 8 low-rank epochs at
the asked sparsity, bits and rank; the runs here fix those settings (`--max-drop off --qat-epochs 4
--lowrank-epochs 8`) so that only the teacher differs, run two ways: as is (the 4 distillation
epochs are not run), and with those 4 epochs added to the low-rank fine-tune (`--lowrank-epochs
12`), so every parameter trains as many epochs as with the teacher. Same seed and data.

    OMP_NUM_THREADS=2 .venv/bin/python bench/distill_ablation.py --json bench/results/distill_ablation.json

~12 min on 2 cores. Not part of the test suite.
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

ARTICLE = ["--model", "tinybert", "--dataset", "kws_chinese", "--sparse", "0.7", "--wbits", "4", "--rank", "16"]
SCHEDULE = ["--max-drop", "off", "--qat-epochs", "4"]
RUNS = {
    "no teacher": SCHEDULE + ["--lowrank-epochs", "8"],
    "no teacher, the 4 distillation epochs added to the low-rank fine-tune": SCHEDULE + ["--lowrank-epochs", "12"],
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench_distill_ablation", help="folder for the model files")
    p.add_argument("--json", default=None, help="write the results here (after every run)")
    a = p.parse_args(argv)
    result = {"benchmark": "distill_ablation",
              "command": " ".join(["bench/distill_ablation.py", *(argv if argv is not None else sys.argv[1:])]),
              "torch": torch.__version__, "machine": platform.machine(),
              "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "runs": []}
    for i, (label, extra) in enumerate(RUNS.items()):
        flags = ARTICLE + extra
        cp = Parser(prog="pqlr-compress")
        add_arguments(cp)
        cfg = config_from_args(cp.parse_args([*flags, "--quiet", "--output", str(Path(a.out) / f"run{i}.bin")]))
        t = time.time()
        rep = run_pipeline(cfg, log=lambda m: print(f"  {m}", file=sys.stderr, flush=True))
        f = rep["final"]
        row = {"label": label, "flags": flags, "stages": [{"name": s["name"], "accuracy": s["accuracy"],
                                                          "val_accuracy": s.get("val_accuracy")} for s in rep["stages"]],
               "accuracy_int": f["accuracy_int"], "accuracy": f["accuracy"], "weight_bytes": f["weight_bytes"],
               "budget": rep.get("budget", []), "seconds": round(time.time() - t, 1)}
        result["runs"].append(row)
        print(f"{label}: integer {100 * f['accuracy_int']:.2f}%  {f['weight_bytes']:,} B  ({row['seconds']:.0f} s)",
              flush=True)
        if a.json:
            write_json(a.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
