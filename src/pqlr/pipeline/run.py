"""Running the pipeline: check the target fits, load the data, capture the model and prove it can
be deployed (a dry-run lowering, seconds, before any training), then run the stages with per-stage
checkpoints, and write the report.

Every stage is checkpointed atomically into `<out>/stages/`; `resume=True` continues after the
last finished stage. Each stage seeds its own RNGs (seed + stage index), so a resumed run ends
bit-identical to an uninterrupted one."""
from __future__ import annotations

import copy
import time
from typing import Callable

import torch

from ..capture import GraphModel, capture
from ..capture.stats import graph_stats
from ..compress.lower import lower
from ..compress.quantize import quantize_
from ..data import load_dataset
from ..deploy.codegen import generate
from ..deploy.inputs import input_int8
from ..errors import PqlrError
from ..hw.profiles import load_profile
from ..ir.interp import run_graph
from ..models import resolve_model
from .checkpoint import load_stage, save_stage
from .config import PipelineConfig
from .measure import check_outputs
from .report import build_report
from .stages import STAGES, Context, calib_batches
from .teacher import get_teacher


def check_target_ram(cfg: PipelineConfig) -> None:
    """Before anything loads: the target profile exists and the RAM budget fits its SRAM."""
    if not cfg.target:
        return
    prof = load_profile(cfg.target)
    sram = prof.value("sram_bytes")
    if cfg.ram is not None and sram is not None and cfg.ram > sram:
        raise PqlrError(f"--ram {cfg.ram} B exceeds the SRAM of {prof.name} ({int(sram)} B)")


def check_target_fit(cfg: PipelineConfig, model: GraphModel) -> None:
    """Before any training: the model can fit the target's flash even at best (every prunable unit
    cut as asked, weights at --wbits)."""
    if not cfg.target:
        return
    prof = load_profile(cfg.target)
    flash = prof.value("flash_bytes")
    params = graph_stats(model)["params"]
    best = params * (1.0 - cfg.prune.sparse) * min([cfg.quant.wbits, *(cfg.quant.per_layer_wbits or {}).values()]) / 8
    if flash is not None and best > flash:
        raise PqlrError(f"{cfg.model} needs at least {int(best):,} B of weights after compression; "
                        f"{prof.name} has {int(flash):,} B of flash")


def dry_run(model: GraphModel, cfg: PipelineConfig, sample: torch.Tensor) -> None:
    """Quantize (a copy, calibrated on a few real samples), lower, run the integer oracle once and
    generate the C: an unsupported op or shape fails here, naming the layer, before any training."""
    qm = quantize_(copy.deepcopy(model), cfg.quant, step="prepare", calib=[sample])
    g = lower(quantize_(qm, cfg.quant, step="convert"))
    run_graph(g, input_int8(g, sample[:1]))
    generate(g)


def run_pipeline(cfg: PipelineConfig, *, resume: bool = False, log: Callable[[str], None] = print) -> dict:
    """Run every stage (or continue after the last finished one) and return the report dict."""
    t0 = time.time()
    check_target_ram(cfg)                               # an unknown target fails before the data loads
    data = load_dataset(cfg.dataset, words=list(cfg.words) if cfg.words else None,
                        holdout_speaker=cfg.holdout_speaker, seed=cfg.seed, per_class=cfg.per_class,
                        progress=cfg.progress, task=cfg.task, input_shape=cfg.input_shape)
    task = cfg.task or getattr(data, "task", "classify")
    ctx = Context(cfg, data, task=task, log=log)
    model = capture(resolve_model(cfg.model, len(data.classes), data.input_shape, seed=cfg.seed), data.input_shape)
    check_outputs(model, data, task, cfg.model)
    check_target_fit(cfg, model)
    dry_run(model, cfg, calib_batches(ctx, 8)[0])       # an undeployable model fails here, in seconds
    log(f"data: {data.name}, {len(data.classes)} classes, train/val/test = "
        f"{len(data.train)}/{len(data.val)}/{len(data.test)}, samples of shape {tuple(data.input_shape)}")
    s = graph_stats(model)
    log(f"model: {cfg.model} captured ({len(model.graph.nodes)} nodes, {s['params']:,} parameters, "
        f"{s['macs']:,} MACs); deployable (dry-run lowering passed)")
    ctx.model = model
    teacher_row = None
    if cfg.teacher:
        ctx.teacher, teacher_row = get_teacher(cfg, data, task=task, log=log)
    stage_dir = cfg.out_dir / "stages"
    rows: list[dict] = []
    for i, (name, fn) in enumerate(STAGES):
        if resume:
            row = load_stage(stage_dir, name, ctx, lambda n: calib_batches(ctx, n))
            if row is not None:
                log(f"[{name}] restored from {stage_dir} (finished before)")
                ctx.val = row.get("val_accuracy")
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
        val = "" if row.get("val_accuracy") is None else f" (validation {100 * row['val_accuracy']:.2f}%)"
        log(f"[{name}] {'accuracy' if task == 'classify' else 'ROC AUC'} {100 * row['accuracy']:.2f}%{val}  "
            f"weights {row['weight_bytes']:,} B  ({row['seconds']:.0f} s)")
        rows.append(row)
    return build_report(cfg, ctx, rows, teacher_row, seconds=time.time() - t0, log=log)


__all__ = ["run_pipeline", "check_target_ram", "check_target_fit", "dry_run"]
