"""`pqlr-compress` (also `pqlr compress`): the article's one-shot command, all four PQLR stages.

    pqlr-compress --model tinybert --dataset kws_chinese --sparse 0.7 --wbits 4 --rank 16 \\
        --teacher tinybert-6l --output micro_kws.bin
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import replace

from ..compress.lowrank import LowRankConfig
from ..errors import PqlrError
from ..io import parse_bytes, write_json
from ..pipeline import PipelineConfig, run_pipeline
from ..pipeline.budget import BudgetConfig
from ..pipeline.recipe import load_recipe
from .info import parse_shape

EPILOG = """examples:
  pqlr-compress --model tinybert --dataset kws_chinese --sparse 0.7 --wbits 4 --rank 16 \\
      --teacher tinybert-6l --output micro_kws.bin
  pqlr-compress --model ds-cnn-s --dataset fsdd:../shared/data/fsdd/recordings --holdout-speaker theo \\
      --sparse 0.5 --wbits 8 --abits 8 --quant-method ptq --output runs/dscnn.bin --ram 12KB
  pqlr-compress --model examples/models/resnet8.py:ResNet8 --teacher examples/models/resnet8.py:ResNet8Wide \\
      --dataset npz:digits_32.npz --sparse 0.3 --wbits 8 --output runs/resnet8.bin
  pqlr-compress --model examples/models/fc_autoencoder.py:FCAutoencoder --task anomaly \\
      --dataset npz:anomaly.npz --sparse 0.3 --wbits 8 --output runs/ae.bin
  pqlr-compress --model ds-cnn-s --dataset kws_english --sparse 0.5 --wbits 8 --abits 8 \
      --max-drop 1 --force pruned --output runs/kws_en.bin   # each stage may lose 1 point; the cut stays
  pqlr-compress --recipe my_run.yaml --resume     # the same keys as these flags, in YAML

Every compressing stage is measured against its input on the validation split: one that loses more
than --max-drop points backs off by measurement, and report.md lists each setting tried.

Any nn.Module is captured with torch.fx (file.py:Class, called as Class(n_classes=N, input_shape=S)
with S one sample's shape); the supported operations are listed in docs/ops.md. An unsupported op
fails before training, naming the node and your line of code.

writes OUTPUT.bin and a folder OUTPUT/ (C sources, FreeRTOS task, report.json, report.md)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what to compress")
    g.add_argument("--model", help="zoo name (tinybert, microbert-2l, microbert-fast, ds-cnn-s, ...), "
                   "a .safetensors checkpoint, or your own file.py:Class (default: tinybert)")
    g.add_argument("--dataset", help="kws_chinese, kws_english, fsdd:PATH, speech_commands:PATH (audio, MFCC "
                   "features), npz:FILE (arrays x, y [, x_val, y_val, x_test, y_test]), images:DIR (a folder "
                   "per class) (default: kws_chinese)")
    g.add_argument("--input-shape", help="one sample's shape, e.g. 3x96x96: images: are resized to it, npz: "
                   "samples must have it (default: the data's; images: 3x32x32)")
    g.add_argument("--task", choices=["classify", "anomaly"],
                   help="classify (accuracy) or anomaly (an autoencoder, scored by ROC AUC; distillation "
                        "matches the teacher's outputs); default: the dataset's")
    g.add_argument("--words", help="comma-separated keywords for speech_commands (others become _unknown_)")
    g.add_argument("--holdout-speaker", help="FSDD: test on this speaker only (speaker-disjoint split)")
    g = p.add_argument_group("prune (network slimming)")
    g.add_argument("--sparse", type=float, help="fraction of channels / heads / FFN neurons to remove (article: 0.7)")
    g.add_argument("--prune-method", choices=["structured", "magnitude", "2:4"])
    g.add_argument("--prune-importance", choices=["auto", "bn", "l2"],
                   help="how units are ranked: BatchNorm gammas (network slimming), the group's weight L2 "
                        "norm, or auto (gammas where a group has BatchNorms, else L2); see `pqlr prune --explain`")
    g.add_argument("--prune-epochs", type=int, help="fine-tuning epochs after the cut (article: 5)")
    g = p.add_argument_group("quantize (LSQ+)")
    g.add_argument("--wbits", type=int, help="weight bits: 8, 4, 2 or 1 (binary)")
    g.add_argument("--abits", type=int, help="activation bits: 8, 4 or 16")
    g.add_argument("--calib", type=int, help="calibration samples (article: 200)")
    g.add_argument("--quant-method", choices=["lsq+", "ptq"], help="lsq+ (QAT) or ptq (calibration only)")
    g.add_argument("--quant-init", choices=["mse", "minmax", "percentile"],
                   help="how step sizes start from the calibration set (default mse: min-max wastes 4-bit range on outliers)")
    g.add_argument("--qat-epochs", type=int)
    g.add_argument("--flash", help="weight-bytes budget, e.g. 64KB: picks per-layer bits (mixed precision)")
    g = p.add_argument_group("low-rank")
    g.add_argument("--rank", type=int, help="SVD rank of Linear / 1x1 conv layers (article: 16)")
    g.add_argument("--lowrank-energy", type=float, help="instead of --rank: keep this fraction of sigma^2")
    g.add_argument("--lowrank-epochs", type=int)
    g = p.add_argument_group("distill")
    g.add_argument("--teacher", help="zoo name or file.py:Class (trained on the same data and cached), or a "
                   ".safetensors checkpoint")
    g.add_argument("--temperature", type=float, help="softmax temperature T (article: 6)")
    g.add_argument("--alpha", type=float, help="weight of the soft-target loss (article: 0.7)")
    g.add_argument("--distill-epochs", type=int)
    g.add_argument("--teacher-epochs", type=int)
    g = p.add_argument_group("accuracy budget")
    g.add_argument("--max-drop", type=_points, metavar="POINTS|off",
                   help="validation points each stage may lose against its input (default 0.5); a stage that "
                        "loses more backs off by measurement (less sparsity, PTQ or more QAT, 8-bit sensitive "
                        "layers, longer fine-tunes, a layer left whole, a higher rank or none, no distillation) and the report lists what it tried; "
                        "off: keep every setting as asked")
    g.add_argument("--force", metavar="STAGE[,STAGE]",
                   help="stages that keep the setting asked for whatever it costs (pruned, quantized, low-rank, "
                        "distilled); the report says how many points it cost")
    g = p.add_argument_group("deploy")
    g.add_argument("--output", help="model file to write (default micro_kws.bin); C goes to a folder beside it")
    g.add_argument("--ram", help="RAM budget (e.g. 35KB): weights are streamed from flash in tiles to fit")
    g.add_argument("--tiles", type=int, help="force this many weight tiles")
    g.add_argument("--target", help="hardware profile for the cost estimate (e.g. esp32-c6)")
    g = p.add_argument_group("run")
    g.add_argument("--epochs", type=int, help="float training epochs of the student")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="peak learning rate of the float training (default 3e-3)")
    g.add_argument("--finetune-lr", type=float,
                   help="peak learning rate of the prune/QAT/low-rank/distill fine-tuning (default: lr / 3)")
    g.add_argument("--no-augment", action="store_true", help="train without waveform augmentation (faster)")
    g.add_argument("--per-class", type=int, help="at most this many clips per class (quick runs)")
    g.add_argument("--recipe", help="YAML recipe (same keys as these flags); flags override it")
    g.add_argument("--seed", type=int)
    g.add_argument("--resume", action="store_true", help="continue after the last finished stage")
    g.add_argument("--json", help="also write the report JSON here")
    g.add_argument("--device", help="cpu (default) or cuda")
    g.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice; use 1 on a busy machine)")
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def _points(text: str):
    if text.strip().lower() in ("off", "none"):
        return "off"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--max-drop {text!r}: give points (e.g. 0.5) or off") from None


def config_from_args(args):
    top = {k: getattr(args, k) for k in ("model", "dataset", "holdout_speaker", "teacher", "task", "epochs",
                                        "teacher_epochs",
                                        "prune_epochs", "qat_epochs", "lowrank_epochs", "distill_epochs",
                                        "batch_size", "lr", "finetune_lr", "tiles", "target", "seed", "device", "output")}
    top = {k: v for k, v in top.items() if v is not None}
    if args.words:
        top["words"] = tuple(w.strip() for w in args.words.split(",") if w.strip())
    if args.input_shape is not None:
        top["input_shape"] = parse_shape(args.input_shape)
    if args.ram is not None:
        top["ram"] = parse_bytes(args.ram)
    if args.flash is not None:
        top["flash"] = parse_bytes(args.flash)
    if args.quiet:
        top["progress"] = False
    if args.no_augment:
        top["augment"] = False
    if args.per_class is not None:
        top["per_class"] = args.per_class
    base = load_recipe(args.recipe) if args.recipe else PipelineConfig()
    sections = {
        "prune": {"sparse": args.sparse, "method": args.prune_method, "importance": args.prune_importance},
        "quant": {"wbits": args.wbits, "abits": args.abits, "calib": args.calib, "method": args.quant_method,
                  "init": args.quant_init},
        "distill": {"temperature": args.temperature, "alpha": args.alpha},
    }
    for name, values in sections.items():
        values = {k: v for k, v in values.items() if v is not None}
        if values:
            top[name] = replace(getattr(base, name), **values)
    if args.max_drop is not None or args.force is not None:
        values = {}
        if args.max_drop is not None:
            values["max_drop"] = None if args.max_drop == "off" else args.max_drop
        if args.force is not None:
            values["force"] = tuple(s.strip() for s in args.force.split(",") if s.strip())
        top["budget"] = BudgetConfig(**{**dataclasses.asdict(base.budget), **values})
    if args.rank is not None or args.lowrank_energy is not None:
        top["lowrank"] = LowRankConfig(rank=args.rank if args.lowrank_energy is None else None,
                                       energy=args.lowrank_energy)
    return replace(base, **top)


def run(args) -> int:
    cfg = config_from_args(args)
    if args.threads is not None:
        if args.threads < 1:
            raise PqlrError(f"--threads must be >= 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    report = run_pipeline(cfg, resume=args.resume, log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        write_json(args.json, report)
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("compress", help="prune, quantize, low-rank and distill a model, then emit C",
                       description=__doc__, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    from . import Parser, run_guarded

    p = Parser(prog="pqlr-compress", description=__doc__, epilog=EPILOG,
               formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    return run_guarded(run, args)


if __name__ == "__main__":
    sys.exit(main())
