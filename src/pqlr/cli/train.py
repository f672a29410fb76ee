"""`pqlr train`: train a float model on a dataset; writes OUT/model.safetensors + .json and metrics.

Audio datasets go through the KWS front end; `npz:FILE` / `images:DIR` are tensors whose sample shape
is the model's input shape (`--input-shape 3x32x32` sets the image size). `--task anomaly` trains an
autoencoder (reconstruction loss) and reports ROC AUC.

Under `torchrun --nproc-per-node N -m pqlr train ...` it trains data-parallel; rank 0 writes the files.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

from ..errors import PqlrError

DATA_HELP = ("speech_commands:PATH | folder:PATH | fsdd:PATH | kws_english[:N] | kws_chinese[:N] | "
             "npz:FILE | images:DIR")


def words_list(text: str) -> list[str]:
    words = [w.strip() for w in text.split(",") if w.strip()]
    if not words:
        raise PqlrError(f"--words {text!r}: give a comma-separated list, e.g. yes,no,up")
    return words


def add_data_args(p) -> None:
    """Dataset flags shared by `train` and `eval`."""
    p.add_argument("--dataset", required=True, metavar="SPEC", help=DATA_HELP)
    p.add_argument("--words", type=str, default=None, metavar="A,B,...",
                   help="keywords to keep (speech_commands); the rest become _unknown_, plus _silence_")
    p.add_argument("--holdout-speaker", default=None, metavar="NAME",
                   help="speaker-disjoint test split: test on this speaker only (fsdd)")
    p.add_argument("--per-class", type=int, default=None, metavar="N", help="at most N clips per class (small runs)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the dataset split (default 0)")
    p.add_argument("--cache-dir", default=None, help="where generated datasets are cached")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="torch CPU threads (0 = torch's default; 1 is best on a busy machine)")


def add_tensor_data_args(p) -> None:
    """Flags of tensor datasets (npz:, images:) and the task, for `train` and `eval`."""
    p.add_argument("--input-shape", default=None, metavar="SHAPE", type=shape_arg,
                   help="one sample's shape, e.g. 3x32x32 (or 3,32,32). images: the channels (3 RGB, 1 gray) and "
                        "size they are resized to (default 3x32x32, or the checkpoint's); npz: checked")
    p.add_argument("--task", default=None, choices=("classify", "anomaly"),
                   help="classify, or anomaly (an autoencoder trained on normal samples, scored by ROC AUC); "
                        "default: the dataset's (npz `task` array), else classify")


def shape_arg(text: str) -> tuple[int, ...]:
    """"3x32x32", "3,32,32", "640" -> a sample shape; argparse reports a bad value as one line, exit 2."""
    import argparse
    import re
    parts = [v for v in re.split(r"\s*[xX,]\s*", text.strip()) if v]
    if not parts or not all(v.isdigit() and int(v) > 0 for v in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: give one sample's shape, e.g. 3x32x32, 1x16x16 or 640")
    return tuple(int(v) for v in parts)


def data_options(args) -> dict:
    o = {"spec": args.dataset, "words": words_list(args.words) if args.words else None,
         "holdout_speaker": args.holdout_speaker, "per_class": args.per_class, "seed": args.data_seed}
    for key in ("input_shape", "task"):
        if getattr(args, key, None) is not None:
            o[key] = list(getattr(args, key)) if key == "input_shape" else getattr(args, key)
    return o


def is_main_rank() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def apply_threads(args) -> None:
    import torch
    if args.threads < 0:
        raise PqlrError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)


def load_data(args, progress: bool, meta: dict | None = None):
    """The dataset of the flags; `meta` of a checkpoint gives the input shape and task unless flags do."""
    from ..data import load_dataset
    o, meta = data_options(args), meta or {}
    shape = o.get("input_shape") or meta.get("input_shape")
    return load_dataset(o["spec"], words=o["words"], holdout_speaker=o["holdout_speaker"], seed=o["seed"],
                        cache_dir=args.cache_dir, per_class=o["per_class"], progress=progress and is_main_rank(),
                        input_shape=tuple(shape) if shape else None, task=o.get("task") or meta.get("task"))


def tensor_data(data) -> bool:
    from ..train.batches import is_tensor_data
    return is_tensor_data(data)


def model_input_shape(data, features) -> tuple[int, ...]:
    """One sample's shape, what a new model is built for: (1, frames, features) of the front end for
    audio, the samples' own shape for tensor data (zoo models take (1, frames, features) only)."""
    return tuple(data.input_shape) if tensor_data(data) else (1, *features.shape)


def add_parser(sub) -> None:
    from ..data import AugmentConfig
    from ..train import TrainConfig
    d = TrainConfig()
    p = sub.add_parser("train", help="train a float model on a dataset (audio, npz arrays, images)",
                       description="Train a float model (zoo name, checkpoint, or file.py:Class) on a keyword-"
                                   "spotting, npz or image dataset; write OUT/model.safetensors + OUT/model.json "
                                   "and metrics.")
    p.add_argument("--model", required=True, metavar="NAME|CKPT|FILE.py:CLASS",
                   help="zoo name (e.g. ds-cnn-s), a .safetensors checkpoint to fine-tune, or file.py:ClassName")
    add_data_args(p)
    add_tensor_data_args(p)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate (default {d.lr})")
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--optimizer", default=d.optimizer, help="adamw | adam | sgd")
    p.add_argument("--schedule", default=d.schedule, help="cosine | linear | constant (after linear warmup)")
    p.add_argument("--warmup-epochs", type=float, default=d.warmup_epochs)
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--seed", type=int, default=d.seed, help="seed of initialisation, shuffling, augmentation")
    p.add_argument("--no-augment", action="store_true", help="train on clean clips (features cached once)")
    a = AugmentConfig()
    p.add_argument("--vtlp", default=None, metavar="LO,HI",
                   help=f"VTLP frequency-warp range per clip (default {a.vtlp[0]},{a.vtlp[1]}; 1,1 = off)")
    p.add_argument("--eq-prob", type=float, default=a.eq_prob,
                   help=f"share of clips given a random channel (microphone) response (default {a.eq_prob})")
    p.add_argument("--freq-masks", type=int, default=a.freq_masks, help="SpecAugment mel-band masks per clip")
    p.add_argument("--time-masks", type=int, default=a.time_masks, help="SpecAugment frame masks per clip")
    p.add_argument("--noise-dir", default=None, metavar="DIR",
                   help="background-noise recordings for augmentation (default: the dataset's, else generated)")
    p.add_argument("--mixup", type=float, default=d.mixup, help="mixup Beta parameter (0 = off)")
    p.add_argument("--ema-decay", type=float, default=d.ema_decay,
                   help="keep an exponential moving average of the weights with this decay; it is the result")
    p.add_argument("--device", default=d.device, help="cpu | cuda | cuda:N")
    p.add_argument("--num-workers", type=int, default=d.num_workers, help="workers preparing augmented batches")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints (same settings)")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder: model.safetensors, model.json, checkpoints/")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the metrics here")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or per-epoch lines")
    p.set_defaults(func=run)


def float_pair(flag: str, text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise PqlrError(f"{flag} {text!r}: give two numbers LO,HI, e.g. 0.9,1.1") from None
    return lo, hi


def augment_config(args, data):
    """The AugmentConfig of the augmentation flags (the dataset's noise folder unless --noise-dir)."""
    from ..data import AugmentConfig
    over = {"freq_masks": args.freq_masks, "time_masks": args.time_masks, "eq_prob": args.eq_prob,
            "noise_dir": args.noise_dir or (getattr(data, "info", None) or {}).get("noise_dir")}
    if args.vtlp is not None:
        over["vtlp"] = float_pair("--vtlp", args.vtlp)
    return AugmentConfig(**over)


def check_model_spec(spec: str) -> None:
    """Fail on an unknown zoo name before any data is loaded."""
    from ..models import MODEL_NAMES
    if not (spec.endswith(".safetensors") or ".py:" in spec) and spec not in MODEL_NAMES:
        raise PqlrError(f"unknown model {spec!r} (known: {', '.join(MODEL_NAMES)}, a .safetensors "
                        "checkpoint, or path/to/file.py:ClassName)")


def load_checkpoint_model(path: str):
    """-> (model, meta, FeatureConfig) of a checkpoint written by `pqlr train` (zoo or file.py:Class model)."""
    from ..data import FeatureConfig
    from ..io import load_state
    from ..models import load_model
    from ..models.zoo import load_user_model

    if not path.endswith(".safetensors"):
        raise PqlrError(f"--model {path!r}: give a checkpoint written by `pqlr train` (OUT/model.safetensors)")
    tensors, meta = load_state(path)
    meta = meta or {}
    try:
        features = FeatureConfig(**(meta.get("features") or {}))   # None: tensor data, front end unused
    except TypeError as e:
        raise PqlrError(f"{path}: bad feature config beside it ({e})") from None
    if "user_model" in meta:
        shape = meta.get("input_shape") or (1, *features.shape)
        model = load_user_model(meta["user_model"], len(meta.get("classes", [])), tuple(shape))
        model.load_state_dict(tensors)
    else:
        model = load_model(path)[0]
    return model, meta, features


def check_classes(path: str, meta: dict, data) -> None:
    """A checkpoint only fits a dataset with the same classes, in the same order."""
    classes = meta.get("classes")
    if classes is not None and list(classes) != list(data.classes):
        words = (meta.get("dataset") or {}).get("words")
        raise PqlrError(f"{path} was trained on classes {classes} but the dataset has {data.classes}"
                        + (f" (trained with --words {','.join(words)})" if words else ""))


def run(args) -> int:
    from ..data import FeatureConfig
    from ..io import save_state, write_json
    from ..models import resolve_model, save_model
    from ..train import TrainConfig, evaluate, train
    from ..train.ddp import teardown

    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                      optimizer=args.optimizer, schedule=args.schedule, warmup_epochs=args.warmup_epochs,
                      label_smoothing=args.label_smoothing, augment=not args.no_augment, seed=args.seed,
                      device=args.device, num_workers=args.num_workers, mixup=args.mixup,
                      ema_decay=args.ema_decay)
    progress = not args.no_progress
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PqlrError(f"--out {out}: exists and is not a folder")
    check_model_spec(args.model)
    apply_threads(args)
    if args.model.endswith(".safetensors"):           # fine-tune a trained model with its own front end
        model, meta, features = load_checkpoint_model(args.model)
        data = load_data(args, progress, meta)
        check_classes(args.model, meta, data)
        shape = meta.get("input_shape") or (1, *features.shape)
    else:
        features = FeatureConfig()
        data = load_data(args, progress)
        shape = model_input_shape(data, features)
        model = resolve_model(args.model, len(data.classes), shape, seed=args.seed)
    cfg = replace(cfg, task=args.task or data.task)
    tensors = tensor_data(data)
    acfg = augment_config(args, data)
    try:
        result = train(model, data, cfg, features=features, checkpoint_dir=str(out / "checkpoints"),
                       resume=args.resume, progress=progress, augment_config=acfg)
        test = evaluate(model, data.test, features, task=cfg.task) if len(data.test) else None
        metrics = {"accuracy": test.accuracy if test else None, "metric": test.metric if test else None,
                   "task": cfg.task,
                   "val_accuracy": None if math.isnan(result.accuracy) else result.accuracy,
                   "loss": result.loss, "epochs": result.epochs, "seconds": round(result.seconds, 3),
                   "test_loss": test.loss if test else None, "n_test": test.n if test else 0,
                   "n_train": len(data.train), "n_val": len(data.val), "model": args.model,
                   "dataset": data.name, "confusion": test.confusion if test else None}
        if is_main_rank():
            meta = {"classes": list(data.classes), "features": None if tensors else asdict(features),
                    "input_shape": list(shape), "task": cfg.task,
                    "train": cfg.to_dict(), "augment": asdict(acfg) if cfg.augment and not tensors else None,
                    "dataset": data_options(args), "metrics": metrics, "history": result.history}
            if hasattr(model, "config"):
                save_model(out / "model.safetensors", model, meta)
            else:   # a user's file.py:Class model: weights + how to rebuild it
                save_state(out / "model.safetensors", model.state_dict(), {"user_model": args.model, **meta})
            if args.json:
                write_json(args.json, metrics)
            acc = "n/a" if test is None else f"{test.metric} {test.score:.4f}"
            print(f"trained {args.model} on {data.name} ({len(data.classes)} classes): test {acc}, "
                  f"{result.epochs} epochs, {result.seconds:.1f} s -> {out / 'model.safetensors'}",
                  file=sys.stdout)
    finally:
        teardown()
    return 0
