"""`pqlr info`: parameters, MACs and output shape per node of any model (captured with torch.fx),
as a table and as JSON. A model that does not capture (a layer PQLR cannot deploy yet) is still
counted, module by module, with a line saying why it would not deploy."""
from __future__ import annotations

import re

from ..capture import capture
from ..capture.stats import graph_stats, module_stats
from ..errors import PqlrError, UnsupportedError
from ..io import write_json
from ..models import resolve_model, sample_shape


def parse_shape(text: str) -> tuple[int, ...]:
    """"1x49x10", "3x32x32", "640" -> a sample shape (no batch)."""
    parts = re.split(r"\s*[xX,]\s*", text.strip())
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise PqlrError(f"--input-shape {text!r}: give one sample's shape, e.g. 1x49x10, 3x32x32 or 640")
    return tuple(int(p) for p in parts)


def add_parser(sub) -> None:
    p = sub.add_parser("info", help="parameters and MACs per layer of any model",
                       description="Capture a model (torch.fx) and count parameters, MACs (per inference, "
                                   "conv/linear/matmul multiply-accumulates), element operations (BatchNorm, "
                                   "activations, adds, pooling) and output shapes node by node. A model that does not "
                                   "capture (a GRU, an attention module) is counted module by module, with the "
                                   "reason it would not deploy.",
                       epilog="examples:\n  pqlr info --model ds-cnn-s\n"
                              "  pqlr info --model examples/models/resnet8.py:ResNet8 --input-shape 3x32x32 --classes 10\n"
                              "  pqlr info --model runs/model.safetensors --json info.json")
    p.add_argument("--model", required=True, metavar="NAME|CKPT|FILE.py:CLASS")
    p.add_argument("--classes", type=int, default=12, help="output classes for zoo/user models (default 12)")
    p.add_argument("--input-shape", default="1x49x10",
                   help="one sample's shape, e.g. 1x49x10 (MFCC frames x coefficients, the default) or 3x32x32")
    p.add_argument("--json", default=None, metavar="FILE", help="write {params, macs, layers} here")
    p.set_defaults(func=run)


def table(stats: dict) -> str:
    rows = [(l["name"], l["type"], f"{l['params']:,}", f"{l['macs']:,}", f"{l['element_ops']:,}",
             "x".join(str(s) for s in l["output_shape"]) or "scalar") for l in stats["layers"]]
    rows.append(("total", "", f"{stats['params']:,}", f"{stats['macs']:,}", f"{stats['element_ops']:,}", ""))
    head = ("node", "type", "params", "MACs", "elem ops", "output")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(6)]
    fmt = lambda r: "  ".join(c.ljust(w) if i < 2 or i == 5 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    line = "-" * len(fmt(head))
    return "\n".join([fmt(head), line, *map(fmt, rows[:-1]), line, fmt(rows[-1])])


def _model(args):
    """(model, sample shape) of --model / --classes / --input-shape (a checkpoint keeps its own)."""
    if args.classes < 2:
        raise PqlrError(f"--classes must be >= 2, got {args.classes}")
    shape = parse_shape(args.input_shape)
    model = resolve_model(args.model, args.classes, shape, seed=0)
    shape = sample_shape(model, shape) if args.model.endswith(".safetensors") else shape
    return model, shape


def captured_model(args):
    """(captured model, sample shape) of --model / --classes / --input-shape."""
    model, shape = _model(args)
    return capture(model, shape), shape


def run(args) -> int:
    model, shape = _model(args)
    try:
        stats, why = graph_stats(capture(model, shape)), None
    except UnsupportedError as e:
        stats, why = module_stats(model, shape), str(e)
    print(table(stats))
    if why:
        print(f"\nnot deployable as it is: {why}\n(counted module by module instead: calls in forward() "
              "other than modules, e.g. torch.matmul, are not counted)")
    if args.json:
        write_json(args.json, {"model": args.model, "input_shape": list(shape), "deployable": why is None,
                               "why_not": why, **stats})
    return 0
