"""Knowledge distillation (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"), and
optional TinyBERT-style hidden-state distillation (Jiao et al. 2020) for transformer students.

    kd_loss = alpha * T^2 * KL(softmax(z_t / T) || softmax(z_s / T)) + (1 - alpha) * CE(z_s, y)

For a model that is not a classifier (task "anomaly": an autoencoder) the student matches the
teacher's outputs: alpha * MSE(student, teacher) + (1 - alpha) * MSE(student, input).

KL is averaged over the batch ("batchmean"); the T^2 factor keeps the soft-target gradients at the
same scale as the hard-target ones when T changes (Hinton et al., section 2).

`distill_loss_fn(teacher, cfg)` returns a `loss_fn(logits, labels, inputs)` for `pqlr.train.train`.
It is an nn.Module: with `hidden=True` it owns learned projections (student width -> teacher width),
which `train` optimises and checkpoints along with the student.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PqlrError, UnsupportedError

MAX_CACHED_TEACHER_ROWS = 200_000   # teacher-logit cache entries (~10 floats each); beyond this, recompute


@dataclass(frozen=True)
class DistillConfig:
    temperature: float = 6.0      # T: softens both distributions (the article uses 6)
    alpha: float = 0.7            # weight of the soft-target term; 1 - alpha goes to hard-label CE
    hidden: bool = False          # add MSE between projected student and teacher block outputs
    hidden_weight: float = 1.0    # weight of the hidden-state term

    def __post_init__(self):
        if not self.temperature > 0:
            raise PqlrError(f"distillation temperature must be > 0, got {self.temperature}")
        if not 0.0 <= self.alpha <= 1.0:
            raise PqlrError(f"distillation alpha must be in [0, 1], got {self.alpha}")
        if self.hidden_weight < 0:
            raise PqlrError(f"distillation hidden_weight must be >= 0, got {self.hidden_weight}")


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
            cfg: DistillConfig = DistillConfig()) -> torch.Tensor:
    """Scalar loss. student_logits, teacher_logits: (B, C); labels: (B,) int64."""
    if student_logits.shape != teacher_logits.shape:
        raise PqlrError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                        f"{tuple(teacher_logits.shape)} differ (same classes needed)")
    T = cfg.temperature
    log_p_s = F.log_softmax(student_logits / T, dim=-1)            # (B, C)
    log_p_t = F.log_softmax(teacher_logits.detach() / T, dim=-1)   # (B, C)
    # KL(p_t || p_s) = sum p_t (log p_t - log p_s), averaged over the batch
    soft = F.kl_div(log_p_s, log_p_t, reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits, labels)
    return cfg.alpha * T * T * soft + (1.0 - cfg.alpha) * hard


def transformer_blocks(model: nn.Module) -> nn.ModuleList:
    """The per-layer blocks whose outputs (B, T, D) hidden distillation matches."""
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.ModuleList) or not hasattr(getattr(model, "config", None), "d_model"):
        raise UnsupportedError(f"hidden-state distillation needs a transformer (model.blocks + config.d_model); "
                               f"{type(model).__name__} has none")
    return blocks


def layer_map(n_student: int, n_teacher: int) -> list[int]:
    """Student layer i -> teacher layer (uniform, TinyBERT): the last student layer meets the last teacher layer."""
    return [((i + 1) * n_teacher) // n_student - 1 for i in range(n_student)]


class _Recorder:
    """Forward hooks that keep the latest output of each block."""

    def __init__(self, blocks: nn.ModuleList):
        self.outputs: list[torch.Tensor | None] = [None] * len(blocks)
        self.handles = [b.register_forward_hook(self._hook(i)) for i, b in enumerate(blocks)]

    def _hook(self, i: int):
        def fn(module, inp, out):
            self.outputs[i] = out
        return fn

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


class DistillLoss(nn.Module):
    """loss_fn(student_logits (B, C), labels (B,), inputs (B, 1, frames, feats)) -> scalar.

    The teacher runs in eval mode without gradients on the same inputs. Its logits are cached by
    the content of each input row, so a fine-tuning run without augmentation pays for each teacher
    forward once. With `cfg.hidden`, hooks on `student.blocks` / `teacher.blocks` record block
    outputs and `proj[i]` (Linear student d_model -> teacher d_model) maps student layer i onto
    teacher layer `layer_map[i]`; the MSE between them is added with weight `hidden_weight`."""

    def __init__(self, teacher: nn.Module, cfg: DistillConfig, student: nn.Module | None = None,
                 cache: bool = True, task: str = "classify"):
        super().__init__()
        self.cfg, self.task = cfg, task
        self.teacher = [teacher.eval()]     # a list: not a submodule, so not trained or checkpointed
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.cache = cache and not cfg.hidden
        self._logits: dict[bytes, torch.Tensor] = {}
        self.proj = nn.ModuleList()
        self._student_rec = self._teacher_rec = None
        if cfg.hidden:
            if student is None:
                raise PqlrError("hidden-state distillation needs the student: distill_loss_fn(teacher, cfg, student=...)")
            s_blocks, t_blocks = transformer_blocks(student), transformer_blocks(teacher)
            self.map = layer_map(len(s_blocks), len(t_blocks))
            d_s, d_t = student.config.d_model, teacher.config.d_model
            self.proj = nn.ModuleList(nn.Linear(d_s, d_t) for _ in s_blocks)
            self._student_rec, self._teacher_rec = _Recorder(s_blocks), _Recorder(t_blocks)

    def teacher_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, 1, frames, feats) -> (B, C) teacher logits, computed or taken from the cache."""
        teacher = self.teacher[0]
        if next(teacher.parameters()).device != inputs.device:
            teacher.to(inputs.device)           # the teacher follows the student's data onto its device
        if not self.cache:
            with torch.no_grad():
                return teacher(inputs)
        rows = inputs.detach().float().cpu().reshape(inputs.shape[0], -1).numpy()
        keys = [hashlib.blake2b(r.tobytes(), digest_size=16).digest() for r in rows]
        missing = [i for i, k in enumerate(keys) if k not in self._logits]
        if missing:
            with torch.no_grad():
                out = teacher(inputs[missing]).float().cpu()
            if len(self._logits) + len(missing) <= MAX_CACHED_TEACHER_ROWS:
                self._logits.update({keys[i]: out[j] for j, i in enumerate(missing)})
            else:
                fresh = dict(zip(missing, out))
                return torch.stack([fresh[i] if i in fresh else self._logits[k]
                                    for i, k in enumerate(keys)]).to(inputs.device)
        return torch.stack([self._logits[k] for k in keys]).to(inputs.device)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        if self.task == "anomaly":        # an autoencoder: match the teacher's reconstruction and the input
            t = self.teacher_logits(inputs)
            return self.cfg.alpha * F.mse_loss(logits, t) + (1.0 - self.cfg.alpha) * F.mse_loss(logits, inputs)
        if not self.cfg.hidden:
            return kd_loss(logits, self.teacher_logits(inputs), labels, self.cfg)
        t_logits = self.teacher_logits(inputs)      # also fills the teacher's block outputs
        loss = kd_loss(logits, t_logits, labels, self.cfg)
        hid = logits.new_zeros(())
        for i, j in enumerate(self.map):
            s_out, t_out = self._student_rec.outputs[i], self._teacher_rec.outputs[j]
            if s_out is None or t_out is None:
                raise PqlrError(f"hidden distillation: block {i} (student) or {j} (teacher) produced no output")
            hid = hid + F.mse_loss(self.proj[i](s_out), t_out.detach().to(s_out.device))
        return loss + self.cfg.hidden_weight * hid / len(self.map)

    def close(self) -> None:
        """Remove the forward hooks (the student keeps working without them)."""
        for rec in (self._student_rec, self._teacher_rec):
            if rec is not None:
                rec.remove()


def distill_loss_fn(teacher: nn.Module, cfg: DistillConfig = DistillConfig(), *,
                    student: nn.Module | None = None, cache: bool = True, task: str = "classify") -> DistillLoss:
    """A `loss_fn(outputs, labels, inputs)` for `train()`; `student` is needed only with `cfg.hidden`.
    task "anomaly": alpha x MSE(student, teacher reconstruction) + (1 - alpha) x MSE(student, input)."""
    return DistillLoss(teacher, cfg, student=student, cache=cache, task=task)
