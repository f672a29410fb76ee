"""The distillation teacher: loaded from a checkpoint, or trained once on the same data and cached."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

from torch import nn

from ..errors import PqlrError
from ..models import MODEL_NAMES, load_model, model_stats, save_model


def teacher_cache_path(cfg, data) -> Path:
    base = Path(os.environ.get("PQLR_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pqlr")
    from ..data import AugmentConfig

    augment = AugmentConfig() if cfg.augment else None      # a teacher trained with other augmentation is another teacher
    key = hashlib.sha256(repr((cfg.teacher, cfg.dataset, cfg.words, cfg.holdout_speaker, cfg.seed,
                               cfg.teacher_epochs, cfg.batch_size, cfg.lr, augment, cfg.per_class, data.classes)).encode()).hexdigest()[:12]
    return base / "teachers" / f"{cfg.teacher}-{key}.safetensors"


def get_teacher(cfg, data, log: Callable[[str], None] = print) -> tuple[nn.Module, dict]:
    """`--teacher PATH` loads a checkpoint; `--teacher NAME` trains NAME (cached) on the same data."""
    from ..train import TrainConfig, evaluate, train

    spec = cfg.teacher
    if spec.endswith(".safetensors"):
        model, _ = load_model(spec)
        source = spec
    elif spec in MODEL_NAMES:
        path = teacher_cache_path(cfg, data)
        if path.is_file():
            model, _ = load_model(path)
            source = f"cache {path}"
        else:
            from ..models import build_model

            log(f"[teacher] training {spec} for {cfg.teacher_epochs} epochs (cached at {path})")
            model = build_model(spec, len(data.classes), seed=cfg.seed)
            train(model, data, TrainConfig(epochs=cfg.teacher_epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                                           seed=cfg.seed, device=cfg.device, augment=cfg.augment), progress=cfg.progress)
            save_model(path, model, {"classes": data.classes})
            source = f"trained, cached at {path}"
    else:
        raise PqlrError(f"unknown teacher {spec!r} (a zoo name such as tinybert-6l, or a .safetensors checkpoint)")
    if getattr(model, "config", None) is not None and model.config.n_classes != len(data.classes):
        raise PqlrError(f"teacher {spec} predicts {model.config.n_classes} classes, the dataset has {len(data.classes)}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    stats = model_stats(model)
    acc = float(evaluate(model, data.test).accuracy)
    row = {"name": spec, "accuracy": acc, "params": stats["params"], "weight_bytes": 4 * stats["params"],
           "macs": stats["macs"], "source": source}
    log(f"[teacher] {spec}: accuracy {100 * acc:.2f}%, {stats['params']:,} params ({source})")
    return model, row
