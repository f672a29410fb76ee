"""The PQLR stages: an explicit list of named stages (original -> pruned -> quantized -> low-rank
-> distilled), each a function of the run context that trains/cuts/quantizes and measures itself.

Every stage works on the captured model (pqlr.capture.GraphModel): the same graph for any model a
user brings, so no stage knows PQLR's own model classes."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Callable

import torch
from torch import nn

from ..capture import GraphModel
from ..capture.stats import graph_stats
from ..compress import lowrank, prune
from ..compress.distill import distill_loss_fn
from ..compress.groups import find_groups
from ..compress.quantize import QuantConfig, quantize_
from .config import PipelineConfig
from ..compress.mixed import MixedConfig, plan_mixed
from ..data import FeatureConfig
from ..train import DEFAULT_CACHE, TrainConfig, train
from .measure import measure_quantized, score


@dataclass
class Context:
    """What the stages share: data, the current float model, its quantized twin, the teacher."""
    cfg: PipelineConfig
    data: object
    task: str = "classify"
    model: GraphModel | None = None
    qmodel: nn.Module | None = None
    teacher: nn.Module | None = None
    notes: list[str] = field(default_factory=list)
    stage_info: dict = field(default_factory=dict)
    qmodel_cfg: QuantConfig | None = None
    lowered: tuple | None = None                  # (qmodel, Graph, code bytes) last measured


Stage = Callable[[Context], dict]


# ------------------------------------------------------------------ training helpers
FINETUNE_WARMUP_EPOCHS = 0.2   # fine-tuning starts from a trained model: a short warmup suffices


def train_phase(ctx: Context, model: nn.Module, epochs: int, *, extra_loss=None, finetune: bool = True) -> dict:
    """Train `model` in place (with the distillation loss when there is a teacher). Fine-tuning phases
    use the gentler finetune_lr and a short warmup; the student's first training uses lr."""
    if epochs == 0:
        return {"epochs": 0}
    cfg = ctx.cfg
    loss_fn = distill_loss_fn(ctx.teacher, cfg.distill, task=ctx.task) if ctx.teacher is not None else None
    lr = (cfg.finetune_lr if cfg.finetune_lr is not None else cfg.lr / 3) if finetune else cfg.lr
    warmup = FINETUNE_WARMUP_EPOCHS if finetune else TrainConfig.warmup_epochs
    tc = TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=lr, warmup_epochs=warmup, seed=cfg.seed,
                     device=cfg.device, augment=cfg.augment, task=ctx.task)
    res = train(model, ctx.data, tc, loss_fn=loss_fn, extra_loss=extra_loss, progress=ctx.cfg.progress)
    return {"epochs": epochs, "val_metric": res.accuracy, "seconds": res.seconds}


def calib_batches(ctx: Context, n: int) -> list[torch.Tensor]:
    """The first `n` training samples of a seeded shuffle, as input batches (B, *sample shape)."""
    x, _ = DEFAULT_CACHE.get(ctx.data.train, FeatureConfig())
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(ctx.cfg.seed))[:n]
    return [x[idx[i:i + ctx.cfg.batch_size]] for i in range(0, len(idx), ctx.cfg.batch_size)]


def _quantize(ctx: Context, float_model: GraphModel, epochs: int, label: str) -> nn.Module:
    qcfg = _quant_cfg(ctx, float_model)
    q = quantize_(copy.deepcopy(float_model), qcfg, step="prepare", calib=calib_batches(ctx, qcfg.calib))
    ctx.qmodel_cfg = qcfg
    if ctx.cfg.quant.method != "ptq":
        ctx.stage_info.setdefault("train", {})[label] = train_phase(ctx, q, epochs)
    return q


def _quant_cfg(ctx: Context, model: GraphModel) -> QuantConfig:
    if ctx.cfg.flash is None:
        return ctx.cfg.quant
    calib = calib_batches(ctx, min(ctx.cfg.quant.calib, 64))
    probe = quantize_(copy.deepcopy(model), ctx.cfg.quant, step="prepare", calib=calib)
    bits, table = plan_mixed(probe, calib, MixedConfig(flash=ctx.cfg.flash))
    ctx.stage_info["mixed_precision"] = table
    return replace(ctx.cfg.quant, per_layer_wbits=bits)


# ------------------------------------------------------------------ the stages
def stage_original(ctx: Context) -> dict:
    """Train the captured student in float, with the slimming penalty (network slimming's sparsity
    training) on its prunable groups."""
    cfg = ctx.cfg
    penalty = None
    if cfg.prune.method == "structured" and cfg.prune.sparse > 0:
        groups = find_groups(ctx.model)
        if groups:
            penalty = prune.SlimmingPenalty(ctx.model, groups, cfg.prune.l1)
    ctx.stage_info["train"] = train_phase(ctx, ctx.model, cfg.epochs, extra_loss=penalty, finetune=False)
    return float_row(ctx, ctx.model)


def stage_pruned(ctx: Context) -> dict:
    cfg = ctx.cfg
    if cfg.prune.sparse > 0:
        ctx.model, summary = prune.apply(ctx.model, cfg.prune)
        ctx.stage_info["prune"] = summary
        if summary.get("note"):
            ctx.notes.append(f"pruning: {summary['note']}")
        ctx.stage_info["train"] = train_phase(ctx, ctx.model, cfg.prune_epochs)
    else:
        ctx.notes.append("pruning skipped (--sparse 0)")
    return float_row(ctx, ctx.model)


def stage_quantized(ctx: Context) -> dict:
    ctx.qmodel = _quantize(ctx, ctx.model, ctx.cfg.qat_epochs, "QAT")
    return quant_row(ctx, ctx.qmodel)


def stage_lowrank(ctx: Context) -> dict:
    if ctx.cfg.lowrank is None:
        ctx.notes.append("low-rank skipped (no --rank)")
        return quant_row(ctx, ctx.qmodel)
    fm, summary = lowrank.apply(copy.deepcopy(ctx.model), ctx.cfg.lowrank, wbits=ctx.cfg.quant.wbits)
    ctx.stage_info["lowrank"] = summary
    skipped = [r["layer"] for r in summary if r["action"] == "skipped"]
    if skipped:
        ctx.notes.append(f"low-rank r={ctx.cfg.lowrank.rank}: skipped {', '.join(skipped)} (factors would not save bytes)")
    if len(skipped) == len(summary):      # nothing factorized: keep the quantized model as it is
        if not summary:
            ctx.notes.append("low-rank: no Linear or 1x1 convolution to factorize")
        return quant_row(ctx, ctx.qmodel)
    ctx.model = fm
    ctx.qmodel = _quantize(ctx, fm, ctx.cfg.lowrank_epochs, "low-rank QAT")
    return quant_row(ctx, ctx.qmodel)


def stage_distilled(ctx: Context) -> dict:
    if ctx.teacher is None:
        ctx.notes.append("distillation skipped (no --teacher): the distilled row repeats the low-rank one")
    else:
        ctx.stage_info["train"] = train_phase(ctx, ctx.qmodel, ctx.cfg.distill_epochs)
    return quant_row(ctx, ctx.qmodel)


STAGES: list[tuple[str, Stage]] = [
    ("original", stage_original),
    ("pruned", stage_pruned),
    ("quantized", stage_quantized),
    ("low-rank", stage_lowrank),
    ("distilled", stage_distilled),
]


# ------------------------------------------------------------------ measuring a stage
def float_row(ctx: Context, model: GraphModel) -> dict:
    s = graph_stats(model)
    return {"accuracy": score(ctx, model), "weight_bytes": 4 * s["params"],
            "activation_bytes": 4 * 2 * s["peak_activation_elems"], "activation_source": "estimate: 2 x largest fp32 tensor",
            "code_bytes": None, "macs": s["macs"], "params": s["params"]}


def quant_row(ctx: Context, qmodel: nn.Module) -> dict:
    return {"accuracy": score(ctx, qmodel), **measure_quantized(qmodel, ctx)}
