"""Benchmark: float DS-CNN-S on FSDD, leave-one-speaker-out (train on 5 speakers, test on the 6th).

Reports test accuracy per held-out speaker, their mean and minimum, and wall time per epoch.
Not part of the test suite (a full run is 6 trainings). Example:

    .venv/bin/python bench/train_fsdd.py --data ../shared/data/fsdd/recordings --epochs 30 \
        --json bench/results/train_fsdd.json

The same training as `pqlr train --model ds-cnn-s --dataset fsdd:PATH --holdout-speaker NAME --epochs 30`.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch

from pqlr.data import AugmentConfig, FeatureConfig, load_dataset
from pqlr.io import read_json, write_json
from pqlr.models import build_model
from pqlr.train import TrainConfig, evaluate, train

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def parse_args(argv=None):
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="../shared/data/fsdd/recordings", help="FSDD recordings folder")
    p.add_argument("--model", default="ds-cnn-s")
    p.add_argument("--speakers", default=",".join(SPEAKERS), help="comma-separated held-out speakers")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--mixup", type=float, default=d.mixup, help="mixup Beta parameter (0 = off)")
    p.add_argument("--ema-decay", type=float, default=d.ema_decay, help="weight averaging decay (0 = off)")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--aug-speed", default=None, metavar="LO,HI", help="speed-perturbation range (default: AugmentConfig's)")
    p.add_argument("--aug-vtlp", default=None, metavar="LO,HI", help="VTLP warp-factor range, e.g. 0.9,1.1")
    p.add_argument("--freq-masks", type=int, default=None, help="SpecAugment mel-band masks per clip")
    p.add_argument("--freq-mask-width", type=int, default=None)
    p.add_argument("--time-masks", type=int, default=None, help="SpecAugment frame masks per clip")
    p.add_argument("--time-mask-width", type=int, default=None)
    p.add_argument("--eq-prob", type=float, default=None, help="share of clips given a random channel response")
    p.add_argument("--eq-band-db", type=float, default=None)
    p.add_argument("--eq-tilt-db", type=float, default=None)
    p.add_argument("--noise-dir", default=None, help="background-noise recordings (default: generated noise)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--reuse", default=None, metavar="JSON",
                   help="take the rows of speakers already in this earlier result (same settings required)")
    return p.parse_args(argv)


def augment_config(args) -> AugmentConfig:
    """AugmentConfig's defaults, overridden by the flags that were given."""
    pair = lambda text: tuple(float(v) for v in text.split(","))     # noqa: E731
    over = {"speed": pair(args.aug_speed) if args.aug_speed else None,
            "vtlp": pair(args.aug_vtlp) if args.aug_vtlp else None, "noise_dir": args.noise_dir,
            "freq_masks": args.freq_masks, "freq_mask_width": args.freq_mask_width,
            "time_masks": args.time_masks, "time_mask_width": args.time_mask_width, "eq_prob": args.eq_prob,
            "eq_band_db": args.eq_band_db, "eq_tilt_db": args.eq_tilt_db}
    return AugmentConfig(**{k: v for k, v in over.items() if v is not None})


def run_speaker(args, speaker: str, features: FeatureConfig) -> dict:
    data = load_dataset(f"fsdd:{args.data}", holdout_speaker=speaker, seed=args.seed, progress=False)
    model = build_model(args.model, len(data.classes), features.shape, seed=args.seed)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                      label_smoothing=args.label_smoothing, augment=not args.no_augment, seed=args.seed,
                      mixup=args.mixup, ema_decay=args.ema_decay)
    aug = augment_config(args)
    res = train(model, data, cfg, features=features, augment_config=aug, progress=False)
    test = evaluate(model, data.test, features)
    epoch_s = [h["seconds"] for h in res.history]
    return {"speaker": speaker, "test_accuracy": test.accuracy, "val_accuracy": res.accuracy,
            "train_loss": res.loss, "n_train": len(data.train), "n_test": test.n,
            "seconds": res.seconds, "seconds_per_epoch": statistics.median(epoch_s), "confusion": test.confusion}


SETTINGS_IGNORED = ("speakers", "json", "reuse")   # flags that do not change a speaker's training


def reused_rows(args) -> dict:
    """speaker -> row of an earlier result made with the same settings (the run is deterministic)."""
    if not args.reuse:
        return {}
    old = read_json(args.reuse)
    mine = {k: v for k, v in vars(args).items() if k not in SETTINGS_IGNORED}
    theirs = {k: v for k, v in old.get("args", {}).items() if k not in SETTINGS_IGNORED}
    if mine != theirs or old.get("threads") != torch.get_num_threads():
        diff = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
        raise SystemExit(f"--reuse {args.reuse}: made with other settings ({', '.join(diff) or 'threads'})")
    return {r["speaker"]: dict(r, reused_from=args.reuse) for r in old["speakers"]}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    features = FeatureConfig()
    speakers = [s.strip() for s in args.speakers.split(",") if s.strip()]
    done = reused_rows(args)
    rows = []
    print(f"{'held-out':10s} {'test acc':>8s} {'val acc':>8s} {'s/epoch':>8s}", flush=True)
    for spk in speakers:
        r = done[spk] if spk in done else run_speaker(args, spk, features)
        rows.append(r)
        print(f"{spk:10s} {r['test_accuracy']:8.4f} {r['val_accuracy']:8.4f} {r['seconds_per_epoch']:8.2f}", flush=True)
    accs = [r["test_accuracy"] for r in rows]
    summary = {"mean_test_accuracy": statistics.fmean(accs), "min_test_accuracy": min(accs),
               "median_seconds_per_epoch": statistics.median(r["seconds_per_epoch"] for r in rows)}
    print(f"{'mean':10s} {summary['mean_test_accuracy']:8.4f}\n{'min':10s} {summary['min_test_accuracy']:8.4f}")
    if args.json:
        write_json(args.json, {"benchmark": "train_fsdd", "command": " ".join(sys.argv), "args": vars(args),
                               "torch": torch.__version__, "threads": torch.get_num_threads(),
                               "machine": platform.machine(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               **summary, "speakers": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
