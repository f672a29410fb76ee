"""Benchmark: the whole PQLR pipeline on FSDD, leave-one-speaker-out.

For each held-out speaker, runs exactly what `pqlr-compress ... --dataset fsdd:DATA --holdout-speaker S`
runs (every flag after `--` is a pqlr-compress flag) and records the per-stage table: accuracy on the
unseen speaker, weight bytes as deployed, MACs; the teacher; the integer program's accuracy; and two
derived figures: teacher-bytes / student-bytes, and the quantization gap (quantized row minus the
float pruned row it was quantized from). Not part of the test suite. Example (INT4 weights and
activations, DS-CNN-L teacher):

    .venv/bin/python bench/pipeline_fsdd.py --json bench/results/pipeline_fsdd_ds-cnn-s.json -- \
        --model ds-cnn-s --teacher ds-cnn-l --sparse 0.5 --wbits 4 --abits 4 --threads 1

Speakers can run in parallel processes (`--speakers a,b` each, same flags); `--merge A.json B.json
--json ALL.json` then combines them and recomputes the summary.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from pqlr.cli import Parser
from pqlr.cli.compress import add_arguments, config_from_args
from pqlr.pipeline import run_pipeline
from pqlr.io import write_json

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def parse_args(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    compress_argv = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/fsdd/recordings", help="FSDD recordings folder")
    p.add_argument("--speakers", default=",".join(SPEAKERS), help="comma-separated held-out speakers")
    p.add_argument("--out", default="runs/bench_pipeline", help="folder for each speaker's .bin and package")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--merge", nargs="+", metavar="JSON",
                   help="instead of running: combine results of runs made in parallel (other speakers, same flags)")
    args = p.parse_args(own)
    cp = Parser(prog="pqlr-compress")
    add_arguments(cp)
    args.compress = cp.parse_args(compress_argv)
    args.compress_argv = compress_argv
    return args


def run_speaker(args, speaker: str) -> dict:
    c = argparse.Namespace(**vars(args.compress))
    c.dataset, c.holdout_speaker, c.quiet = f"fsdd:{args.data}", speaker, True
    c.output = str(Path(args.out) / f"{c.model or 'model'}_{speaker}.bin")
    cfg = config_from_args(c)
    rep = run_pipeline(cfg, log=lambda m: print(f"  {speaker}: {m}", file=sys.stderr, flush=True))
    rows = {s["name"]: s for s in rep["stages"]}
    out = {
        "speaker": speaker,
        "stages": [{k: s.get(k) for k in ("name", "accuracy", "weight_bytes", "macs", "params", "seconds")}
                   for s in rep["stages"]],
        "teacher": rep.get("teacher"),
        "final": {k: rep["final"].get(k) for k in ("accuracy", "accuracy_int", "weight_bytes", "flash_bytes",
                                                   "ram_peak_bytes", "macs")},
        "quantization_gap_points": 100 * (rows["quantized"]["accuracy"] - rows["pruned"]["accuracy"]),
        "seconds": rep.get("seconds"),
    }
    if rep.get("teacher"):
        out["teacher_over_student_bytes"] = rep["teacher"]["weight_bytes"] / rep["final"]["weight_bytes"]
        out["student_minus_teacher_points"] = 100 * (rep["final"]["accuracy_int"] - rep["teacher"]["accuracy"])
    return out


def summarize(results: list[dict]) -> dict:
    def col(f):
        return [f(r) for r in results]

    summary = {
        "mean_original_accuracy": statistics.mean(col(lambda r: r["stages"][0]["accuracy"])),
        "mean_final_accuracy_int": statistics.mean(col(lambda r: r["final"]["accuracy_int"])),
        "min_final_accuracy_int": min(col(lambda r: r["final"]["accuracy_int"])),
        "mean_quantization_gap_points": statistics.mean(col(lambda r: r["quantization_gap_points"])),
        "median_final_weight_bytes": statistics.median(col(lambda r: r["final"]["weight_bytes"])),
    }
    if results and results[0].get("teacher"):
        summary["mean_teacher_accuracy"] = statistics.mean(col(lambda r: r["teacher"]["accuracy"]))
        summary["median_teacher_over_student_bytes"] = statistics.median(col(lambda r: r["teacher_over_student_bytes"]))
        summary["mean_student_minus_teacher_points"] = statistics.mean(col(lambda r: r["student_minus_teacher_points"]))
    return summary


def merge(paths: list[str], out: str | None) -> int:
    runs = [json.loads(Path(p).read_text()) for p in paths]
    flags = {tuple(r["pqlr_compress_flags"]) for r in runs}
    if len(flags) != 1:
        raise SystemExit(f"--merge: the runs used different pqlr-compress flags: {sorted(flags)}")
    results = [sp for r in runs for sp in r["speakers"]]
    summary = summarize(results)
    for k, v in summary.items():
        print(f"{k}: {v:.4g}")
    if out:
        write_json(out, {**runs[0], **summary, "speakers": results, "merged_from": [r["command"] for r in runs]})
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.merge:
        return merge(args.merge, args.json)
    if args.compress.threads:
        torch.set_num_threads(args.compress.threads)
    results = []
    for sp in [s.strip() for s in args.speakers.split(",") if s.strip()]:
        t = time.time()
        r = run_speaker(args, sp)
        results.append(r)
        st = {s["name"]: s for s in r["stages"]}
        print(f"{sp}: original {100 * st['original']['accuracy']:.1f}%  pruned {100 * st['pruned']['accuracy']:.1f}%  "
              f"quantized {100 * st['quantized']['accuracy']:.1f}%  final int {100 * r['final']['accuracy_int']:.1f}%  "
              f"weights {r['final']['weight_bytes']:,} B  ({time.time() - t:.0f} s)", flush=True)

    summary = summarize(results)
    for k, v in summary.items():
        print(f"{k}: {v:.4g}")
    if args.json:
        write_json(args.json, {
            "benchmark": "pipeline_fsdd",
            "command": " ".join(["bench/pipeline_fsdd.py", *(argv if argv is not None else sys.argv[1:])]),
            "pqlr_compress_flags": args.compress_argv,
            "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **summary, "speakers": results,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
