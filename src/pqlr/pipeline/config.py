"""PipelineConfig: every setting of one `pqlr-compress` run (the CLI and YAML recipes fill it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..compress import lowrank, prune
from ..compress.distill import DistillConfig
from ..compress.quantize import QuantConfig
from .budget import BudgetConfig
from ..errors import PqlrError
from ..models import MODEL_NAMES, user_class

TASKS = ("classify", "anomaly")


@dataclass(frozen=True)
class PipelineConfig:
    model: str = "tinybert"
    dataset: str = "kws_chinese"
    words: tuple[str, ...] | None = None
    holdout_speaker: str | None = None
    teacher: str | None = None
    task: str | None = None         # "classify" or "anomaly" (an autoencoder scored by ROC AUC); None: the data's
    input_shape: tuple[int, ...] | None = None   # one sample's shape: images: are resized to it, npz: checked
    prune: prune.PruneConfig = field(default_factory=prune.PruneConfig)
    quant: QuantConfig = field(default_factory=lambda: QuantConfig(wbits=4, abits=8, method="lsq+"))
    lowrank: lowrank.LowRankConfig | None = field(default_factory=lowrank.LowRankConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)   # points each stage may lose (--max-drop)
    # defaults sized so the article's command finishes within 15 minutes on a 2-core CPU
    epochs: int = 6                 # float training of the student (with the slimming penalty)
    teacher_epochs: int = 5
    prune_epochs: int = 5           # fine-tuning after the cut (article: 5)
    qat_epochs: int = 2
    lowrank_epochs: int = 2
    distill_epochs: int = 4
    batch_size: int = 64
    lr: float = 3e-3                # peak lr of the float training (and of the teacher)
    finetune_lr: float | None = None  # peak lr of the fine-tuning phases (prune, QAT, low-rank, distill);
                                      # None = lr / 3: they start from a trained model, so a gentler peak
    augment: bool = True            # waveform augmentation while training (audio data only)
    per_class: int | None = None    # cap samples per class (quick runs; synthetic sets: how many to make)
    flash: int | None = None        # weight-bytes budget -> mixed precision
    ram: int | None = None          # RAM budget -> tile streaming
    tiles: int | None = None
    target: str | None = None       # hardware profile for the estimate
    seed: int = 0
    device: str = "cpu"
    output: str = "micro_kws.bin"
    progress: bool = True

    def __post_init__(self):
        for f in ("epochs", "teacher_epochs", "prune_epochs", "qat_epochs", "lowrank_epochs", "distill_epochs"):
            if getattr(self, f) < 0:
                raise PqlrError(f"--{f.replace('_', '-')} must be >= 0, got {getattr(self, f)}")
        if self.batch_size < 1 or self.lr <= 0 or (self.finetune_lr is not None and self.finetune_lr <= 0):
            raise PqlrError("batch size and learning rates must be positive")
        if self.input_shape is not None:
            shape = tuple(int(v) for v in self.input_shape)
            if not shape or min(shape) < 1:
                raise PqlrError(f"--input-shape {self.input_shape}: give one sample's shape, e.g. 3x96x96")
            object.__setattr__(self, "input_shape", shape)
        if self.task is not None and self.task not in TASKS:
            raise PqlrError(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        check_model_spec(self.model, "model")
        if self.teacher:
            check_model_spec(self.teacher, "teacher")
        if not str(self.output).endswith(".bin"):
            raise PqlrError(f"--output must name a .bin file, got {self.output!r}")

    @property
    def out_dir(self) -> Path:
        p = Path(self.output)
        return p.with_suffix("") if p.suffix == ".bin" else p.parent / (p.name + "_out")


def check_model_spec(spec: str, what: str) -> None:
    """Fail before any data is loaded: a zoo name, an existing checkpoint, or an existing file.py:Class
    (the file is imported to find the class)."""
    if spec in MODEL_NAMES:
        return
    if ".py:" in spec:
        try:
            user_class(spec)
        except PqlrError as e:
            raise PqlrError(f"--{what} {spec}: {e}") from None
        return
    if spec.endswith(".safetensors"):
        if not Path(spec).is_file():
            raise PqlrError(f"--{what} {spec}: no such file")
        return
    if ":" in spec and Path(spec.rpartition(":")[0]).is_file():
        raise PqlrError(f"--{what} {spec}: a model file must be a Python file, path/to/file.py:ClassName")
    raise PqlrError(f"unknown {what} {spec!r} (known: {', '.join(MODEL_NAMES)}, a .safetensors checkpoint, "
                    "or path/to/file.py:ClassName)")
