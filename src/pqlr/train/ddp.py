"""Data-parallel training under `torchrun` (DistributedDataParallel): gloo on CPU, nccl on GPU.

`torchrun --nproc-per-node N -m pqlr train ...` sets WORLD_SIZE / RANK / LOCAL_RANK; with
WORLD_SIZE > 1 the process group is initialised here, each rank trains on its DistributedSampler
shard, gradients are averaged by DDP, and only rank 0 writes files or prints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from ..errors import PqlrError


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1


def setup(device: str = "cpu") -> Dist:
    """Read the torchrun environment; initialise the process group once when WORLD_SIZE > 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise PqlrError(f"device {device!r} asked for, but this torch has no CUDA device")
        return Dist(device=device)
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise PqlrError(f"device {device!r} asked for, but this torch has no CUDA device")
        device = f"cuda:{local}"
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    if dist.get_world_size() != world:
        raise PqlrError(f"process group has {dist.get_world_size()} ranks but WORLD_SIZE={world}")
    return Dist(rank=rank, world=world, local_rank=local, device=device)


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, d: Dist) -> nn.Module:
    if not d.active:
        return model
    ids = [d.local_rank] if d.device.startswith("cuda") else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def average_grads(params, d: Dist) -> None:
    """Average gradients of parameters DDP does not manage (e.g. a distillation projection)."""
    if not d.active:
        return
    for p in params:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.div_(d.world)


def sync_buffers(model: nn.Module, d: Dist) -> None:
    """Copy rank 0's buffers (BatchNorm running stats) to every rank, so all ranks hold one model."""
    if not d.active:
        return
    for b in model.buffers():
        dist.broadcast(b, src=0)


def all_sum(values: list[float], d: Dist, device: str = "cpu") -> list[float]:
    """Element-wise sum of a few numbers over all ranks (float64)."""
    if not d.active:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier(d: Dist) -> None:
    if d.active:
        dist.barrier()
