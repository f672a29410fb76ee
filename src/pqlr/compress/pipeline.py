"""The PQLR pipeline: an explicit list of named stages (original -> pruned -> quantized -> low-rank
-> distilled), each a function of the run context that trains/cuts/quantizes and measures itself.

Every stage is checkpointed atomically into `<out>/stages/`; `resume=True` continues after the
last finished stage. Each stage seeds its own RNGs (seed + stage index), so a resumed run ends
bit-identical to an uninterrupted one."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..errors import PqlrError
from ..io import read_json, write_json
from ..models import model_from_config, model_stats
from . import lowrank, prune
from .distill import DistillConfig, distill_loss_fn
from .quantize import QuantConfig, quantize_
from .teacher import get_teacher

FEATURE_SHAPE = (49, 10)   # FeatureConfig() default: 49 MFCC frames x 10 coefficients


@dataclass(frozen=True)
class PipelineConfig:
    model: str = "tinybert"
    dataset: str = "kws_chinese"
    words: tuple[str, ...] | None = None
    holdout_speaker: str | None = None
    teacher: str | None = None
    prune: prune.PruneConfig = field(default_factory=prune.PruneConfig)
    quant: QuantConfig = field(default_factory=lambda: QuantConfig(wbits=4, abits=8, method="lsq+"))
    lowrank: lowrank.LowRankConfig | None = field(default_factory=lowrank.LowRankConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
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
    augment: bool = True            # waveform augmentation while training (time shift, noise, gain, speed)
    per_class: int | None = None    # cap clips per class (quick runs; synthetic sets: how many to make)
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
        _check_model_spec(self.model, "model")
        if self.teacher:
            _check_model_spec(self.teacher, "teacher")
        if not str(self.output).endswith(".bin"):
            raise PqlrError(f"--output must name a .bin file, got {self.output!r}")

    @property
    def out_dir(self) -> Path:
        p = Path(self.output)
        return p.with_suffix("") if p.suffix == ".bin" else p.parent / (p.name + "_out")


def _check_model_spec(spec: str, what: str) -> None:
    """Fail before any data is loaded: a zoo name, an existing checkpoint, or an existing file.py:Class."""
    from ..models import MODEL_NAMES

    if spec in MODEL_NAMES:
        return
    if spec.endswith(".safetensors") or ".py:" in spec:
        path = spec.rpartition(":")[0] if ".py:" in spec else spec
        if not Path(path).is_file():
            raise PqlrError(f"--{what} {spec}: no such file")
        return
    raise PqlrError(f"unknown {what} {spec!r} (known: {', '.join(MODEL_NAMES)}, a .safetensors checkpoint, "
                    "or path/to/file.py:ClassName)")


@dataclass
class Context:
    """What the stages share: data, the current float model, its quantized twin, the teacher."""
    cfg: PipelineConfig
    data: object
    model: nn.Module | None = None
    qmodel: nn.Module | None = None
    teacher: nn.Module | None = None
    notes: list[str] = field(default_factory=list)
    stage_info: dict = field(default_factory=dict)
    qmodel_cfg: QuantConfig | None = None
    lowrank_summary: list[dict] | None = None    # which layers were factorized (to rebuild on --resume)
    lowered: tuple | None = None                  # (qmodel, Graph, code bytes) last measured


Stage = Callable[[Context], dict]


# ------------------------------------------------------------------ training helpers
FINETUNE_WARMUP_EPOCHS = 0.2   # fine-tuning starts from a trained model: a short warmup suffices


def _train(ctx: Context, model: nn.Module, epochs: int, *, extra_loss=None, label: str = "",
           finetune: bool = True) -> dict:
    """Train `model` in place (with the distillation loss when there is a teacher). Fine-tuning phases
    use the gentler finetune_lr and a short warmup; the student's first training uses lr."""
    from ..train import TrainConfig, train

    if epochs == 0:
        return {"epochs": 0}
    cfg = ctx.cfg
    loss_fn = distill_loss_fn(ctx.teacher, cfg.distill) if ctx.teacher is not None else None
    lr = (cfg.finetune_lr if cfg.finetune_lr is not None else cfg.lr / 3) if finetune else cfg.lr
    warmup = FINETUNE_WARMUP_EPOCHS if finetune else TrainConfig.warmup_epochs
    tc = TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=lr, warmup_epochs=warmup, seed=cfg.seed,
                     device=cfg.device, augment=cfg.augment)
    res = train(model, ctx.data, tc, loss_fn=loss_fn, extra_loss=extra_loss, progress=ctx.cfg.progress)
    return {"epochs": epochs, "val_accuracy": res.accuracy, "seconds": res.seconds}


def _accuracy(ctx: Context, model: nn.Module) -> float:
    from ..train import evaluate

    return float(evaluate(model, ctx.data.test).accuracy)


def _calib_batches(ctx: Context, n: int) -> list[torch.Tensor]:
    """The first `n` training utterances of a seeded shuffle, as feature batches (B, 1, 49, 10)."""
    from ..data import FeatureConfig
    from ..train import DEFAULT_CACHE

    x, _ = DEFAULT_CACHE.get(ctx.data.train, FeatureConfig())
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(ctx.cfg.seed))[:n]
    return [x[idx[i:i + ctx.cfg.batch_size]] for i in range(0, len(idx), ctx.cfg.batch_size)]


def _quantize(ctx: Context, float_model: nn.Module, epochs: int, label: str) -> nn.Module:
    import copy

    qcfg = _quant_cfg(ctx, float_model)
    q = quantize_(copy.deepcopy(float_model), qcfg, step="prepare", calib=_calib_batches(ctx, qcfg.calib))
    ctx.qmodel_cfg = qcfg
    if ctx.cfg.quant.method != "ptq":
        ctx.stage_info.setdefault("train", {})[label] = _train(ctx, q, epochs, label=label)
    return q


def _quant_cfg(ctx: Context, model: nn.Module) -> QuantConfig:
    if ctx.cfg.flash is None:
        return ctx.cfg.quant
    import copy

    from .mixed import MixedConfig, plan_mixed

    calib = _calib_batches(ctx, min(ctx.cfg.quant.calib, 64))
    probe = quantize_(copy.deepcopy(model), ctx.cfg.quant, step="prepare", calib=calib)
    bits, table = plan_mixed(probe, calib, MixedConfig(flash=ctx.cfg.flash))
    ctx.stage_info["mixed_precision"] = table
    return replace(ctx.cfg.quant, per_layer_wbits=bits)


def _float_weight_bytes(model: nn.Module) -> int:
    return 4 * sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------ the stages
def stage_original(ctx: Context) -> dict:
    """Train the student in float, with the slimming penalty (network slimming's sparsity training)."""
    from ..models import resolve_model

    cfg = ctx.cfg
    ctx.model = resolve_model(cfg.model, len(ctx.data.classes), seed=cfg.seed)
    penalty = (lambda m: prune.slimming_penalty(m, cfg.prune)) if cfg.prune.method == "structured" and cfg.prune.sparse > 0 else None
    ctx.stage_info["train"] = _train(ctx, ctx.model, cfg.epochs, extra_loss=penalty, label="train", finetune=False)
    return _float_row(ctx, ctx.model)


def stage_pruned(ctx: Context) -> dict:
    cfg = ctx.cfg
    if cfg.prune.sparse > 0:
        ctx.model, summary = prune.apply(ctx.model, cfg.prune)
        ctx.stage_info["prune"] = summary
        ctx.stage_info["train"] = _train(ctx, ctx.model, cfg.prune_epochs, label="prune fine-tune")
    else:
        ctx.notes.append("pruning skipped (--sparse 0)")
    return _float_row(ctx, ctx.model)


def stage_quantized(ctx: Context) -> dict:
    ctx.qmodel = _quantize(ctx, ctx.model, ctx.cfg.qat_epochs, "QAT")
    return _quant_row(ctx, ctx.qmodel)


def stage_lowrank(ctx: Context) -> dict:
    if ctx.cfg.lowrank is None:
        ctx.notes.append("low-rank skipped (no --rank)")
        return _quant_row(ctx, ctx.qmodel)
    import copy

    fm, summary = lowrank.apply(copy.deepcopy(ctx.model), ctx.cfg.lowrank, wbits=ctx.cfg.quant.wbits)
    ctx.stage_info["lowrank"] = ctx.lowrank_summary = summary
    skipped = [r["layer"] for r in summary if r["action"] == "skipped"]
    if skipped:
        ctx.notes.append(f"low-rank r={ctx.cfg.lowrank.rank}: skipped {', '.join(skipped)} (factors would not save bytes)")
    if len(skipped) == len(summary):      # nothing factorized: keep the quantized model as it is
        ctx.lowrank_summary = None
        return _quant_row(ctx, ctx.qmodel)
    ctx.model = fm
    ctx.qmodel = _quantize(ctx, fm, ctx.cfg.lowrank_epochs, "low-rank QAT")
    return _quant_row(ctx, ctx.qmodel)


def stage_distilled(ctx: Context) -> dict:
    if ctx.teacher is None:
        ctx.notes.append("distillation skipped (no --teacher): the distilled row repeats the low-rank one")
    else:
        ctx.stage_info["train"] = _train(ctx, ctx.qmodel, ctx.cfg.distill_epochs, label="distill")
    return _quant_row(ctx, ctx.qmodel)


STAGES: list[tuple[str, Stage]] = [
    ("original", stage_original),
    ("pruned", stage_pruned),
    ("quantized", stage_quantized),
    ("low-rank", stage_lowrank),
    ("distilled", stage_distilled),
]


# ------------------------------------------------------------------ measuring a stage
def _float_row(ctx: Context, model: nn.Module) -> dict:
    s = model_stats(model, (1, *FEATURE_SHAPE))
    return {"accuracy": _accuracy(ctx, model), "weight_bytes": _float_weight_bytes(model),
            "activation_bytes": 4 * 2 * s["peak_activation_elems"], "activation_source": "estimate: 2 x largest fp32 tensor",
            "code_bytes": None, "macs": s["macs"], "params": s["params"]}


def _quant_row(ctx: Context, qmodel: nn.Module) -> dict:
    from .measure import measure_quantized

    return {"accuracy": _accuracy(ctx, qmodel), **measure_quantized(qmodel, ctx)}


# ------------------------------------------------------------------ running it
def check_target_fit(cfg: PipelineConfig) -> None:
    """Before any training: the target profile exists, the RAM budget fits its SRAM, and the model can
    fit its flash even at best (every prunable unit cut as asked, weights at --wbits)."""
    if not cfg.target:
        return
    from ..hw.profiles import load_profile
    from ..models import resolve_model

    prof = load_profile(cfg.target)
    sram, flash = prof.value("sram_bytes"), prof.value("flash_bytes")
    if cfg.ram is not None and sram is not None and cfg.ram > sram:
        raise PqlrError(f"--ram {cfg.ram} B exceeds the SRAM of {prof.name} ({int(sram)} B)")
    params = sum(p.numel() for p in resolve_model(cfg.model, 12, seed=0).parameters())
    best = params * (1.0 - cfg.prune.sparse) * min([cfg.quant.wbits, *(cfg.quant.per_layer_wbits or {}).values()]) / 8
    if flash is not None and best > flash:
        raise PqlrError(f"{cfg.model} needs at least {int(best):,} B of weights after compression; "
                        f"{prof.name} has {int(flash):,} B of flash")


def run_pipeline(cfg: PipelineConfig, *, resume: bool = False, log: Callable[[str], None] = print) -> dict:
    """Run every stage (or continue after the last finished one) and return the report dict."""
    from ..data import load_dataset
    from .checkpoint import load_stage, save_stage
    from .report import build_report

    t0 = time.time()
    check_target_fit(cfg)
    data = load_dataset(cfg.dataset, words=list(cfg.words) if cfg.words else None,
                        holdout_speaker=cfg.holdout_speaker, seed=cfg.seed, per_class=cfg.per_class,
                        progress=cfg.progress)
    log(f"data: {data.name}, {len(data.classes)} classes, train/val/test = "
        f"{len(data.train)}/{len(data.val)}/{len(data.test)}")
    ctx = Context(cfg, data)
    teacher_row = None
    if cfg.teacher:
        ctx.teacher, teacher_row = get_teacher(cfg, data, log=log)
    stage_dir = cfg.out_dir / "stages"
    rows: list[dict] = []
    for i, (name, fn) in enumerate(STAGES):
        if resume:
            row = load_stage(stage_dir, name, ctx)
            if row is not None:
                log(f"[{name}] restored from {stage_dir} (finished before)")
                rows.append(row)
                continue
            resume = False      # stages after the first unfinished one are all re-run
        torch.manual_seed(cfg.seed + 1000 * (i + 1))
        ctx.stage_info = {}
        t = time.time()
        log(f"[{name}] running")
        row = fn(ctx)
        row = {"name": name, **row, "seconds": round(time.time() - t, 1), "details": ctx.stage_info}
        save_stage(stage_dir, name, ctx, row)
        log(f"[{name}] accuracy {100 * row['accuracy']:.2f}%  weights {row['weight_bytes']:,} B  "
            f"({row['seconds']:.0f} s)")
        rows.append(row)
    return build_report(cfg, ctx, rows, teacher_row, seconds=time.time() - t0, log=log)
