"""The pipeline report: the article's per-stage table with measured numbers, as JSON and Markdown."""
from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Callable

from ..io import write_json, write_text
from .budget import summary_lines
from .measure import finalize

COLUMNS = ("weight_bytes", "activation_bytes", "code_bytes", "macs", "accuracy")


def fmt_bytes(n) -> str:
    if n is None:
        return "n/a"
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MB"
    if n >= 1 << 10:
        return f"{n / 1024:.1f} KB"
    return f"{n} B"


def table_markdown(rows: list[dict]) -> str:
    head = "| | " + " | ".join(r["name"] for r in rows) + " |"
    sep = "|---" * (len(rows) + 1) + "|"
    lines = [head, sep]
    for col, label, fmt in [("weight_bytes", "weights", fmt_bytes), ("activation_bytes", "activations", fmt_bytes),
                            ("code_bytes", "code", fmt_bytes), ("macs", "MACs", lambda v: f"{v / 1e6:.2f} M"),
                            ("accuracy", "accuracy", lambda v: f"{100 * v:.1f}%")]:
        lines.append(f"| {label} | " + " | ".join(fmt(r.get(col)) if r.get(col) is not None else "n/a" for r in rows) + " |")
    return "\n".join(lines)


def report_markdown(report: dict) -> str:
    cfg = report["config"]
    out = [f"# PQLR report: {cfg['model']} on {cfg['dataset']}", "",
           f"Command: `{report['command']}`", "", table_markdown(report["stages"]), ""]
    t = report.get("teacher")
    if t:
        out += [f"Teacher `{t['name']}`: {report['final'].get('metric', 'accuracy')} {100 * t['accuracy']:.1f}%, {t['params']:,} parameters, "
                f"{fmt_bytes(t['weight_bytes'])} fp32 ({t['source']}). Every fine-tuning phase used the "
                f"distillation loss (T = {cfg['distill']['temperature']}, alpha = {cfg['distill']['alpha']}).", ""]
    if report.get("budget"):
        b = cfg["budget"]
        out += ["## Accuracy budget", "",
                f"Each stage against its input on the validation split, at most {b['max_drop']} points "
                f"(forced: {', '.join(b['force']) or 'none'}); every setting tried is in report.json "
                "(stages[].details.budget).", ""] + [f"- {line}" for line in report["budget"]] + [""]
    f = report["final"]
    out += ["## Final model", ""] + [f"- {k}: {v}" for k, v in f.items() if not isinstance(v, (dict, list))] + [""]
    if report.get("notes"):
        out += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    out += ["Accuracy is measured on the held-out test split. Float stages count fp32 weights (4 bytes each) and "
            "estimate activations as two fp32 tensors of the largest layer output; quantized stages count packed "
            "weights + scales + biases as deployed and activations from the arena planner; code bytes come from the "
            "compiled C (.text) where it was built.", ""]
    return "\n".join(out)


def write_report(out_dir: Path, report: dict, log: Callable[[str], None] = print) -> None:
    write_json(out_dir / "report.json", report)
    write_text(out_dir / "report.md", report_markdown(report))
    log("\n" + table_markdown(report["stages"]) + "\n")
    if report.get("budget"):
        log("accuracy budget (validation split):\n" + "\n".join(f"  {line}" for line in report["budget"]) + "\n")
    log(f"report: {out_dir / 'report.json'}, {out_dir / 'report.md'}")


def build_report(cfg, ctx, rows: list[dict], teacher_row: dict | None, *, seconds: float,
                 log: Callable[[str], None] = print) -> dict:
    final = finalize(cfg, ctx, log=log)
    report = {
        "command": " ".join(["pqlr-compress", *sys.argv[1:]]) if sys.argv and "compress" in sys.argv[0] else "run_pipeline()",
        "config": asdict(cfg),
        "stages": rows,
        "teacher": teacher_row,
        "final": final,
        "notes": ctx.notes,
        "budget": summary_lines(rows),
        "seconds": round(seconds, 1),
    }
    write_report(cfg.out_dir, report, log)
    return report
