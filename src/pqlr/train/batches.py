"""Where training batches come from: a feature cache (front end run once per split) and the
per-epoch batch plans, with augmentation randomness seeded per (seed, epoch, step).

Features are (B, 1, frames, feats) float32 (pqlr.data.Frontend output); labels (B,) int64.
Tensor splits (pqlr.data.TensorSplit: npz arrays, images) are their own features: x (N, *shape)
float32 goes to the model as it is, and they get no waveform augmentation.
"""
from __future__ import annotations

import math
import weakref
from collections import OrderedDict

import torch
from torch.utils.data import DistributedSampler

from ..errors import PqlrError

AUG_SEED_STRIDE = 1_000_003   # step seeds: seed * STRIDE^2 + epoch * STRIDE + step (distinct per step)


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
    from ..data.tensors import TensorSplit
    return isinstance(dataset, TensorSplit)


def is_tensor_data(data) -> bool:
    """True for a dataset (TensorData) whose splits are tensor splits."""
    return is_tensor_split(getattr(data, "train", None))


@torch.no_grad()
def compute_features(dataset, features, batch_size: int = 256) -> torch.Tensor:
    """Run the front end over a whole dataset: (N, 1, frames, feats) float32 (a tensor split: its x)."""
    from ..data import Frontend
    n = len(dataset)
    if n == 0:
        raise PqlrError("cannot compute features of an empty dataset")
    if is_tensor_split(dataset):
        return dataset.x
    front = Frontend(features)
    return torch.cat([front(waves_of(dataset, range(i, min(n, i + batch_size))))
                      for i in range(0, n, batch_size)])


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1) -> list[list[int]]:
    """This rank's shuffled index batches for one epoch (DistributedSampler semantics: every rank
    gets the same number; a final batch of one item is dropped, BatchNorm cannot train on it)."""
    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    order = list(sampler)
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if batches and len(batches[-1]) < 2:
        batches.pop()
    return batches


def steps_per_epoch(n: int, batch_size: int, world: int = 1) -> int:
    per_rank = math.ceil(n / world)
    steps = math.ceil(per_rank / batch_size)
    return steps - 1 if steps and per_rank - (steps - 1) * batch_size < 2 else steps


class AugmentedBatches(torch.utils.data.Dataset):
    """Item b = (features, labels) of batch b, with waveform augmentation seeded by (seed, epoch, b):
    the same batches come out whatever the number of DataLoader workers."""

    def __init__(self, dataset, batches: list[list[int]], labels: torch.Tensor, features, augment,
                 seed: int, epoch: int):
        from ..data import Frontend
        self.dataset, self.batches, self.labels = dataset, batches, labels
        self.front, self.augment = Frontend(features), augment
        self.base = (seed * AUG_SEED_STRIDE + epoch) * AUG_SEED_STRIDE

    def __len__(self) -> int:
        return len(self.batches)

    @torch.no_grad()
    def __getitem__(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.batches[b]
        gen = torch.Generator().manual_seed((self.base + b) % (2 ** 63))
        wave = self.augment(waves_of(self.dataset, idx), gen)     # (B, clip_samples)
        return self.augment.features(self.front, wave, gen), self.labels[idx]


class CachedBatches(torch.utils.data.Dataset):
    """Item b = (features, labels) of batch b, sliced from precomputed features."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batches: list[list[int]]):
        self.x, self.y, self.batches = x, y, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.as_tensor(self.batches[b])
        return self.x[idx], self.y[idx]


def iterate(batches: torch.utils.data.Dataset, num_workers: int):
    """Yield the items of a batch dataset in order, in-process or through DataLoader workers."""
    if num_workers == 0:
        for b in range(len(batches)):
            yield batches[b]
        return
    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False, num_workers=num_workers)
    yield from loader
