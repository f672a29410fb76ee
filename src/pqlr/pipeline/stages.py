"""The PQLR stages: an explicit list of named stages (original -> pruned -> quantized -> low-rank
-> distilled), each a function of the run context that trains/cuts/quantizes and measures itself.

Every stage works on the captured model (pqlr.capture.GraphModel): the same graph for any model a
user brings, so no stage knows PQLR's own model classes.

Each compressing stage obeys the accuracy budget (pipeline/budget.py): it lists, in order, the
settings it can fall back to when the one asked for loses too much on the validation split (its
"ladder": less sparsity; PTQ or more QAT epochs, 8-bit weights in the most sensitive layer, in
the first/last layers, everywhere, 8-bit activations; a longer low-rank fine-tune, the worst
approximated layer left whole, a higher rank, no factorization; without distillation), and budget.choose runs
them until one is within the budget."""
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
from ..compress.mixed import MixedConfig, plan_mixed, sensitivity
from ..data import FeatureConfig
from ..train import DEFAULT_CACHE, TrainConfig, train
from . import budget as B
from .measure import measure_quantized, score, val_score


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
    val: float | None = None                      # the current model's validation metric (budget input)
    quant: QuantConfig | None = None              # the quantization settings the quantized stage chose
    log: Callable[[str], None] = print


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


def _quantize(ctx: Context, float_model: GraphModel, epochs: int, info: dict, base: QuantConfig | None = None):
    """-> (fake-quant model, its QuantConfig): calibrated, then QAT for `epochs` unless PTQ."""
    qcfg = _quant_cfg(ctx, float_model, base or ctx.quant or ctx.cfg.quant)
    q = quantize_(copy.deepcopy(float_model), qcfg, step="prepare", calib=calib_batches(ctx, qcfg.calib))
    if qcfg.method != "ptq":
        info["QAT"] = train_phase(ctx, q, epochs)
    return q, qcfg


def _quant_cfg(ctx: Context, model: GraphModel, base: QuantConfig) -> QuantConfig:
    if ctx.cfg.flash is None:
        return base
    probe, calib = _probe(ctx, model, base)
    bits, table = plan_mixed(probe, calib, MixedConfig(flash=ctx.cfg.flash))
    ctx.stage_info["mixed_precision"] = table
    return replace(base, per_layer_wbits=bits)


def _probe(ctx: Context, model: GraphModel, qcfg: QuantConfig):
    """-> (a calibrated fake-quant copy of `model`, its calibration batches): what per-layer bit
    decisions (mixed precision, the most sensitive layer) measure on."""
    calib = calib_batches(ctx, min(qcfg.calib, 64))
    return quantize_(copy.deepcopy(model), qcfg, step="prepare", calib=calib), calib


def _choose(ctx: Context, stage: str, tries: list, budget: B.BudgetConfig | None = None) -> B.Attempt:
    """budget.choose against the current model's validation metric; the record goes to the report."""
    chosen, record = B.choose(budget or ctx.cfg.budget, stage, ctx.val, tries, len(ctx.data.val), log=ctx.log)
    ctx.stage_info["budget"] = record
    ctx.val = chosen.val if chosen.val is not None else ctx.val
    return chosen


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
    ctx.val = val_score(ctx, ctx.model)
    return float_row(ctx, ctx.model)


def stage_pruned(ctx: Context) -> dict:
    cfg = ctx.cfg
    if cfg.prune.sparse <= 0:
        ctx.notes.append("pruning skipped (--sparse 0)")
        return float_row(ctx, ctx.model)
    base = ctx.model

    def cut(sparse: float):
        def run() -> B.Attempt:
            model, summary = prune.apply(copy.deepcopy(base), replace(cfg.prune, sparse=sparse))
            info = {"prune": summary, "train": train_phase(ctx, model, cfg.prune_epochs)}
            return B.Attempt(f"sparse {sparse:g}", val_score(ctx, model), (model, info))
        return run

    def keep() -> B.Attempt:
        return B.Attempt("no pruning", ctx.val, (base, {}))

    ladder = [cut(cfg.prune.sparse)]
    if cfg.prune.method == "structured":                 # less sparsity; unstructured/2:4 only all or nothing
        ladder += [cut(round(cfg.prune.sparse * f, 3)) for f in (0.75, 0.5, 0.25)]
    chosen = _choose(ctx, "pruned", ladder + [keep])
    ctx.model, info = chosen.state
    ctx.stage_info.update(info)
    note = info.get("prune", {}).get("note")
    if note:
        ctx.notes.append(f"pruning: {note}")
    if chosen.label != f"sparse {cfg.prune.sparse:g}":
        ctx.notes.append(f"pruning backed off to {chosen.label} (accuracy budget; --force pruned keeps the cut asked for)")
    return float_row(ctx, ctx.model)


def stage_quantized(ctx: Context) -> dict:
    cfg = ctx.cfg
    asked, epochs = cfg.quant, cfg.qat_epochs
    qat = asked.method != "ptq" and epochs > 0
    first = f"QAT {epochs} epochs" if qat else "PTQ"
    last: dict = {}                                       # the latest QAT model, to train on from there

    def quantize(label: str, qcfg: QuantConfig, ep: int):
        def run() -> B.Attempt:
            info: dict = {}
            q, used = _quantize(ctx, ctx.model, ep, info, base=qcfg)
            if label == first and qat:
                last.update(model=q, cfg=used, info=info, epochs=ep)
            return B.Attempt(label, val_score(ctx, q), (q, used, info))
        return run

    more = max(epochs, 1)
    lsq = replace(asked, method="lsq+")
    ladder = [quantize(first, asked, epochs)]
    if qat:
        # QAT was asked for and lost too much: at 8 bits calibration alone is usually lossless and takes
        # seconds, so PTQ comes first; below 8 bits PTQ rarely holds, so QAT goes on first
        # (bench/results/budget.json, FSDD INT8 on the unseen speaker: QAT 2 epochs 82.0%, PTQ 92.2%)
        longer = [_train_on(ctx, last, total, lambda q, info: (q, last["cfg"], info))
                  for total in (epochs + more, epochs + 3 * more)]
        ptq = quantize("PTQ", replace(asked, method="ptq"), 0)
        eight = cfg.flash is None and min([asked.wbits, asked.abits, *(asked.per_layer_wbits or {}).values()]) >= 8
        ladder += [ptq, *longer] if eight else [*longer, ptq]
    else:
        ladder += [quantize(f"QAT {more} epochs", lsq, more), quantize(f"QAT {3 * more} epochs", lsq, 3 * more)]
    if cfg.flash is None:                                 # a flash budget fixes the bits: never raise them
        if asked.wbits < 8:
            ladder.append(lambda: _most_sensitive(ctx, asked, quantize, more))
        if asked.wbits < 8 and not asked.first_last_8bit:
            ladder.append(quantize("first and last layers at 8-bit weights", replace(lsq, first_last_8bit=True), more))
        if asked.wbits < 8:
            ladder.append(quantize("8-bit weights", replace(lsq, wbits=8, per_layer_wbits=None), more))
        if asked.abits < 8:
            ladder.append(quantize("8-bit weights and activations",
                                   replace(lsq, wbits=max(asked.wbits, 8), abits=8, per_layer_wbits=None), more))
    chosen = _choose(ctx, "quantized", ladder)
    ctx.qmodel, ctx.qmodel_cfg, info = chosen.state
    ctx.stage_info["train"] = info
    # the settings the later stages re-quantize with; a flash budget re-plans the per-layer bits
    ctx.quant = ctx.qmodel_cfg if cfg.flash is None else replace(ctx.qmodel_cfg, per_layer_wbits=asked.per_layer_wbits)
    if chosen.label != first:
        ctx.notes.append(f"quantization backed off to {chosen.label} (accuracy budget; --force quantized keeps "
                         "the settings asked for)")
    return quant_row(ctx, ctx.qmodel)


def _most_sensitive(ctx: Context, asked: QuantConfig, quantize: Callable, epochs: int) -> B.Attempt:
    """The try that gives 8-bit weights to the one layer whose logits SQNR gains most from them
    (compress/mixed.sensitivity on a calibrated copy), everything else as asked."""
    probe, calib = _probe(ctx, ctx.model, replace(asked, method="ptq"))
    sens = sensitivity(probe, calib, bits=(8, asked.wbits))
    layer = max(sens, key=lambda name: sens[name][8] - sens[name][asked.wbits])
    bits = {**(asked.per_layer_wbits or {}), layer: 8}
    return quantize(f"8-bit weights in {layer} (most sensitive)", replace(asked, method="lsq+", per_layer_wbits=bits),
                    epochs)()


def _bits_after_factorizing(q: QuantConfig, summary: list[dict]) -> QuantConfig:
    """Per-layer bits carried onto a factorized layer's two factors (`<layer>.first`, `.second`)."""
    if not q.per_layer_wbits:
        return q
    done = {r["layer"] for r in summary if r["action"] == "factorized"}
    bits = {}
    for layer, b in q.per_layer_wbits.items():
        for name in ((f"{layer}.first", f"{layer}.second") if layer in done else (layer,)):
            bits[name] = b
    return replace(q, per_layer_wbits=bits)


def stage_lowrank(ctx: Context) -> dict:
    cfg = ctx.cfg
    if cfg.lowrank is None:
        ctx.notes.append("low-rank skipped (no --rank)")
        return quant_row(ctx, ctx.qmodel)
    base_float, base_q, base_cfg = ctx.model, ctx.qmodel, ctx.qmodel_cfg
    chosen_q = ctx.quant or cfg.quant
    wbits = chosen_q.wbits
    # the quantized stage's bits; QAT fine-tuning after the cut whenever QAT was asked for or chosen
    requant = replace(chosen_q, method="lsq+" if "lsq+" in (cfg.quant.method, chosen_q.method) else "ptq")

    def factorize(lr: lowrank.LowRankConfig, label: str):
        def run() -> B.Attempt:
            fm, summary = lowrank.apply(copy.deepcopy(base_float), lr, wbits=wbits)
            info: dict = {"lowrank": summary}
            if lr == cfg.lowrank:
                asked_summary[:] = summary
            if all(r["action"] == "skipped" for r in summary):   # nothing saves bytes: the input as it is
                return B.Attempt(label, ctx.val, (base_float, base_q, base_cfg, info))
            q, used = _quantize(ctx, fm, cfg.lowrank_epochs, info, base=_bits_after_factorizing(requant, summary))
            last.update(model=q, cfg=used, info=info, epochs=cfg.lowrank_epochs, float=fm, label=label)
            return B.Attempt(label, val_score(ctx, q), (fm, q, used, info))
        return run

    def keep() -> B.Attempt:
        return B.Attempt("no factorization", ctx.val, (base_float, base_q, base_cfg, {}))

    last: dict = {}                                       # the latest factorized QAT model
    asked_summary: list[dict] = []                        # what the asked rank did, layer by layer
    ladder = [factorize(cfg.lowrank, _rank_label(cfg.lowrank))]
    if requant.method == "lsq+" and cfg.lowrank_epochs > 0:   # a longer fine-tune before a higher rank
        e = cfg.lowrank_epochs
        ladder += [_train_on(ctx, last, total, lambda q, info: (last["float"], q, last["cfg"], info),
                             prefix=f"{_rank_label(cfg.lowrank)}, ") for total in (2 * e, 4 * e)]
    ladder.append(lambda: _keep_worst_whole(cfg.lowrank, asked_summary, factorize))
    for lr in _weaker_ranks(cfg.lowrank):
        ladder.append(factorize(lr, _rank_label(lr)))
    chosen = _choose(ctx, "low-rank", ladder + [keep])
    ctx.model, ctx.qmodel, ctx.qmodel_cfg, info = chosen.state
    summary = info.get("lowrank")
    if summary is not None:
        ctx.stage_info["lowrank"] = summary
        if "QAT" in info:
            ctx.stage_info["train"] = {"low-rank QAT": info["QAT"]}
        skipped = [r["layer"] for r in summary if r["action"] == "skipped"]
        if not summary:
            ctx.notes.append("low-rank: no Linear or 1x1 convolution to factorize")
        elif skipped:
            ctx.notes.append(f"low-rank {chosen.label}: skipped {', '.join(skipped)} (factors would not save bytes)")
    if chosen.label != _rank_label(cfg.lowrank):
        ctx.notes.append(f"low-rank backed off to {chosen.label} (accuracy budget)")
    return quant_row(ctx, ctx.qmodel)


def _train_on(ctx: Context, last: dict, total: int, state: Callable, prefix: str = "") -> B.Try:
    """A try that trains the latest QAT model (`last`: model, info, epochs) on, to `total` epochs;
    `state(q, info)` is what the stage adopts if it is chosen. Each such try starts where the previous
    one stopped, so a ladder of them costs only the extra epochs."""
    def run() -> B.Attempt:
        q = copy.deepcopy(last["model"])
        info = {**last["info"], f"QAT to {total} epochs": train_phase(ctx, q, total - last["epochs"])}
        last.update(model=q, info=info, epochs=total)
        return B.Attempt(f"{prefix}QAT {total} epochs", val_score(ctx, q), state(q, info))
    return run


def _keep_worst_whole(lr: lowrank.LowRankConfig, summary: list[dict], factorize: Callable) -> B.Attempt | None:
    """The try that leaves whole the one layer the asked rank approximated worst (largest relative
    error of U_r V_r), the others factorized as asked; None when fewer than two layers were factorized."""
    done = [r for r in summary if r["action"] == "factorized"]
    if len(done) < 2:
        return None
    worst = max(done, key=lambda r: r["rel_error"])["layer"]
    return factorize(replace(lr, keep=(*lr.keep, worst)), f"{_rank_label(lr)}, {worst} kept whole")()


def _rank_label(lr: lowrank.LowRankConfig) -> str:
    return f"rank {lr.rank}" if lr.rank is not None else f"energy {lr.energy:g}"


def _weaker_ranks(lr: lowrank.LowRankConfig) -> list[lowrank.LowRankConfig]:
    """Twice and four times the rank (or half and a quarter of the discarded energy)."""
    if lr.rank is not None:
        return [replace(lr, rank=lr.rank * k) for k in (2, 4)]
    return [replace(lr, energy=round(1 - (1 - lr.energy) / k, 6)) for k in (2, 4)]


def stage_distilled(ctx: Context) -> dict:
    if ctx.teacher is None:
        ctx.notes.append("distillation skipped (no --teacher): the distilled row repeats the low-rank one")
        return quant_row(ctx, ctx.qmodel)
    before = ctx.qmodel

    def distill() -> B.Attempt:
        q = copy.deepcopy(before)
        info = {"train": train_phase(ctx, q, ctx.cfg.distill_epochs)}
        return B.Attempt(f"{ctx.cfg.distill_epochs} epochs from the teacher", val_score(ctx, q), (q, info))

    def keep() -> B.Attempt:
        return B.Attempt("without distillation", ctx.val, (before, {}))

    # distillation compresses nothing: any loss reverts it
    budget = replace(ctx.cfg.budget, max_drop=0.0 if ctx.cfg.budget.max_drop is not None else None)
    chosen = _choose(ctx, "distilled", [distill, keep], budget)
    ctx.qmodel, info = chosen.state
    ctx.stage_info.update(info)
    if chosen.label == "without distillation":
        ctx.notes.append("distillation lowered the validation metric: the low-rank model is kept")
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
    return {"accuracy": score(ctx, model), "val_accuracy": ctx.val, "weight_bytes": 4 * s["params"],
            "activation_bytes": 4 * 2 * s["peak_activation_elems"], "activation_source": "estimate: 2 x largest fp32 tensor",
            "code_bytes": None, "macs": s["macs"], "params": s["params"]}


def quant_row(ctx: Context, qmodel: nn.Module) -> dict:
    return {"accuracy": score(ctx, qmodel), "val_accuracy": ctx.val, **measure_quantized(qmodel, ctx)}
