"""The distillation teacher: loaded from a checkpoint, or trained once on the same data and cached.

`--teacher` takes what `--model` takes: a zoo name, a .safetensors checkpoint, or a user's own
`file.py:Class` (a larger model of the student's family). A trained teacher is captured and cached
as a graph checkpoint keyed by everything its training depends on."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

from torch import nn

from ..capture import capture
from ..capture.stats import graph_stats
from ..data import AugmentConfig
from ..models import load_model, resolve_model, save_model
from ..train import TrainConfig, evaluate, train
from .measure import check_outputs


def teacher_cache_path(cfg, data) -> Path:
    base = Path(os.environ.get("PQLR_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pqlr")
    augment = AugmentConfig() if cfg.augment else None      # a teacher trained with other augmentation is another teacher
    source = cfg.teacher
    if ".py:" in source:                                   # a user's file: its content is part of the key
        file = source.rpartition(":")[0]
        source = f"{source}#{hashlib.sha256(Path(file).read_bytes()).hexdigest()[:16]}"
    key = hashlib.sha256(repr((source, cfg.dataset, cfg.words, cfg.holdout_speaker, cfg.seed,
                               cfg.teacher_epochs, cfg.batch_size, cfg.lr, augment, cfg.per_class,
                               data.classes, tuple(data.input_shape))).encode()).hexdigest()[:12]
    stem = Path(cfg.teacher.rpartition(":")[2] if ".py:" in cfg.teacher else cfg.teacher).name
    return base / "teachers" / f"{stem}-{key}.safetensors"


def get_teacher(cfg, data, task: str = "classify", log: Callable[[str], None] = print) -> tuple[nn.Module, dict]:
    """`--teacher PATH.safetensors` loads a checkpoint; a zoo name or file.py:Class is trained on the
    same data (cached)."""
    spec = cfg.teacher
    if spec.endswith(".safetensors"):
        model, _ = load_model(spec)
        source = spec
    else:
        path = teacher_cache_path(cfg, data)
        if path.is_file():
            model, _ = load_model(path)
            source = f"cache {path}"
        else:
            model = capture(resolve_model(spec, len(data.classes), data.input_shape, seed=cfg.seed), data.input_shape)
            check_outputs(model, data, task, f"teacher {spec}")
            log(f"[teacher] training {spec} for {cfg.teacher_epochs} epochs (cached at {path})")
            train(model, data, TrainConfig(epochs=cfg.teacher_epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                                           seed=cfg.seed, device=cfg.device, augment=cfg.augment, task=task),
                  progress=cfg.progress)
            save_model(path, model, {"classes": data.classes})
            source = f"trained, cached at {path}"
    gm = capture(model, data.input_shape)
    check_outputs(gm, data, task, f"teacher {spec}")
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    stats = graph_stats(gm)
    acc = float(evaluate(model, data.test, task=task).accuracy)
    row = {"name": spec, "accuracy": acc, "params": stats["params"], "weight_bytes": 4 * stats["params"],
           "macs": stats["macs"], "source": source}
    log(f"[teacher] {spec}: {'accuracy' if task == 'classify' else 'ROC AUC'} {100 * acc:.2f}%, "
        f"{stats['params']:,} params ({source})")
    return model, row
