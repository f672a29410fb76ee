"""Model inputs of a dataset split, computed once: audio clips through the KWS front end
(features (N, 1, frames, feats) float32), tensor splits (npz arrays, images) as they are.

The compression pipeline trains the same data many times (prune, fine-tune, QAT, distill) and
verification reads it again; `FeatureCache` keeps the FFTs out of every run after the first."""
from __future__ import annotations

import weakref
from collections import OrderedDict

import torch

from ..errors import PqlrError
from .features import Frontend
from .tensors import TensorSplit


def dataset_labels(dataset) -> torch.Tensor:
    """(N,) int64 labels, from `dataset.labels` when present, else by reading every item."""
    labels = getattr(dataset, "labels", None)
    if labels is None:
        labels = [int(dataset[i][1]) for i in range(len(dataset))]
    return torch.as_tensor(list(labels), dtype=torch.int64)


def waves_of(dataset, index) -> torch.Tensor:
    """(B, clip_samples) float32 waves of the items in `index`."""
    return torch.stack([torch.as_tensor(dataset[int(i)][0], dtype=torch.float32) for i in index])


class FeatureCache:
    """Front-end features computed once per (dataset object, FeatureConfig) and reused.

    The compression pipeline trains the same data many times (prune, fine-tune, QAT, distill);
    this keeps the FFTs out of every run after the first. Entries die with their dataset (weak
    references) and at most `max_entries` are kept (least recently used goes first)."""

    def __init__(self, max_entries: int = 8):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, tuple] = OrderedDict()   # key -> (weakref, features, labels)

    def get(self, dataset, features, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (features (N, 1, frames, feats) float32 on CPU, labels (N,) int64).
        A tensor split gives its own (x (N, *shape), labels (N,)), not cached (nothing to compute)."""
        if is_tensor_split(dataset):
            return dataset.x, dataset.labels
        key = (id(dataset), features)
        hit = self._entries.get(key)
        if hit is not None and hit[0]() is dataset:
            self._entries.move_to_end(key)
            return hit[1], hit[2]
        x, y = compute_features(dataset, features, batch_size), dataset_labels(dataset)
        try:
            ref = weakref.ref(dataset, lambda _r, k=key: self._entries.pop(k, None))
        except TypeError:          # not weak-referenceable: keep it alive instead, so the id stays unique
            ref = (lambda d: (lambda: d))(dataset)
        self._entries[key] = (ref, x, y)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return x, y

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


DEFAULT_CACHE = FeatureCache()


def is_tensor_split(dataset) -> bool:
    """True for a pqlr.data.TensorSplit (npz arrays, images): model inputs as they are, no front end."""
    return isinstance(dataset, TensorSplit)


def is_tensor_data(data) -> bool:
    """True for a dataset (TensorData) whose splits are tensor splits."""
    return is_tensor_split(getattr(data, "train", None))


@torch.no_grad()
def compute_features(dataset, features, batch_size: int = 256) -> torch.Tensor:
    """Run the front end over a whole dataset: (N, 1, frames, feats) float32 (a tensor split: its x)."""
    n = len(dataset)
    if n == 0:
        raise PqlrError("cannot compute features of an empty dataset")
    if is_tensor_split(dataset):
        return dataset.x
    front = Frontend(features)
    return torch.cat([front(waves_of(dataset, range(i, min(n, i + batch_size))))
                      for i in range(0, n, batch_size)])
