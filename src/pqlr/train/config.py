"""Training settings (TrainConfig) and what training and evaluation return (TrainResult, EvalResult)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from ..errors import PqlrError

OPTIMIZERS = ("adamw", "adam", "sgd")
TASKS = ("classify", "anomaly")
SCHEDULES = ("cosine", "constant", "linear")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3                  # peak learning rate, reached after warmup
    weight_decay: float = 1e-4        # decoupled (AdamW) or L2 (SGD); never applied to BN/LN/bias
    optimizer: str = "adamw"          # adamw | adam | sgd (momentum 0.9, Nesterov)
    schedule: str = "cosine"          # cosine | linear (decay to min_lr_ratio * lr) | constant; per step
    warmup_epochs: float = 1.0        # linear warmup from 0, in epochs (fractions allowed)
    min_lr_ratio: float = 0.01        # final lr = lr * min_lr_ratio (cosine, linear)
    label_smoothing: float = 0.0
    grad_clip: float | None = 5.0     # max global gradient L2 norm; None = off
    augment: bool = True              # waveform augmentation (pqlr.data.Augment) on the train split
    mixup: float = 0.0                # mixup (Zhang et al. 2018) of feature batches, lambda ~ Beta(a, a); 0 = off
    ema_decay: float = 0.0            # average the weights per step with this decay (0 = off); the result is the average
    seed: int = 0
    device: str = "cpu"               # cpu | cuda | cuda:N (under DDP each rank uses cuda:LOCAL_RANK)
    num_workers: int = 0              # DataLoader workers preparing augmented batches (0 = in-process)
    log_every: int = 10               # steps between progress-bar loss updates
    eval_batch_size: int = 256
    task: str = "classify"            # classify (cross-entropy, accuracy) | anomaly (autoencoder: MSE, ROC AUC)

    def __post_init__(self):
        ints = {"epochs": 0, "batch_size": 1, "num_workers": 0, "log_every": 1, "eval_batch_size": 1}
        for name, low in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise PqlrError(f"TrainConfig.{name} must be an integer >= {low}, got {v!r}")
        if not self.lr > 0:
            raise PqlrError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise PqlrError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay}")
        if self.optimizer not in OPTIMIZERS:
            raise PqlrError(f"TrainConfig.optimizer {self.optimizer!r} unknown (use {', '.join(OPTIMIZERS)})")
        if self.schedule not in SCHEDULES:
            raise PqlrError(f"TrainConfig.schedule {self.schedule!r} unknown (use {', '.join(SCHEDULES)})")
        if self.warmup_epochs < 0:
            raise PqlrError(f"TrainConfig.warmup_epochs must be >= 0, got {self.warmup_epochs}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise PqlrError(f"TrainConfig.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise PqlrError(f"TrainConfig.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 <= self.mixup <= 10.0:
            raise PqlrError(f"TrainConfig.mixup must be in [0, 10] (Beta parameter, 0 = off), got {self.mixup}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise PqlrError(f"TrainConfig.ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise PqlrError(f"TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip}")
        if self.task not in TASKS:
            raise PqlrError(f"TrainConfig.task {self.task!r} unknown (use {', '.join(TASKS)})")
        if not (self.device == "cpu" or self.device == "cuda" or self.device.startswith("cuda:")):
            raise PqlrError(f"TrainConfig.device {self.device!r} unknown (use cpu, cuda or cuda:N)")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise PqlrError(f"unknown TrainConfig keys: {', '.join(unknown)}")
        return cls(**d)


@dataclass
class EvalResult:
    accuracy: float                    # top-1 in [0, 1]; for anomaly models the ROC AUC (= score)
    loss: float                        # mean cross-entropy; anomaly: mean per-sample reconstruction MSE
    n: int                             # samples evaluated
    confusion: list[list[int]]         # [true class][predicted class] counts; [] for anomaly models
    metric: str = "accuracy"           # "accuracy" | "roc_auc"
    score: float | None = None         # the metric's value (defaults to accuracy)
    scores: list[float] | None = None  # anomaly: per-sample reconstruction MSE (higher = more anomalous)

    def __post_init__(self):
        if self.score is None:
            self.score = self.accuracy

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainResult:
    accuracy: float                    # validation accuracy (anomaly: ROC AUC) after the last epoch (nan without one)
    loss: float                        # mean training loss of the last epoch
    epochs: int                        # epochs finished (including resumed ones)
    seconds: float                     # wall time of this call (resumed epochs not included)
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, lr, loss, train_acc, val_acc, val_loss,
    #   val_metric ("accuracy" | "roc_auc": what val_acc holds), seconds; train_acc is None for anomaly models

    def to_dict(self) -> dict:
        return asdict(self)
