"""Evaluation of a float model on a split: classification (top-1 accuracy, cross-entropy, confusion
matrix) or anomaly detection (the model is an autoencoder; each sample's score is its mean squared
reconstruction error, and the metric is the ROC AUC with labels 0 = normal, 1 = anomalous).

Splits are audio (features from the front end, via the cache) or tensor splits (x used as it is).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import FeatureConfig
from ..errors import PqlrError
from .batches import DEFAULT_CACHE, FeatureCache, is_tensor_split
from .config import TASKS, EvalResult


def _device_of(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def check_input_shape(model: nn.Module, features: FeatureConfig) -> None:
    """Zoo models record the (frames, feats) they were built for; it must match the front end."""
    shape = getattr(getattr(model, "config", None), "input_shape", None)
    if shape is not None and tuple(shape) != tuple(features.shape):
        raise PqlrError(f"model expects input {tuple(shape)} (frames, features) but the front end "
                        f"gives {tuple(features.shape)}; build the model for {features.shape}")


def task_of(dataset, task: str | None = None) -> str:
    """The explicit task, else the split's own (`TensorSplit.task`), else "classify"."""
    task = task or getattr(dataset, "task", None) or "classify"
    if task not in TASKS:
        raise PqlrError(f"task {task!r} unknown (use {', '.join(TASKS)})")
    return task


def _inputs(model: nn.Module, dataset, features: FeatureConfig, cache: FeatureCache | None):
    """-> (model inputs (N, ...) float32, labels (N,) int64); the front-end shape check is audio only."""
    if len(dataset) == 0:
        raise PqlrError("cannot evaluate on an empty dataset")
    if not is_tensor_split(dataset):
        check_input_shape(model, features)
    return (cache or DEFAULT_CACHE).get(dataset, features)


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Outputs on CPU (N, C logits, or (N, ...) reconstructions) of inputs x (N, ...) such as features
    (N, 1, frames, feats), in eval mode (mode restored after)."""
    device, was_training = _device_of(model), model.training
    model.eval()
    try:
        return torch.cat([model(x[i:i + batch_size].to(device)).float().cpu()
                          for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def reconstruction_errors(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """(N,) mean squared error of each sample's reconstruction; outputs (N, ...) must hold as many
    values per sample as inputs (N, ...) (a flat (N, D) output of a (N, C, T) input is fine)."""
    n = inputs.shape[0]
    if outputs.shape[0] != n or outputs[0].numel() != inputs[0].numel():
        raise PqlrError(f"an anomaly model must reconstruct its input: output {tuple(outputs.shape[1:])} "
                        f"for input {tuple(inputs.shape[1:])}")
    return (outputs.reshape(n, -1).float() - inputs.reshape(n, -1).float()).square().mean(dim=1)


def roc_auc(scores, labels) -> float:
    """ROC AUC of `scores` (N,) (higher = more anomalous) for `labels` (N,) (0 normal, 1 anomalous):
    the probability that an anomalous sample outscores a normal one, ties counted half. Computed from
    ranks (Mann-Whitney U): sorted scores get ranks 1..N, tied scores share their average rank, and
    AUC = (sum of anomalous ranks - n1 (n1 + 1) / 2) / (n1 n0)."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels).reshape(-1)
    if s.shape != y.shape:
        raise PqlrError(f"roc_auc: {s.size} scores but {y.size} labels")
    if not np.isin(y, (0, 1)).all():
        raise PqlrError(f"roc_auc: labels must be 0 (normal) or 1 (anomalous), got {sorted(set(y.tolist()))}")
    if not np.isfinite(s).all():
        raise PqlrError("roc_auc: scores contain NaN/inf")
    n1 = int((y == 1).sum())
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        raise PqlrError(f"ROC AUC needs normal (0) and anomalous (1) samples; have {n0} normal, {n1} anomalous")
    order = np.argsort(s, kind="stable")
    sorted_s = s[order]
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])      # first index of each tie group
    ends = np.r_[starts[1:], s.size]                                        # one past its last
    ranks = np.empty(s.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + 1 + ends) / 2.0, ends - starts)       # average of ranks start+1..end
    return float((ranks[y == 1].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def predict_logits(model: nn.Module, dataset, features: FeatureConfig = FeatureConfig(),
                   batch_size: int = 256, cache: FeatureCache | None = None) -> torch.Tensor:
    """(N, C) float32 logits (or (N, ...) outputs) for every item of `dataset`, in dataset order."""
    if len(dataset) == 0:
        raise PqlrError("cannot predict on an empty dataset")
    x, _ = _inputs(model, dataset, features, cache)
    return logits_of(model, x, batch_size)


def anomaly_scores(model: nn.Module, dataset, batch_size: int = 256,
                   features: FeatureConfig = FeatureConfig(), cache: FeatureCache | None = None) -> torch.Tensor:
    """(N,) float32 anomaly scores (mean squared reconstruction error) of every item, in dataset order."""
    x, _ = _inputs(model, dataset, features, cache)
    return reconstruction_errors(logits_of(model, x, batch_size), x)


def evaluate(model: nn.Module, dataset, features: FeatureConfig = FeatureConfig(), batch_size: int = 256,
             cache: FeatureCache | None = None, task: str | None = None) -> EvalResult:
    """Classification: top-1 accuracy, mean cross-entropy and confusion[true][predicted] over `dataset`.
    Anomaly (task, or the split's own task): ROC AUC of the reconstruction errors in .accuracy/.score,
    their mean in .loss, each sample's error in .scores."""
    task = task_of(dataset, task)
    x, y = _inputs(model, dataset, features, cache)
    out = logits_of(model, x, batch_size)                          # (N, C) or (N, ...)
    if task == "anomaly":
        err = reconstruction_errors(out, x)
        auc = roc_auc(err.numpy(), y.numpy())
        return EvalResult(accuracy=auc, loss=float(err.mean()), n=len(y), confusion=[], metric="roc_auc",
                          score=auc, scores=err.tolist())
    if out.dim() != 2:
        raise PqlrError(f"a classifier must output (N, classes) logits, got {tuple(out.shape)}"
                        + (" (an autoencoder? use task anomaly)" if out[0].numel() == x[0].numel() else ""))
    n_classes = out.shape[1]
    if int(y.max()) >= n_classes:
        raise PqlrError(f"dataset has label {int(y.max())} but the model has only {n_classes} outputs")
    pred = out.argmax(dim=1)
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.int64)
    confusion.index_put_((y, pred), torch.ones_like(y), accumulate=True)
    return EvalResult(accuracy=float((pred == y).float().mean()), loss=float(F.cross_entropy(out, y)),
                      n=len(y), confusion=confusion.tolist())
