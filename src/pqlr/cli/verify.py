"""`pqlr verify MODEL.bin --target host|rv32imac|cortex-m4 --dataset SPEC [--split test] [--limit N]
[--json FILE]`: build the generated C for the model file, run it on the target (QEMU for the
microcontroller ISAs) on the first N clips of a dataset split and compare every output byte with the
NumPy integer oracle; report accuracy, instructions per inference, sizes and peak RAM.

Exit status: 0 the check passed, 1 it failed (an output byte differs or soft-float routines are
linked in), 2 bad input (missing/corrupt model file, unknown target, classes that differ, ...)."""
from __future__ import annotations

import argparse

from ..deploy.verify import summary, verify
from ..errors import PqlrError
from ..io import write_json
from ..pipeline.checkpoint import fakequant_accuracy
from .train import add_data_args, words_list

TARGET_NAMES = ("host", "rv32imac", "cortex-m4")     # = pqlr.hw.emulate.TARGETS (checked again there)


def add_parser(sub) -> None:
    p = sub.add_parser("verify", help="run the generated C on a target and check it bit for bit against the oracle",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", help="model file written by pqlr (.bin)")
    p.add_argument("--target", required=True, metavar="|".join(TARGET_NAMES),
                   help="host (gcc), rv32imac (ESP32-C6 ISA in QEMU) or cortex-m4 (QEMU mps2-an386)")
    add_data_args(p)
    p.add_argument("--split", choices=("test", "val", "train"), default="test")
    p.add_argument("--limit", type=int, default=200, metavar="N", help="first N clips of the split (default 200)")
    p.add_argument("--fakequant", default=None, metavar="CKPT",
                   help="fake-quant stage checkpoint (.safetensors) for accuracy_fakequant on the same clips")
    p.add_argument("--sanitize", action="store_true", help="host: build with ASan + UBSan")
    p.add_argument("--kernels", choices=("reference", "opt"), default="reference",
                   help="C kernels: plain reference, or the faster bit-exact variants (more arena: no in-place layers)")
    p.add_argument("--timeout", type=float, default=600, metavar="S", help="emulator time limit (default 600 s)")
    p.add_argument("--json", default=None, metavar="FILE", help="write the full report here")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.target not in TARGET_NAMES:
        raise PqlrError(f"unknown target {args.target!r}; choose one of {', '.join(TARGET_NAMES)}")
    if args.limit < 1:
        raise PqlrError(f"--limit must be >= 1, got {args.limit}")
    report = verify(args.model, args.target, dataset=args.dataset, split=args.split, limit=args.limit,
                    holdout_speaker=args.holdout_speaker, words=words_list(args.words) if args.words else None,
                    per_class=args.per_class, data_seed=args.data_seed, cache_dir=args.cache_dir,
                    fakequant=_fakequant(args.fakequant), fakequant_source=args.fakequant,
                    sanitize=args.sanitize, timeout_s=args.timeout,
                    kernels=args.kernels)
    if args.json:
        write_json(args.json, report)
    print(summary(report))
    return 0 if report["mismatches"] == 0 and not report["soft_float_symbols"] else 1


def _fakequant(ckpt: str | None):
    """The accuracy of a fake-quant stage checkpoint on the samples verify runs (None: none given)."""
    if ckpt is None:
        return None
    return lambda feats, labels: fakequant_accuracy(ckpt, feats, labels)
