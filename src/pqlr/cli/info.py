"""`pqlr info`: parameters, MACs and output shape per layer of a model, as a table and as JSON."""
from __future__ import annotations

import re

from ..errors import PqlrError


def input_shape(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not m or min(int(m.group(1)), int(m.group(2))) < 1:
        raise PqlrError(f"--input-shape {text!r}: give FRAMESxFEATURES, e.g. 49x10")
    return int(m.group(1)), int(m.group(2))


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="parameters and MACs per layer of a model",
                       description="Count parameters, MACs (per inference) and output shapes layer by layer.")
    p.add_argument("--model", required=True, metavar="NAME|CKPT|FILE.py:CLASS")
    p.add_argument("--classes", type=int, default=12, help="output classes for zoo/user models (default 12)")
    p.add_argument("--input-shape", default="49x10", help="FRAMESxFEATURES for zoo/user models (default 49x10)")
    p.add_argument("--json", default=None, metavar="FILE", help="write {params, macs, layers} here")
    p.set_defaults(func=run)


def table(stats: dict) -> str:
    rows = [(l["name"], l["type"], f"{l['params']:,}", f"{l['macs']:,}",
             "x".join(str(s) for s in l["output_shape"]) if l["output_shape"] else "-") for l in stats["layers"]]
    rows.append(("total", "", f"{stats['params']:,}", f"{stats['macs']:,}", ""))
    head = ("layer", "type", "params", "MACs", "output")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(5)]
    fmt = lambda r: "  ".join(c.ljust(w) if i < 2 or i == 4 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    line = "-" * len(fmt(head))
    return "\n".join([fmt(head), line, *map(fmt, rows[:-1]), line, fmt(rows[-1])])


def run(args) -> int:
    from ..io import write_json
    from ..models import model_stats, resolve_model

    if args.classes < 2:
        raise PqlrError(f"--classes must be >= 2, got {args.classes}")
    shape = input_shape(args.input_shape)
    if args.model.endswith(".safetensors"):
        from .train import load_checkpoint_model
        model = load_checkpoint_model(args.model)[0]
    else:
        model = resolve_model(args.model, args.classes, shape, seed=0)
    shape = tuple(getattr(getattr(model, "config", None), "input_shape", shape))
    stats = model_stats(model, (1, *shape))
    print(table(stats))
    if args.json:
        write_json(args.json, {"model": args.model, "input_shape": list(shape), **stats})
    return 0
