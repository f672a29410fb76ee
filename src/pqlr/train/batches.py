"""Where training batches come from: the per-epoch batch plans over cached model inputs
(pqlr.data.cache: the front end run once per split), with augmentation randomness seeded per
(seed, epoch, step). Audio features are (B, 1, frames, feats) float32; tensor splits (npz arrays,
images) are their own inputs and get no waveform augmentation; labels (B,) int64.
"""
from __future__ import annotations

import math

import torch
from torch.utils.data import DistributedSampler

from ..data import Frontend
from ..data.cache import (DEFAULT_CACHE, FeatureCache, compute_features, dataset_labels, is_tensor_data,  # noqa: F401
                          is_tensor_split, waves_of)

AUG_SEED_STRIDE = 1_000_003   # step seeds: seed * STRIDE^2 + epoch * STRIDE + step (distinct per step)


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
