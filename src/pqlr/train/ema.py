"""Exponential moving average of a model's weights (Polyak averaging), updated after every optimizer step.

avg <- d * avg + (1 - d) * w with d = min(decay, (1 + n) / (10 + n)) at update n (the TensorFlow
warm-up, so the first steps of a short run do not dominate). Floating-point parameters and buffers
(BatchNorm running statistics) are averaged; integer buffers (num_batches_tracked) are copied.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


class WeightEma:
    """WeightEma(model, decay); .update(model) after each step; .module is the averaged copy (eval it)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
        live = model.state_dict()
        for name, avg in self.module.state_dict().items():
            w = live[name].detach()
            if avg.is_floating_point():
                avg.mul_(d).add_(w.to(avg.dtype), alpha=1.0 - d)
            else:
                avg.copy_(w)
        self.updates += 1

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights and buffers into `model`."""
        model.load_state_dict(self.module.state_dict())

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
