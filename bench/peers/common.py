"""What every contender of bench/peers shares: the split, the float model trained once per split
(cached under bench/peers/runs/), the calibration clips, the fine-tuning config and the helpers
that score a model or an integer program on the test split.

A split is FSDD leave-one-speaker-out (`fsdd:PATH` + held-out speaker) or the Speech Commands
sample (`speech_commands:PATH`). Features are PQLR's front end (49 MFCC frames x 10), computed
once per split (pqlr.train.DEFAULT_CACHE); every contender sees the same tensors.
"""
from __future__ import annotations

import copy
import hashlib
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pqlr.data import FeatureConfig, load_dataset
from pqlr.capture import capture
from pqlr.capture.stats import graph_stats
from pqlr.models import build_model, load_model, save_model
from pqlr.train import DEFAULT_CACHE, TrainConfig, train

HERE = Path(__file__).resolve().parent
RUNS = HERE / "runs"
MODEL = "ds-cnn-s"
FEATURES = FeatureConfig()


@dataclass(frozen=True)
class Settings:
    epochs: int = 15           # float training, shared by every contender
    ft_epochs: int = 3         # fine-tuning epochs: QAT (PQLR LSQ+, brevitas), after pruning (both tools)
    calib: int = 200           # calibration clips (PQLR PTQ, onnxruntime, litert-torch, bakenn)
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 0
    repeats: int = 200         # host latency: timed invokes per contender (median reported)

    def __post_init__(self):
        if min(self.epochs, self.calib, self.batch_size, self.repeats) < 1 or self.ft_epochs < 0:
            raise ValueError(f"bad settings {self}")

    def train_config(self, epochs: int, lr: float | None = None) -> TrainConfig:
        return TrainConfig(epochs=epochs, batch_size=self.batch_size, lr=lr or self.lr, seed=self.seed)


@dataclass
class Split:
    """One data split and the tensors every contender uses."""
    name: str                  # "fsdd/theo", "speech_commands"
    spec: str
    data: object               # pqlr.data.KwsData
    x_test: torch.Tensor       # (N, 1, 49, 10) float features
    y_test: np.ndarray         # (N,) int64
    calib: torch.Tensor        # (calib, 1, 49, 10): the same clips for every calibrating contender

    @property
    def classes(self) -> list[str]:
        return list(self.data.classes)


def load_split(spec: str, holdout: str | None, s: Settings) -> Split:
    data = load_dataset(spec, holdout_speaker=holdout, seed=s.seed, progress=False)
    x_tr, _ = DEFAULT_CACHE.get(data.train, FEATURES)
    x_te, y_te = DEFAULT_CACHE.get(data.test, FEATURES)
    idx = torch.randperm(len(x_tr), generator=torch.Generator().manual_seed(s.seed))[:s.calib]
    name = f"fsdd/{holdout}" if holdout else spec.split(":")[0]
    return Split(name, spec, data, x_te, y_te.numpy().astype(np.int64), x_tr[idx].clone())


def calib_batches(split: Split, s: Settings) -> list[torch.Tensor]:
    return [split.calib[i:i + s.batch_size] for i in range(0, len(split.calib), s.batch_size)]


def float_model(split: Split, s: Settings, log=print) -> tuple[torch.nn.Module, dict]:
    """The split's float DS-CNN-S: trained once (s.epochs, seed) and cached under runs/."""
    key = hashlib.sha256(repr((split.spec, split.name, MODEL, s.epochs, s.batch_size, s.lr, s.seed,
                               split.classes)).encode()).hexdigest()[:10]
    path = RUNS / "float" / f"{split.name.replace('/', '-')}-{key}.safetensors"
    if path.is_file():
        model, meta = load_model(path)
        log(f"[{split.name}] float model from {path.relative_to(HERE)}")
        return model.eval(), meta["train"]
    log(f"[{split.name}] training float {MODEL}, {s.epochs} epochs")
    model = build_model(MODEL, len(split.classes), FEATURES.shape, seed=s.seed)
    res = train(model, split.data, s.train_config(s.epochs), features=FEATURES, progress=False)
    info = {"epochs": s.epochs, "seconds": round(res.seconds, 1),
            "seconds_per_epoch": statistics.median(h["seconds"] for h in res.history)}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(path, model, {"classes": split.classes, "train": info})
    return model.eval(), info


def fine_tune(model: torch.nn.Module, split: Split, s: Settings, epochs: int | None = None) -> float:
    """The fine-tuning every contender gets (same loop, augmentation, schedule, epochs). -> seconds."""
    epochs = s.ft_epochs if epochs is None else epochs
    if epochs == 0:
        return 0.0
    t = time.perf_counter()
    train(model, split.data, s.train_config(epochs), features=FEATURES, progress=False)
    return time.perf_counter() - t


def accuracy(model: torch.nn.Module, split: Split) -> float:
    """Test accuracy of a float or fake-quant torch model on the split's test features."""
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(split.x_test[i:i + 256]) for i in range(0, len(split.x_test), 256)])
    return float((logits.argmax(1).numpy() == split.y_test).mean())


def accuracy_of_logits(logits: np.ndarray, split: Split) -> float:
    return float((np.asarray(logits).reshape(len(split.y_test), -1).argmax(1) == split.y_test).mean())


def stats(model: torch.nn.Module) -> dict:
    st = graph_stats(capture(model, (1, *FEATURES.shape)))
    return {"params": int(st["params"]), "macs": int(st["macs"])}


def median_ns(samples: list[int]) -> int:
    return int(statistics.median(samples))


def clone(model: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(model).eval()
