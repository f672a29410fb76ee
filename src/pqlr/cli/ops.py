"""`pqlr ops`: the PyTorch operations PQLR captures and deploys (docs/ops.md is this, as Markdown)."""
from __future__ import annotations

from ..capture.optable import OPS, markdown


def add_parser(sub) -> None:
    p = sub.add_parser("ops", help="list the supported PyTorch operations",
                       description="The canonical ops capture produces, the PyTorch modules, functions and "
                                   "tensor methods that map to each, and what each becomes on the target.")
    p.add_argument("--markdown", action="store_true", help="print docs/ops.md (the full table)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.markdown:
        print(markdown(), end="")
        return 0
    for name, info in OPS.items():
        print(f"{name:18s} {info.doc}")
    print("\nfull table: pqlr ops --markdown (docs/ops.md)")
    return 0
