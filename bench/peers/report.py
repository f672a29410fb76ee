"""Markdown tables of bench/results/peers.json (what run.py prints, and what docs/benchmarks.md
shows). `python bench/peers/report.py [peers.json]` prints them again without re-running."""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

NA = "n/a"


def _rows(out: dict, key: str, spec: str | None = None) -> list[dict]:
    """Successful rows named `key` of every split (of one dataset kind when `spec` is given)."""
    return [s["rows"][key] for s in out["splits"]
            if (spec is None or s["spec"] == spec) and key in s["rows"] and "could_not_run" not in s["rows"][key]]


def _failed(out: dict, key: str) -> str | None:
    for s in out["splits"]:
        r = s["rows"].get(key, {})
        if "could_not_run" in r:
            return r["could_not_run"]
    return None


def _acc(out: dict, key: str, spec: str, field: str = "accuracy") -> str:
    splits = [sp for sp in out["splits"] if sp["spec"] == spec and field in sp["rows"].get(key, {})]
    if not splits:
        return NA
    vals = [sp["rows"][key][field] for sp in splits]
    n_all = sum(sp["spec"] == spec for sp in out["splits"])
    if spec == "fsdd" and len(vals) < n_all:
        return f"{100 * statistics.fmean(vals):.1f}% ({', '.join(sp['holdout'] for sp in splits)} only)"
    if spec == "fsdd":
        return f"{100 * statistics.fmean(vals):.1f}% (min {100 * min(vals):.1f}%)"
    return f"{100 * vals[0]:.1f}%"


def _first(out: dict, key: str, path: str, fmt="{:,}"):
    for r in _rows(out, key):
        v = r
        for p in path.split("."):
            v = v.get(p) if isinstance(v, dict) else None
        if v is not None:
            return fmt.format(v)
    return NA


def _median(out: dict, key: str, field: str) -> str:
    v = [r[field] for r in _rows(out, key, "fsdd") if field in r]
    return f"{statistics.median(v):,.0f}" if v else NA


def _fsdd_names(out: dict) -> str:
    names = [s["holdout"] for s in out["splits"] if s["spec"] == "fsdd"]
    return f"{len(names)} held-out speakers ({', '.join(names)})" if names else "no FSDD split"


def _latency(out: dict) -> tuple[str, str, str, str]:
    """Median over splits of each contender's median invoke time, and the median per-split ratio."""
    def med(key):
        v = [r["latency"]["median_ns"] for r in _rows(out, key) if "latency" in r]
        return statistics.median(v) if v else None
    ratios_t = [s["rows"]["tflm_int8"]["latency"]["median_ns"] / s["rows"]["pqlr_int8"]["latency"]["median_ns"]
                for s in out["splits"] if "latency" in s["rows"].get("tflm_int8", {}) and "latency" in s["rows"].get("pqlr_int8", {})]
    ratios_b = [s["rows"]["bakenn_int8"]["latency"]["median_ns"] / s["rows"]["pqlr_int8"]["latency"]["median_ns"]
                for s in out["splits"] if "latency" in s["rows"].get("bakenn_int8", {}) and "latency" in s["rows"].get("pqlr_int8", {})]
    f = lambda ns: NA if ns is None else f"{ns / 1e6:.3f} ms"  # noqa: E731
    g = lambda r: NA if not r else f"{statistics.median(r):.2f}x PQLR's"  # noqa: E731
    return f(med("pqlr_int8")), f(med("tflm_int8")), f(med("bakenn_int8")), g(ratios_t) + " / " + g(ratios_b)


def _opt(out: dict) -> str:
    o = out.get("pqlr_int8_rv32_opt")
    if not o:
        return ""
    if "could_not_run" in o:
        return f"; opt kernels could not run: {o['could_not_run']}"
    return (f"; {o['instructions_per_inference']:,} with `--kernels opt` (.text {o['text_bytes']:,} B, "
            f"stack {o['stack_peak_bytes']:,} B, arena {o['arena_peak_bytes']:,} B: out of place)")


def table_int8(out: dict) -> str:
    lp, lt, lb, ratio = _latency(out)
    sc = any(s["spec"] == "speech_commands" for s in out["splits"])
    lines = [
        "| DS-CNN-S int8 | PQLR (PTQ, integer program / generated C) | TFLite int8 (litert-torch) in TFLite Micro | onnxruntime QDQ (quantize_static) | bakenn (its PTQ, generated C) |",
        "|---|---|---|---|---|",
        f"| accuracy, FSDD mean over {_fsdd_names(out)} | {_acc(out, 'pqlr_int8', 'fsdd')} | {_acc(out, 'tflm_int8', 'fsdd')} | {_acc(out, 'ort_int8', 'fsdd')} | {_acc(out, 'bakenn_int8', 'fsdd')} |",
    ]
    lines.append(f"| accuracy, FSDD, onnxruntime's fused int8 CPU kernels (default / reduce_range=True) | | | "
                 f"{_acc(out, 'ort_int8', 'fsdd', 'accuracy_int8_kernels')} / {_acc(out, 'ort_int8', 'fsdd', 'accuracy_reduce_range_int8_kernels')} | |")
    if sc:
        lines.append(f"| accuracy, Speech Commands sample | {_acc(out, 'pqlr_int8', 'speech_commands')} | {_acc(out, 'tflm_int8', 'speech_commands')} | {_acc(out, 'ort_int8', 'speech_commands')} | {_acc(out, 'bakenn_int8', 'speech_commands')} |")
    lines += [
        f"| deployable model file (bytes) | {_first(out, 'pqlr_int8', 'bin_bytes')} (.bin) | {_first(out, 'tflm_int8', 'tflite_bytes')} (.tflite) | {_first(out, 'ort_int8', 'onnx_bytes')} (.onnx) | {_first(out, 'bakenn_int8', 'emitted_constant_bytes')} (emitted constants, in C) |",
        f"| weights + qparams (bytes) | {_first(out, 'pqlr_int8', 'weight_bytes')} | {NA} | {_first(out, 'ort_int8', 'weight_bytes')} | {_first(out, 'bakenn_int8', 'semantic_constant_bytes')} |",
        f"| RAM: activation arena (bytes) | {_first(out, 'pqlr_int8', 'arena_planned_bytes')} planned, {_first(out, 'pqlr_int8', 'arena_measured_host_bytes')} measured (host paint), {_first(out, 'pqlr_int8', 'rv32imac.arena_peak_bytes')} (rv32 paint) | {_first(out, 'tflm_int8', 'arena_min_bytes')} (smallest arena_size that runs, bisected; includes TFLM's own structures) | {NA} | {_first(out, 'bakenn_int8', 'arena_bytes')} planned, {_first(out, 'bakenn_int8', 'rv32imac.arena_peak_bytes')} (rv32 paint) |",
        f"| host latency, median invoke (1 thread) | {lp} | {lt} | {NA} | {lb} |",
        f"| host latency ratio (median of per-split ratios) | 1.00x | {ratio.split(' / ')[0]} | {NA} | {ratio.split(' / ')[1]} |",
        f"| rv32imac .text of the model code (bytes) | {_first(out, 'pqlr_int8', 'rv32imac.text_bytes')} | {NA} | {NA} | {_first(out, 'bakenn_int8', 'rv32imac.text_bytes')} |",
        f"| rv32imac .rodata (weights, bytes) | {_first(out, 'pqlr_int8', 'rv32imac.rodata_bytes')} | {NA} | {NA} | {_first(out, 'bakenn_int8', 'rv32imac.rodata_bytes')} |",
        f"| rv32imac stack peak (bytes) | {_first(out, 'pqlr_int8', 'rv32imac.stack_peak_bytes')} | {NA} | {NA} | {_first(out, 'bakenn_int8', 'rv32imac.stack_peak_bytes')} |",
        f"| rv32imac instructions / inference (QEMU, exact) | {_first(out, 'pqlr_int8', 'rv32imac.instructions_per_inference')} (reference kernels){_opt(out)} | {NA} | {NA} | {_first(out, 'bakenn_int8', 'rv32imac.instructions_per_inference')} |",
    ]
    return "\n".join(lines)


def table_quant(out: dict) -> str:
    sc = any(s["spec"] == "speech_commands" for s in out["splits"])
    head = "| contender | FSDD mean accuracy | " + ("Speech Commands accuracy | " if sc else "") + "weight bytes |"
    lines = [head, "|---|---|" + ("---|" if sc else "") + "---|"]
    for key, label in (("float", None), ("pqlr_int8", "PQLR INT8 PTQ (integer program)"),
                       ("ort_int8", "onnxruntime quantize_static INT8 QDQ per-channel (Q/DQ run in float)"),
                       ("pqlr_int4_qat", "PQLR INT4 W+A, LSQ+ QAT (integer program)"),
                       ("brevitas_int4_qat", "brevitas INT4 W+A QAT (fake-quant)")):
        if key == "float":
            accs = [s["float"]["accuracy"] for s in out["splits"] if s["spec"] == "fsdd"]
            scs = [s["float"]["accuracy"] for s in out["splits"] if s["spec"] == "speech_commands"]
            fa = f"{100 * statistics.fmean(accs):.1f}% (min {100 * min(accs):.1f}%)" if accs else NA
            lines.append(f"| float DS-CNN-S (shared start) | {fa} | " + (f"{100 * scs[0]:.1f}% | " if scs else "")
                         + f"{4 * out['splits'][0]['float']['params']:,} (fp32) |")
            continue
        fail = _failed(out, key) if not _rows(out, key) else None
        wb = _first(out, key, "weight_bytes")
        lines.append(f"| {label} | {_acc(out, key, 'fsdd') if not fail else 'could not run: ' + fail} | "
                     + (f"{_acc(out, key, 'speech_commands')} | " if sc else "") + f"{wb} |")
    return "\n".join(lines)


def table_prune(out: dict) -> str:
    sps = sorted({k.rsplit("_", 1)[1] for s in out["splits"] for k in s["rows"] if k.startswith("pqlr_prune_")})
    first = next((sp["holdout"] for sp in out["splits"] if sp["spec"] == "fsdd"), "")
    lines = [f"| channels removed | tool | FSDD mean accuracy after fine-tune | params (median) | MACs (median) | channels per layer ({first}) | int8 weight bytes (PQLR PTQ, median) |",
             "|---|---|---|---|---|---|---|"]
    for sp in sps:
        for key, label in ((f"pqlr_prune_{sp}", "PQLR (BN-gamma ranking, global, 10% floor)"),
                           (f"tp_prune_{sp}", "torch-pruning (group L2 magnitude, uniform)")):
            if not _rows(out, key):
                lines.append(f"| {float(sp):.0%} | {label} | could not run: {_failed(out, key)} | | | | |")
                continue
            lines.append(f"| {float(sp):.0%} | {label} | {_acc(out, key, 'fsdd')} | {_median(out, key, 'params')} | "
                         f"{_median(out, key, 'macs')} | {_first(out, key, 'channels', '{}')} | {_median(out, key, 'weight_bytes_int8')} |")
    return "\n".join(lines)


def table_flagship(out: dict) -> str:
    f = out.get("flagship")
    if not f:
        return "(flagship not run)"
    if "could_not_run" in f:
        return f"flagship could not run: {f['could_not_run']}"
    o, p, t = f["ort_int8_teacher"], f["pqlr"], f["teacher"]
    kern = "" if "could_not_run" in o else (f" ({100 * o['accuracy_int8_kernels']:.1f}% on onnxruntime's int8 CPU kernels, "
                                             f"{100 * o['accuracy_reduce_range_int8_kernels']:.1f}% with reduce_range)")
    ort_acc = NA if "could_not_run" in o else f"{100 * o['accuracy']:.1f}%"
    ort_w = NA if "could_not_run" in o else f"{o['weight_bytes']:,}"
    lines = ["| kws_chinese, same test split | accuracy | weight bytes | ratio to the fp32 teacher |", "|---|---|---|---|",
             f"| teacher {t['name']} fp32 | {100 * t['accuracy']:.1f}% | {t['weight_bytes_fp32']:,} | 1x |",
             f"| onnxruntime INT8 PTQ of the teacher (QDQ, per-channel; Q/DQ run in float) | {ort_acc}{kern} | {ort_w} | "
             + (NA if "could_not_run" in o else f"{t['weight_bytes_fp32'] / o['weight_bytes']:.1f}x smaller") + " |",
             f"| PQLR verbatim command (prune 0.7, INT4, rank 16, distilled student) | {100 * p['accuracy']:.1f}% | "
             f"{p['weight_bytes']:,} | {t['weight_bytes_fp32'] / p['weight_bytes']:.1f}x smaller |"]
    if "could_not_run" in o:
        lines.append(f"\nonnxruntime could not run: {o['could_not_run']}")
    return "\n".join(lines)


def markdown(out: dict) -> str:
    v = out["versions"]
    src = out.get("pqlr_source", {})
    head = (f"Run {out['date']} on {out['machine']['cpu']} ({out['machine']['cores']} cores, torch threads "
            f"{out['machine']['torch_threads']}); `{out['command']}`; settings {json.dumps(out['settings'])}; "
            f"versions: " + ", ".join(f"{k} {v[k]}" for k in sorted(v) if v[k])
            + (f"; PQLR at {src['commit'][:10]}{' (src/ with local changes)' if src.get('src_modified') else ''}" if src.get("commit") else ""))
    return "\n\n".join([head, "### int8 DS-CNN-S, deployed", table_int8(out), "### Quantization quality",
                        table_quant(out), "### Channel pruning", table_prune(out), "### The article's flagship",
                        table_flagship(out)])


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "results" / "peers.json")
    print(markdown(json.loads(path.read_text())))
