"""Benchmark: retired instructions per MAC of the reference vs the optimized ("opt") C kernels on
RV32IMAC (QEMU, exact rdinstret counts), per layer type and for the whole DS-CNN-S, W8A8 and W4A8.

The model is the zoo DS-CNN-S (12 classes, seed 0), PTQ-calibrated (min/max on 24 random inputs,
seed 0) and lowered to the integer IR; every build runs through pqlr.deploy.verify.verify_graph
(generated C, bit-exact check against the oracle included). Three builds:
  ref        reference kernels, default arena plan (pointwise / depthwise layers run in place with
             the in-place reference kernels, which have no optimized variant yet)
  ref-noip   reference kernels, convolutions not in place (same plan as opt: kernel against kernel)
  opt        optimized kernels (pqlr.ir.ops_select "opt"), convolutions not in place: the
             speed-first build, which costs the arena bytes printed below
Not part of the test suite. Example:

    .venv/bin/python bench/kernels_rv32.py --samples 2 --json bench/results/kernels_rv32.json
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from contextlib import contextmanager

import numpy as np
import torch

from pqlr.deploy.inputs import input_int8
from pqlr.compress.quantize import QuantConfig, quantize_
from pqlr.deploy.verify import verify_graph
from pqlr.io import write_json
from pqlr.deploy import plan
from pqlr.compress.lower import lower
from pqlr.ir.ops_select import use_variant
from pqlr.models import build_model


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="ds-cnn-s")
    ap.add_argument("--wbits", type=int, nargs="+", default=[8, 4], help="weight widths (activations int8)")
    ap.add_argument("--samples", type=int, default=2, help="inputs per run (counts are the median)")
    ap.add_argument("--target", default="rv32imac")
    ap.add_argument("--json", help="write the measurements here")
    return ap.parse_args(argv)


def lowered(model: str, wbits: int, n: int):
    """(integer graph, n quantized random inputs) of the PTQ-calibrated zoo model."""
    torch.manual_seed(0)
    x = torch.randn(24, 1, 49, 10)
    qm = quantize_(build_model(model, 12, seed=0).eval(),
                   QuantConfig(wbits=wbits, abits=8, method="ptq", init="minmax"), calib=[x],
                   input_shape=(1, 49, 10))
    g = lower(quantize_(qm, None, step="convert"))
    return g, input_int8(g, x[:n])


@contextmanager
def convs_in_place(allowed: bool):
    """Arena plans made inside may (or may not) run convolutions in place: the planner reads
    IN_PLACE_KERNELS (ops_nn's table, as deploy.plan imported it) when it plans (an empty table =
    no in-place convolution)."""
    saved = plan.IN_PLACE_KERNELS
    if not allowed:
        plan.IN_PLACE_KERNELS = {}
    try:
        yield
    finally:
        plan.IN_PLACE_KERNELS = saved


BUILDS = {"ref": ("reference", True), "ref-noip": ("reference", False), "opt": ("opt", False)}


def measure(graph, x, target: str) -> dict:
    out = {}
    for build, (variant, in_place) in BUILDS.items():
        with use_variant(variant), convs_in_place(in_place):
            r = verify_graph(graph, None, x, target)
        if r["mismatches"]:
            raise SystemExit(f"{build}: {r['mismatches']} samples differ from the oracle")
        kinds = defaultdict(lambda: [0, 0])
        for node, layer in zip(graph.nodes, r["layers"]):
            kind = layer["op"]
            if kind == "conv2d":
                kind = f"conv2d {node.attrs['kernel'][0]}x{node.attrs['kernel'][1]}"
            kinds[kind][0] += layer["macs"]
            kinds[kind][1] += layer["instructions"]
        out[build] = {"total_instructions": r["instructions_per_inference"], "macs": r["macs"],
                      "instructions_per_mac": r["instructions_per_mac"], "text_bytes": r["text_bytes"],
                      "stack_peak_bytes": r["stack_peak_bytes"], "arena_plan_bytes": r["arena_plan_bytes"],
                      "kinds": {k: {"macs": m, "instructions": i} for k, (m, i) in kinds.items()}}
    return out


def table(name: str, m: dict) -> str:
    rows = [f"{name}: retired instructions per MAC",
            f"  {'layer type':<18} {'MACs':>10} " + " ".join(f"{b:>9}" for b in BUILDS) + "   ref/opt"]
    for kind, r in m["ref"]["kinds"].items():
        if not r["macs"]:                        # data movement (the flatten before the classifier)
            ins = [m[b]["kinds"][kind]["instructions"] for b in BUILDS]
            rows.append(f"  {kind:<18} {'-':>10} " + " ".join(f"{v:>9,}" for v in ins) + "   (instructions)")
            continue
        per = [m[b]["kinds"][kind]["instructions"] / r["macs"] for b in BUILDS]
        rows.append(f"  {kind:<18} {r['macs']:>10,} " + " ".join(f"{v:>9.2f}" for v in per)
                    + f" {per[0] / per[-1]:>9.2f}")
    per = [m[b]["instructions_per_mac"] for b in BUILDS]
    rows.append(f"  {'whole network':<18} {m['ref']['macs']:>10,} " + " ".join(f"{v:>9.2f}" for v in per)
                + f" {per[0] / per[-1]:>9.2f}")
    for key, label in (("total_instructions", "instructions/inference"), ("arena_plan_bytes", "arena bytes"),
                       ("text_bytes", "code bytes"), ("stack_peak_bytes", "stack bytes")):
        rows.append(f"  {label:<29} " + " ".join(f"{m[b][key]:>9,}" for b in BUILDS))
    return "\n".join(rows)


def main(argv=None) -> int:
    args = parse_args(argv)
    results = {}
    for wbits in args.wbits:
        g, x = lowered(args.model, wbits, args.samples)
        name = f"{args.model} W{wbits}A8 on {args.target}"
        results[name] = measure(g, x, args.target)
        print(table(name, results[name]), flush=True)
    if args.json:
        write_json(args.json, {"model": args.model, "target": args.target, "samples": args.samples,
                               "numpy": np.__version__, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
