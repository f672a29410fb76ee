"""Benchmark: float training of a zoo model on one dataset's own split (e.g. kws_chinese).

Reports test accuracy, validation accuracy and wall time per epoch. Not part of the test suite. Example:

    OMP_NUM_THREADS=1 .venv/bin/python bench/train_kws.py --dataset kws_chinese --model ds-cnn-s \\
        --epochs 30 --threads 1 --json bench/results/train_kws_chinese_ds-cnn-s.json

The same training as `pqlr train --model MODEL --dataset SPEC --epochs N` (default augmentation).
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch

from pqlr.data import FeatureConfig, load_dataset
from pqlr.io import write_json
from pqlr.models import build_model
from pqlr.train import TrainConfig, evaluate, train


def parse_args(argv=None):
    d = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="kws_chinese", help="dataset spec, e.g. kws_chinese or fsdd:PATH")
    p.add_argument("--model", default="ds-cnn-s")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--mixup", type=float, default=d.mixup)
    p.add_argument("--ema-decay", type=float, default=d.ema_decay)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    p.add_argument("--json", default=None, help="write the results here")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    features = FeatureConfig()
    data = load_dataset(args.dataset, seed=args.seed, progress=False)
    model = build_model(args.model, len(data.classes), features.shape, seed=args.seed)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      mixup=args.mixup, ema_decay=args.ema_decay)
    res = train(model, data, cfg, features=features, progress=False,
                on_epoch=lambda r: print(f"epoch {r['epoch']:3d}  loss {r['loss']:.4f}  val {r['val_acc']:.4f}  "
                                         f"{r['seconds']:.1f}s", flush=True))
    test = evaluate(model, data.test, features)
    out = {"benchmark": "train_kws", "command": " ".join(sys.argv), "args": vars(args),
           "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "dataset": data.name,
           "classes": data.classes, "n_train": len(data.train), "n_val": len(data.val), "n_test": test.n,
           "params": sum(p.numel() for p in model.parameters()), "train": cfg.to_dict(),
           "test_accuracy": test.accuracy, "val_accuracy": res.accuracy, "epochs": res.epochs,
           "seconds": res.seconds, "median_seconds_per_epoch": statistics.median(h["seconds"] for h in res.history),
           "history": res.history, "confusion": test.confusion}
    print(f"{args.model} on {data.name}: test {test.accuracy:.4f}  val {res.accuracy:.4f}  "
          f"{out['median_seconds_per_epoch']:.2f} s/epoch")
    if args.json:
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
