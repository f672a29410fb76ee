"""The float training loop: AdamW/SGD, warmup + cosine per step, optional augmentation, mixup and
weight EMA, pluggable loss (distillation) and regulariser (network slimming), resumable checkpoints,
DDP under torchrun.

Data is audio (KwsData: clips through the front end, optionally augmented) or tensors (TensorData:
x (N, *shape) used as it is, never augmented). TrainConfig.task "anomaly" trains an autoencoder on
normal samples only with the mean squared reconstruction error, and validates with ROC AUC.

Deterministic on CPU for a given seed (deterministic algorithms are on while training): the
shuffling order is a function of (seed, epoch), the augmentation of (seed, epoch, step), mixup of
(seed, epoch, step, rank), and the global RNG (dropout) state and the weight EMA are checkpointed,
so a run resumed from epoch k ends with the same weights as one that never stopped.
"""
from __future__ import annotations

import math
import sys
import time
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..data import Augment, AugmentConfig, FeatureConfig
from ..errors import PqlrError
from . import ddp
from .batches import (DEFAULT_CACHE, AugmentedBatches, CachedBatches, FeatureCache, dataset_labels,
                      epoch_batches, is_tensor_data, iterate, steps_per_epoch)
from .checkpoint import clear_checkpoints, load_checkpoint, save_checkpoint
from .config import TrainConfig, TrainResult
from .ema import WeightEma
from .evaluate import check_input_shape, evaluate, logits_of, reconstruction_errors

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]   # (outputs, labels, inputs) -> loss


def reconstruction_loss(outputs: torch.Tensor, labels: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """Mean squared reconstruction error of a batch: outputs (B, ...) vs inputs (B, ...) (labels unused)."""
    if outputs.shape[0] != inputs.shape[0] or outputs[0].numel() != inputs[0].numel():
        raise PqlrError(f"an anomaly model must reconstruct its input: output {tuple(outputs.shape[1:])} "
                        f"for input {tuple(inputs.shape[1:])}")
    return F.mse_loss(outputs.reshape(inputs.shape), inputs)


def make_optimizer(params: list[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on weight matrices/kernels only; never on biases, BN/LN gains, or other 1-D params."""
    decay = [p for p in params if p.requires_grad and p.ndim > 1]
    plain = [p for p in params if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": plain, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, nesterov=True)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def lr_factor(step: int, total: int, warmup: int, cfg: TrainConfig) -> float:
    """Multiplier of cfg.lr for optimizer step `step` (0-based) of `total`."""
    if step < warmup:
        return (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))     # 0 -> 1 over the decay phase
    lo = cfg.min_lr_ratio
    if cfg.schedule == "cosine":
        return lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * p))
    if cfg.schedule == "linear":
        return 1.0 - (1.0 - lo) * p
    return 1.0


def _states(model, loss_fn, opt, sched, ema) -> dict:
    s = {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
         "rng": {"torch": torch.get_rng_state()}}
    if ema is not None:
        s["ema"] = ema.state_dict()
    if torch.cuda.is_available():
        s["rng"]["cuda"] = torch.cuda.get_rng_state_all()
    if isinstance(loss_fn, nn.Module):
        s["loss_fn"] = loss_fn.state_dict()
    return s


def _restore(states: dict, model, loss_fn, opt, sched, ema) -> None:
    model.load_state_dict(states["model"])
    if ema is not None:
        ema.load_state_dict(states["ema"])
    opt.load_state_dict(states["optimizer"])
    sched.load_state_dict(states["scheduler"])
    torch.set_rng_state(states["rng"]["torch"])
    if "cuda" in states["rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["rng"]["cuda"])
    if isinstance(loss_fn, nn.Module) and "loss_fn" in states:
        loss_fn.load_state_dict(states["loss_fn"])


class _Source:
    """The training batches of each epoch: cached features (or tensor data as it is), or augmented
    waves through the front end."""

    def __init__(self, data, cfg: TrainConfig, features: FeatureConfig, cache: FeatureCache, augment_config, d,
                 progress: bool):
        self.data, self.cfg, self.features, self.d = data, cfg, features, d
        self.augmenting = cfg.augment and not is_tensor_data(data)
        if cfg.augment and not self.augmenting and progress and d.main:
            print(f"note: {getattr(data, 'name', 'dataset')} is tensor data (not audio clips): waveform "
                  f"augmentation skipped", file=sys.stderr)
        if self.augmenting:
            acfg = augment_config or AugmentConfig(noise_dir=(getattr(data, "info", None) or {}).get("noise_dir"))
            self.augment = Augment(acfg, sample_rate=features.sample_rate)
            self.labels = dataset_labels(data.train)
        else:
            self.x, self.y = cache.get(data.train, features)

    def epoch(self, epoch: int):
        cfg, d = self.cfg, self.d
        plan = epoch_batches(len(self.data.train), cfg.batch_size, cfg.seed, epoch, d.rank, d.world)
        if self.augmenting:
            return AugmentedBatches(self.data.train, plan, self.labels, self.features, self.augment, cfg.seed, epoch)
        return CachedBatches(self.x, self.y, plan)


def _resume_or_clear(checkpoint_dir, resume: bool, cfg: TrainConfig, d, model, loss_fn, opt, sched, ema):
    """-> (first epoch to run, history so far). A fresh run deletes old checkpoints in the folder."""
    if not resume:
        if checkpoint_dir is not None and d.main:
            clear_checkpoints(checkpoint_dir)
        return 0, []
    if checkpoint_dir is None:
        raise PqlrError("resume=True needs a checkpoint_dir")
    found = load_checkpoint(checkpoint_dir)
    if found is None:
        return 0, []
    start, states, meta = found
    if meta.get("config") != cfg.to_dict():
        raise PqlrError(f"{checkpoint_dir}: checkpoint was made with a different TrainConfig; "
                        "resume with the same settings or use a new directory")
    _restore(states, model, loss_fn, opt, sched, ema)
    return start, meta.get("history", [])


def mixup_plan(cfg: TrainConfig, epoch: int, step: int, rank: int, b: int) -> tuple[float, torch.Tensor]:
    """(lambda ~ Beta(a, a), partner permutation (B,)) of one step, seeded by (seed, epoch, step, rank)."""
    rng = np.random.default_rng([cfg.seed, epoch, step, rank])
    return float(rng.beta(cfg.mixup, cfg.mixup)), torch.from_numpy(rng.permutation(b))


def _train_epoch(net, model, batches, step_loss, extra_loss, opt, sched, extra_params, cfg, d, epoch, bar,
                 ema) -> list:
    """One pass over `batches`; -> [sum of loss * B, correct (classify), B] on this rank."""
    params = list(model.parameters()) + extra_params
    sums = [0.0, 0.0, 0.0]
    net.train()
    for step, (x, y) in enumerate(iterate(batches, cfg.num_workers)):
        x, y = x.to(d.device), y.to(d.device)
        if cfg.mixup > 0:                                   # x = lam x + (1 - lam) x[perm], both targets weighted
            lam, perm = mixup_plan(cfg, epoch, step, d.rank, len(y))
            perm = perm.to(d.device)
            x = lam * x + (1.0 - lam) * x[perm]
            logits = net(x)                                 # (B, C)
            loss = lam * step_loss(logits, y, x) + (1.0 - lam) * step_loss(logits, y[perm], x)
        else:
            logits = net(x)                                 # (B, C)
            loss = step_loss(logits, y, x)
        if extra_loss is not None:
            loss = loss + extra_loss(model)
        if not torch.isfinite(loss):
            raise PqlrError(f"training diverged: loss {float(loss)} at epoch {epoch + 1} step {step + 1} "
                            f"(lower the learning rate, now {cfg.lr})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        ddp.average_grads(extra_params, d)
        if cfg.grad_clip is not None:
            nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        opt.step()
        sched.step()
        if ema is not None:
            ema.update(model)
        sums[0] += float(loss.detach()) * len(y)
        if cfg.task == "classify":
            sums[1] += float((logits.detach().argmax(1) == y).sum())
        sums[2] += len(y)
        bar.update(1)
        if step % cfg.log_every == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}", lr=f"{sched.get_last_lr()[0]:.2e}")
    return sums


def check_task(data, cfg: TrainConfig) -> None:
    """The dataset's task must be the config's; an anomaly training split holds normal samples only."""
    have = getattr(data, "task", "classify")
    name = getattr(data, "name", "dataset")
    if have != cfg.task:
        raise PqlrError(f"dataset {name} is a {have} set but TrainConfig.task is {cfg.task} "
                        f"(use --task {have}, or a dataset made for {cfg.task})")
    if cfg.task == "anomaly":
        bad = int((dataset_labels(data.train) != 0).sum())
        if bad:
            raise PqlrError(f"training split of {name} holds {bad} anomalous sample(s) (label != 0); an anomaly "
                            f"model trains on normal samples only (put anomalies in x_val/x_test)")


def _validate(model: nn.Module, split, features: FeatureConfig, cfg: TrainConfig, cache) -> dict:
    """-> {val_acc: accuracy or ROC AUC (None when the anomaly val split lacks a class), val_loss}."""
    if cfg.task == "anomaly" and len(set(dataset_labels(split).tolist())) < 2:
        x, _ = cache.get(split, features)
        err = reconstruction_errors(logits_of(model, x, cfg.eval_batch_size), x)
        return {"val_acc": None, "val_loss": float(err.mean())}
    ev = evaluate(model, split, features, cfg.eval_batch_size, cache, task=cfg.task)
    return {"val_acc": ev.accuracy, "val_loss": ev.loss}


def train(model: nn.Module, data, cfg: TrainConfig = TrainConfig(), *, features: FeatureConfig = FeatureConfig(),
          loss_fn: LossFn | None = None, extra_loss: Callable[[nn.Module], torch.Tensor] | None = None,
          on_epoch: Callable[[dict], None] | None = None, checkpoint_dir: str | None = None,
          resume: bool = False, progress: bool = True, augment_config=None,
          cache: FeatureCache | None = None) -> TrainResult:
    """Train `model` in place on `data.train` (a KwsData or TensorData); validate on `data.val` after
    every epoch (accuracy; ROC AUC for cfg.task "anomaly", whose training split must be all normal).

    loss_fn(outputs (B, C) or reconstructions (B, ...), labels (B,), inputs (B, 1, frames, feats) or
    (B, *input_shape)) replaces the default loss (cross-entropy; anomaly: mean squared reconstruction
    error); an nn.Module loss_fn has its parameters trained and checkpointed too. extra_loss(model)
    is added to every step's loss. on_epoch(record) gets the epoch's history record (dict).
    Augmentation (audio only) uses `augment_config` (default: AugmentConfig with the dataset's noise
    folder, if any)."""
    if len(data.train) < 2:
        raise PqlrError(f"training split of {getattr(data, 'name', 'dataset')} has {len(data.train)} items; need >= 2")
    check_task(data, cfg)
    if not is_tensor_data(data):
        check_input_shape(model, features)
    d = ddp.setup(cfg.device)
    cache = cache or DEFAULT_CACHE
    started = time.time()
    prev_det = torch.are_deterministic_algorithms_enabled()
    if d.device == "cpu":      # free on CPU; on CUDA it would need CUBLAS_WORKSPACE_CONFIG set before start-up
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        torch.manual_seed(cfg.seed)                  # dropout; shuffling and augmentation have their own seeds
        model.to(d.device)
        extra_params = []
        if isinstance(loss_fn, nn.Module):
            loss_fn.to(d.device)
            extra_params = list(loss_fn.parameters())
        opt = make_optimizer(list(model.parameters()) + extra_params, cfg)
        spe = steps_per_epoch(len(data.train), cfg.batch_size, d.world)
        total, warm = cfg.epochs * spe, int(round(cfg.warmup_epochs * spe))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, warm, cfg))
        ema = WeightEma(model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        start, history = _resume_or_clear(checkpoint_dir, resume, cfg, d, model, loss_fn, opt, sched, ema)
        net = ddp.wrap(model, d)
        if cfg.task == "anomaly":
            step_loss = loss_fn or reconstruction_loss
        else:
            step_loss = loss_fn or (lambda logits, y, x: F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing))
        source = _Source(data, cfg, features, cache, augment_config, d, progress)
        metric = "roc_auc" if cfg.task == "anomaly" else "accuracy"
        for epoch in range(start, cfg.epochs):
            t0 = time.time()
            batches = source.epoch(epoch)
            with tqdm(total=len(batches), desc=f"epoch {epoch + 1}/{cfg.epochs}", file=sys.stderr, leave=False,
                      disable=not (progress and d.main and sys.stderr.isatty())) as bar:
                sums = _train_epoch(net, model, batches, step_loss, extra_loss, opt, sched, extra_params,
                                    cfg, d, epoch, bar, ema)
            ddp.sync_buffers(model, d)
            loss_sum, correct, count = ddp.all_sum(sums, d, d.device)
            rec = {"epoch": epoch + 1, "lr": sched.get_last_lr()[0], "loss": loss_sum / count,
                   "train_acc": correct / count if cfg.task == "classify" else None, "val_acc": None,
                   "val_loss": None, "val_metric": metric}
            if len(data.val):
                rec.update(_validate(model if ema is None else ema.module, data.val, features, cfg, cache))
            rec["seconds"] = time.time() - t0
            history.append(rec)
            if d.main and checkpoint_dir is not None:
                save_checkpoint(checkpoint_dir, epoch + 1, _states(model, loss_fn, opt, sched, ema),
                                {"config": cfg.to_dict(), "history": history})
            if d.main and progress:
                va = "-" if rec["val_acc"] is None else f"{rec['val_acc']:.4f}"
                ta = "" if rec["train_acc"] is None else f"  train_acc {rec['train_acc']:.4f}"
                vname = "val_acc" if metric == "accuracy" else f"val_{metric}"
                print(f"epoch {epoch + 1}/{cfg.epochs}  loss {rec['loss']:.4f}{ta}  {vname} {va}  "
                      f"{rec['seconds']:.1f}s", file=sys.stderr)
            if on_epoch is not None:
                on_epoch(rec)
        if ema is not None:
            ema.copy_to(model)                      # the averaged weights are the result
        ddp.barrier(d)
    finally:
        torch.use_deterministic_algorithms(prev_det)
    last = history[-1] if history else {}
    val = last.get("val_acc")
    return TrainResult(accuracy=float("nan") if val is None else val, loss=last.get("loss", float("nan")),
                       epochs=len(history), seconds=time.time() - started, history=history)
