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
from pqlr.io import write_json
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
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--aug-speed", default=None, metavar="LO,HI", help="speed-perturbation range (default: AugmentConfig's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--json", default=None, help="write the results here")
    return p.parse_args(argv)


def run_speaker(args, speaker: str, features: FeatureConfig) -> dict:
    data = load_dataset(f"fsdd:{args.data}", holdout_speaker=speaker, seed=args.seed, progress=False)
    model = build_model(args.model, len(data.classes), features.shape, seed=args.seed)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                      label_smoothing=args.label_smoothing, augment=not args.no_augment, seed=args.seed)
    aug = AugmentConfig(speed=tuple(float(v) for v in args.aug_speed.split(","))) if args.aug_speed else None
    res = train(model, data, cfg, features=features, augment_config=aug, progress=False)
    test = evaluate(model, data.test, features)
    epoch_s = [h["seconds"] for h in res.history]
    return {"speaker": speaker, "test_accuracy": test.accuracy, "val_accuracy": res.accuracy,
            "train_loss": res.loss, "n_train": len(data.train), "n_test": test.n,
            "seconds": res.seconds, "seconds_per_epoch": statistics.median(epoch_s), "confusion": test.confusion}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    features = FeatureConfig()
    speakers = [s.strip() for s in args.speakers.split(",") if s.strip()]
    rows = []
    print(f"{'held-out':10s} {'test acc':>8s} {'val acc':>8s} {'s/epoch':>8s}", flush=True)
    for spk in speakers:
        r = run_speaker(args, spk, features)
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
