"""The tables of README.md and docs/benchmarks.md, generated from the results files in bench/results
(never typed): each lives between `<!-- table:NAME -->` and `<!-- /table:NAME -->`.

    .venv/bin/python bench/doc_tables.py            # rewrite the tables from the results files
    .venv/bin/python bench/doc_tables.py --check    # exit 1 if a table differs from its results file

tests/test_docs.py runs the check, so a figure in the docs cannot drift from the file it came from.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from pqlr.pipeline.report import fmt_bytes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = [ROOT / "README.md", ROOT / "docs" / "benchmarks.md"]


def _load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def article() -> str:
    """The article's per-stage table of the verbatim command, and the teacher beside it."""
    r = _load("article_command_report.json")
    rows = r["stages"]
    lines = ["| | " + " | ".join(s["name"] for s in rows) + " |", "|---" * (len(rows) + 1) + "|"]
    for key, label, fmt in [("weight_bytes", "weights", fmt_bytes), ("activation_bytes", "activations", fmt_bytes),
                            ("code_bytes", "code (rv32imac .text)", fmt_bytes), ("macs", "MACs", lambda v: f"{v / 1e6:.2f} M"),
                            ("accuracy", "accuracy", lambda v: f"{100 * v:.1f}%")]:
        lines.append(f"| {label} | " + " | ".join(fmt(s[key]) if s.get(key) is not None else "n/a" for s in rows) + " |")
    t, f = r["teacher"], r["final"]
    ratio = t["weight_bytes"] / f["weight_bytes"]
    lines += ["", f"Teacher `{t['name']}`: {t['params']:,} parameters, {fmt_bytes(t['weight_bytes'])} fp32, "
                  f"{100 * t['accuracy']:.1f}% -- {ratio:.1f}x the student's deployed bytes "
                  f"({f['weight_bytes']:,} B), {100 * (t['accuracy'] - f['accuracy_int']):+.2f} points over its "
                  f"integer program ({100 * (t['accuracy'] - f['accuracy']):+.2f} over the fake-quant one). "
                  f"Integer program {100 * f['accuracy_int']:.2f}% vs fake-quant {100 * f['accuracy']:.2f}%; "
                  f"RAM {f['ram_peak_bytes']:,} B; C == oracle on {f['host_check']['samples']} host samples; "
                  f"{r['seconds'] / 60:.1f} min wall on this 2-core machine "
                  f"({'teacher training included' if t['source'].startswith('trained') else 'teacher from its cache'})."]
    if r.get("budget"):
        lines += ["", f"Accuracy budget (`--max-drop {r['config']['budget']['max_drop']}`, validation split): "
                      + "; ".join(r["budget"]) + "."]
    for name in ("article_command_verify_rv32.json", "article_command_verify_rv32_opt.json"):
        if (RESULTS / name).is_file():
            v = _load(name)
            lines += ["", f"`pqlr verify --target {v['target']}{' --kernels opt' if v['kernels'] == 'opt' else ''}` "
                          f"({name}): {v['mismatches']} of {v['samples']} samples differ from the oracle; "
                          f"{v['instructions_per_inference'] / 1e6:.2f} M instructions per inference "
                          f"({v['instructions_per_mac']:.2f} per MAC, {v['kernels']} kernels), RAM peak "
                          f"{v['ram_peak_bytes']:,} B (arena {v['arena_peak_bytes']:,} B painted, {v['arena_plan_bytes']:,} B "
                          f"planned; stack {v['stack_peak_bytes']:,} B), text {v['text_bytes']:,} B, "
                          f"rodata {v['rodata_bytes']:,} B."]
    return "\n".join(lines)


def examples() -> str:
    """One row per published model of examples/models (bench/examples.py)."""
    r = _load("examples.json")
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    lines = ["| model | data | metric | float | compressed (integer C) | teacher | weights fp32 -> deployed | "
             "arena | MACs | rv32imac instructions / inference |", "|---|---|---|---|---|---|---|---|---|---|"]
    for x in r["rows"]:
        lines.append(f"| {x['student']} | {x['data']} | {x['metric']} | {pct(x['float'])} | {pct(x['compressed_int'])} | "
                     f"{pct(x['teacher_metric'])} | {fmt_bytes(x['weight_bytes_float'])} -> {fmt_bytes(x['weight_bytes'])} | "
                     f"{x['arena_bytes']:,} B | {x['macs'] / 1e6:.2f} M | {x['instructions_rv32imac'] / 1e6:.1f} M |")
    lines += ["", f"Measured {r['date']} with `bench/examples.py` (`bench/results/examples.json` holds each row's "
                  "full command); every row's C matched the integer oracle on rv32imac "
                  f"({', '.join(str(x['rv32_mismatches']) for x in r['rows'])} mismatches)."]
    backed = [f"{x['student']}: " + "; ".join(b for b in x["budget"] if "back-off" in b or "over the" in b)
              for x in r["rows"] if any("back-off" in b or "over the" in b for b in x.get("budget", []))]
    if any("budget" in x for x in r["rows"]):
        lines += ["", "Accuracy budget (default 0.5 points per stage, validation split): "
                      + (" / ".join(backed) if backed else "no stage had to back off") + "."]
    return "\n".join(lines)


def examples_budget() -> str:
    """Rows of examples.json re-measured with the default accuracy budget (bench/examples.py --only ...)."""
    before = {x["model"]: x for x in _load("examples.json")["rows"]}
    r = _load("examples_budget.json")
    pct = lambda v: f"{100 * v:.1f}%"  # noqa: E731
    lines = ["| model | budget | float | pruned | compressed (integer C) | weights deployed | rv32imac mismatches | "
             "what the budget did |", "|---|---|---|---|---|---|---|---|"]
    for x in r["rows"]:
        b = before[x["model"]]
        lines.append(f"| {x['student']} | off (examples table) | {pct(b['float'])} | {pct(b['pruned'])} | "
                     f"{pct(b['compressed_int'])} | {b['weight_bytes']:,} B | {b['rv32_mismatches']} | off |")
        lines.append(f"| {x['student']} | 0.5 | {pct(x['float'])} | {pct(x['pruned'])} | {pct(x['compressed_int'])} | "
                     f"{x['weight_bytes']:,} B | {x['rv32_mismatches']} | " + "; ".join(x["budget"]) + " |")
    lines += ["", f"Measured {r['date']} with `bench/examples.py --only {','.join(x['model'] for x in r['rows'])} "
                  "--json bench/results/examples_budget.json` (same command as the examples table, default budget)."]
    return "\n".join(lines)


def kernels() -> str:
    """DS-CNN-S on rv32imac, instructions per MAC per layer type: reference vs optimized kernels."""
    r = _load("kernels_rv32.json")["results"]
    names = list(r)                                   # one per weight bit-width, e.g. "ds-cnn-s W8A8 on rv32imac"
    heads = [f"{n.split()[1]} {b}" for n in names for b in ("ref", "opt")]
    lines = ["| layer type (MACs) | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    first = r[names[0]]["ref"]["kinds"]
    for kind, k in first.items():
        if not k["macs"]:
            continue
        cells = []
        for n in names:
            ref, opt = (r[n][b]["kinds"][kind]["instructions"] / r[n][b]["kinds"][kind]["macs"] for b in ("ref", "opt"))
            cells += [f"{ref:.2f}", f"{opt:.2f} ({ref / opt:.1f}x)" if n == names[0] else f"{opt:.2f}"]
        lines.append(f"| {kind} ({k['macs']:,}) | " + " | ".join(cells) + " |")
    cells = []
    for n in names:
        cells += [f"**{r[n]['ref']['instructions_per_mac']:.2f}**", f"**{r[n]['opt']['instructions_per_mac']:.2f}**"]
    lines.append("| **whole network** | " + " | ".join(cells) + " |")
    w8 = r[names[0]]
    lines += ["", f"{names[0]}: {w8['opt']['total_instructions'] / 1e6:.1f} M instructions per inference with the "
                  f"optimized kernels, {w8['ref']['total_instructions'] / 1e6:.1f} M with the reference ones; arena "
                  f"{w8['ref']['arena_plan_bytes']:,} B (reference, in place) vs {w8['opt']['arena_plan_bytes']:,} B "
                  f"(optimized, out of place); code {w8['ref']['text_bytes']:,} B vs {w8['opt']['text_bytes']:,} B; "
                  f"stack {w8['ref']['stack_peak_bytes']:,} B vs {w8['opt']['stack_peak_bytes']:,} B."]
    return "\n".join(lines)


def budget() -> str:
    """bench/budget.py: the same commands with the accuracy budget off and on, side by side."""
    r = _load("budget.json")
    names = [s["name"] for s in r["cases"][0]["runs"]["off"]["stages"]]
    lines = ["| data | --max-drop | " + " | ".join(names) + " | integer C | weights | seconds | what the budget did |",
             "|---" * (len(names) + 6) + "|"]
    for c in r["cases"]:
        for label, run in c["runs"].items():
            cells = [f"{100 * s['accuracy']:.1f}% ({100 * s['val_accuracy']:.1f}%)" if s.get("val_accuracy") is not None
                     else f"{100 * s['accuracy']:.1f}%" for s in run["stages"]]
            did = "; ".join(f"{s['name']}: {' -> '.join(t['setting'] for t in s['budget']['tries'])}"
                            + ("" if s["budget"]["within"] in (None, True) else " (none within; best kept)")
                            for s in run["stages"] if s.get("budget") and len(s["budget"]["tries"]) > 1) or "nothing"
            did = "off" if label == "off" else did
            lines.append(f"| {c['data']} | {label} | " + " | ".join(cells) + f" | {100 * run['final']['accuracy_int']:.1f}% | "
                         f"{run['final']['weight_bytes']:,} B | {run['seconds']:.0f} | {did} |")
    lines += ["", f"Test accuracy (validation in brackets) after each stage; measured {r['time'][:10]} with "
                  f"`{r['command']}` (`bench/results/budget.json`). Every case: "
                  f"`pqlr-compress {' '.join(r['cases'][0]['flags'][:8])} ...` and the data's flags."]
    return "\n".join(lines)


def distill() -> str:
    """The article's command with its teacher against the same schedule without one (bench/distill_ablation.py)."""
    art, r = _load("article_command_report.json"), _load("distill_ablation.json")
    rows = [("teacher tinybert-6l (the article's command)", art["stages"], art["final"]["accuracy_int"],
             art["final"]["weight_bytes"], art["seconds"])]
    rows += [(x["label"], x["stages"], x["accuracy_int"], x["weight_bytes"], x["seconds"]) for x in r["runs"]]
    names = [s["name"] for s in art["stages"]]
    lines = ["| run | " + " | ".join(names) + " | integer C | weights | minutes |", "|---" * (len(names) + 4) + "|"]
    for label, stages, acc, wb, sec in rows:
        lines.append(f"| {label} | " + " | ".join(f"{100 * s['accuracy']:.1f}%" for s in stages)
                     + f" | **{100 * acc:.2f}%** | {wb:,} B | {sec / 60:.1f} |")
    gain = 100 * (art["final"]["accuracy_int"] - max(x["accuracy_int"] for x in r["runs"]))
    best = "the run" if len(r["runs"]) == 1 else f"the better of the {len(r['runs'])} runs"
    lines += ["", f"Distillation adds {gain:+.2f} points over {best} without a teacher "
                  f"(`{r['command']}`, `bench/results/distill_ablation.json`, measured {r['time'][:10]})."]
    return "\n".join(lines)


TABLES = {"distill": distill, "examples_budget": examples_budget, "article": article, "examples": examples, "kernels": kernels, "budget": budget}
MARK = re.compile(r"(<!-- table:(\w+) -->\n)(.*?)(<!-- /table:\2 -->)", re.S)


def render(text: str) -> str:
    def one(m):
        name = m.group(2)
        if name not in TABLES:
            raise SystemExit(f"unknown table {name!r}")
        try:
            body = TABLES[name]() + "\n"
        except FileNotFoundError as e:
            body = f"(not measured yet: {Path(e.filename).name} missing)\n"
        return m.group(1) + body + m.group(4)
    return MARK.sub(one, text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="only check; exit 1 on a difference")
    a = p.parse_args(argv)
    stale = []
    for doc in DOCS:
        old = doc.read_text()
        new = render(old)
        if new != old:
            stale.append(str(doc.relative_to(ROOT)))
            if not a.check:
                doc.write_text(new)
    if a.check and stale:
        print(f"tables out of date in {', '.join(stale)}: run bench/doc_tables.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
