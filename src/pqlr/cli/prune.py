"""`pqlr prune`: show how a model's channels are coupled and what a structured cut removes.

    pqlr prune --model ds-cnn-s --explain
    pqlr prune --model examples/models/resnet8.py:ResNet8 --input-shape 3x32x32 --classes 10 --sparse 0.5

Every group is printed with the layers whose weight rows produce its units and the layers whose
columns read them (and the BatchNorms, activations and reshapes in between); with --sparse, the cut
each group gets (units kept / total, by the chosen importance) and the parameters and MACs before
and after. --output saves the pruned model as a checkpoint (no code: a graph spec + weights)."""
from __future__ import annotations

import argparse

from ..capture.stats import graph_stats
from ..compress import prune
from ..compress.groups import explain, find_groups
from ..errors import PqlrError
from ..models import save_model
from .info import captured_model


def add_parser(sub) -> None:
    p = sub.add_parser("prune", help="show a model's coupled channel groups and what a cut removes",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, metavar="NAME|CKPT|FILE.py:CLASS")
    p.add_argument("--classes", type=int, default=12, help="output classes for zoo/user models (default 12)")
    p.add_argument("--input-shape", default="1x49x10", help="one sample's shape (default 1x49x10)")
    p.add_argument("--explain", action="store_true", help="print every group and the layers a cut touches")
    p.add_argument("--sparse", type=float, default=None, help="cut this fraction of units and report it")
    p.add_argument("--importance", choices=prune.IMPORTANCE, default="auto",
                   help="auto (BatchNorm gammas where a group has them, else L2), bn or l2")
    p.add_argument("--output", default=None, metavar="CKPT.safetensors", help="save the pruned model here")
    p.set_defaults(func=run)


def run(args) -> int:
    gm, _ = captured_model(args)
    groups = find_groups(gm)
    if not groups:
        print(f"{args.model}: no prunable channel group (every channel reaches the input/output or a "
              "dimension that cannot shrink)")
    elif args.explain or args.sparse is None:
        print(explain(gm, groups))
    if args.sparse is not None:
        before = graph_stats(gm)
        gm, summary = prune.apply(gm, prune.PruneConfig(sparse=args.sparse, importance=args.importance))
        after = graph_stats(gm)
        for name, (n, kept) in summary.get("groups", {}).items():
            print(f"cut {name}: keep {kept} of {n}")
        print(f"parameters {before['params']:,} -> {after['params']:,}; MACs {before['macs']:,} -> {after['macs']:,}")
        if args.output:
            save_model(args.output, gm, {"pruned_from": args.model, "sparse": args.sparse})
            print(f"saved {args.output}")
    elif args.output:
        raise PqlrError("--output needs --sparse (nothing was cut)")
    return 0
