"""Evaluation of a float model on an audio split: logits, accuracy, loss and a confusion matrix."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..data import FeatureConfig
from ..errors import PqlrError
from .batches import DEFAULT_CACHE, FeatureCache
from .config import EvalResult


def _device_of(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def check_input_shape(model: nn.Module, features: FeatureConfig) -> None:
    """Zoo models record the (frames, feats) they were built for; it must match the front end."""
    shape = getattr(getattr(model, "config", None), "input_shape", None)
    if shape is not None and tuple(shape) != tuple(features.shape):
        raise PqlrError(f"model expects input {tuple(shape)} (frames, features) but the front end "
                        f"gives {tuple(features.shape)}; build the model for {features.shape}")


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits (N, C) on CPU of features x (N, 1, frames, feats), in eval mode (mode restored after)."""
    device, was_training = _device_of(model), model.training
    model.eval()
    try:
        return torch.cat([model(x[i:i + batch_size].to(device)).float().cpu()
                          for i in range(0, len(x), batch_size)])
    finally:
        model.train(was_training)


def predict_logits(model: nn.Module, dataset, features: FeatureConfig = FeatureConfig(),
                   batch_size: int = 256, cache: FeatureCache | None = None) -> torch.Tensor:
    """(N, C) float32 logits for every item of `dataset`, in dataset order."""
    if len(dataset) == 0:
        raise PqlrError("cannot predict on an empty dataset")
    check_input_shape(model, features)
    x, _ = (cache or DEFAULT_CACHE).get(dataset, features)
    return logits_of(model, x, batch_size)


def evaluate(model: nn.Module, dataset, features: FeatureConfig = FeatureConfig(), batch_size: int = 256,
             cache: FeatureCache | None = None) -> EvalResult:
    """Top-1 accuracy, mean cross-entropy and confusion[true][predicted] over `dataset`."""
    if len(dataset) == 0:
        raise PqlrError("cannot evaluate on an empty dataset")
    check_input_shape(model, features)
    x, y = (cache or DEFAULT_CACHE).get(dataset, features)
    logits = logits_of(model, x, batch_size)                      # (N, C)
    n_classes = logits.shape[1]
    if int(y.max()) >= n_classes:
        raise PqlrError(f"dataset has label {int(y.max())} but the model has only {n_classes} outputs")
    pred = logits.argmax(dim=1)
    confusion = torch.zeros(n_classes, n_classes, dtype=torch.int64)
    confusion.index_put_((y, pred), torch.ones_like(y), accumulate=True)
    return EvalResult(accuracy=float((pred == y).float().mean()), loss=float(F.cross_entropy(logits, y)),
                      n=len(y), confusion=confusion.tolist())
