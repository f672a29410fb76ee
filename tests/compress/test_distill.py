"""Tests of pqlr.compress.distill: the KD loss against a hand computation, alpha/T behaviour, the
teacher-logit cache, TinyBERT-style hidden distillation, and distillation inside train()."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pqlr.compress.distill import DistillConfig, distill_loss_fn, kd_loss, layer_map
from pqlr.data import AudioDataset, KwsData
from pqlr.errors import PqlrError, UnsupportedError
from pqlr.models import build_model
from pqlr.train import TrainConfig, train

S = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])     # student logits (B=2, C=3)
T_ = torch.tensor([[1.0, 1.5, -0.5], [-1.0, 2.0, 0.0]])   # teacher logits
Y = torch.tensor([0, 2])


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def hand_kd(s, t, y, T, alpha):
    """alpha T^2 mean_b sum_c p_t (ln p_t - ln p_s) + (1 - alpha) mean_b -ln softmax(s)[y], in float64."""
    s, t = s.double().numpy(), t.double().numpy()
    p_s, p_t = softmax(s / T), softmax(t / T)
    kl = np.mean(np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=1))
    ce = np.mean(-np.log(softmax(s)[np.arange(len(y)), y.numpy()]))
    return alpha * T * T * kl + (1 - alpha) * ce


@pytest.mark.parametrize("T,alpha", [(6.0, 0.7), (1.0, 0.5), (2.5, 1.0), (4.0, 0.0)])
def test_kd_loss_matches_hand_computation(T, alpha):
    got = float(kd_loss(S, T_, Y, DistillConfig(temperature=T, alpha=alpha)))
    assert got == pytest.approx(hand_kd(S, T_, Y, T, alpha), rel=1e-5)


def test_alpha_zero_is_cross_entropy():
    assert torch.allclose(kd_loss(S, T_, Y, DistillConfig(alpha=0.0)), F.cross_entropy(S, Y))


def test_soft_term_scales_with_t_squared():
    cfg = lambda T: DistillConfig(temperature=T, alpha=1.0)
    for T in (2.0, 6.0):
        soft = F.kl_div(F.log_softmax(S / T, 1), F.softmax(T_ / T, 1), reduction="batchmean")
        assert float(kd_loss(S, T_, Y, cfg(T))) == pytest.approx(T * T * float(soft), rel=1e-6)
    # same logits: no soft loss at any temperature
    assert float(kd_loss(S, S.clone(), Y, cfg(6.0))) == pytest.approx(0.0, abs=1e-6)


def test_soft_gradient_keeps_its_scale_across_temperatures():
    """Hinton et al.: the T^2 factor keeps soft-target gradients O(1) as T grows (high-T limit)."""
    def grad_norm(T):
        s = S.clone().requires_grad_(True)
        kd_loss(s, T_, Y, DistillConfig(temperature=T, alpha=1.0)).backward()
        return float(s.grad.norm())
    g10, g40 = grad_norm(10.0), grad_norm(40.0)
    assert g40 == pytest.approx(g10, rel=0.05)


@pytest.mark.parametrize("kw", [dict(temperature=0.0), dict(alpha=1.5), dict(alpha=-0.1), dict(hidden_weight=-1.0)])
def test_config_rejects_bad_values(kw):
    with pytest.raises(PqlrError):
        DistillConfig(**kw)


def test_shape_mismatch_is_an_error():
    with pytest.raises(PqlrError, match="differ"):
        kd_loss(S, T_[:, :2], Y)


class Counting(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += len(x)
        return self.inner(x)


def test_teacher_logits_are_cached_per_input():
    torch.manual_seed(0)
    teacher = Counting(build_model("ds-cnn-s", 3, channels=(8, 8), seed=1))
    x = torch.randn(5, 1, 49, 10)
    cached, plain = distill_loss_fn(teacher, DistillConfig()), distill_loss_fn(teacher, DistillConfig(), cache=False)
    logits = torch.randn(5, 3)
    y = torch.tensor([0, 1, 2, 0, 1])
    a = cached(logits, y, x)
    b = cached(logits, y, x)
    assert teacher.calls == 5                       # second call served from the cache
    c = plain(logits, y, x)
    assert teacher.calls == 10
    assert torch.equal(a, b) and torch.allclose(a, c)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())


def tiny_transformer(layers, d_model, seed):
    return build_model("microbert-fast", 3, seed=seed, d_model=d_model, head_dim=8, heads=(2,) * layers,
                       ffn=(32,) * layers, dropout=0.0)


def test_layer_map_is_uniform():
    assert layer_map(2, 6) == [2, 5]
    assert layer_map(3, 3) == [0, 1, 2]


def test_hidden_distillation_adds_a_trainable_projected_mse():
    student, teacher = tiny_transformer(2, 16, 0), tiny_transformer(4, 24, 1)
    cfg = DistillConfig(hidden=True, hidden_weight=1.0)
    loss_fn = distill_loss_fn(teacher, cfg, student=student)
    assert loss_fn.map == [1, 3] and loss_fn.proj[0].weight.shape == (24, 16)
    x, y = torch.randn(4, 1, 49, 10), torch.tensor([0, 1, 2, 0])
    logits = student(x)
    total = loss_fn(logits, y, x)
    kd_only = kd_loss(logits, teacher(x), y, cfg)
    assert float(total.detach()) > float(kd_only.detach())
    total.backward()
    assert loss_fn.proj[0].weight.grad is not None and float(loss_fn.proj[0].weight.grad.abs().sum()) > 0
    loss_fn.close()
    with pytest.raises(PqlrError, match="needs the student"):
        distill_loss_fn(teacher, cfg)
    with pytest.raises(UnsupportedError, match="DSCNN"):
        distill_loss_fn(teacher, cfg, student=build_model("ds-cnn-s", 3, channels=(8, 8)))


def toy_data():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000.0
    def split(n):
        audio = [(0.3 * np.sin(2 * np.pi * (300.0, 900.0, 2200.0)[i % 3] * t + rng.uniform(0, 6))
                  * 32767).astype(np.int16) for i in range(n)]
        return AudioDataset(np.stack(audio), [i % 3 for i in range(n)], ["s"] * n, [str(i) for i in range(n)])
    return KwsData("toy", ["a", "b", "c"], split(24), split(9), split(9), {})


def test_distillation_inside_train_trains_the_projection():
    data = toy_data()
    student, teacher = tiny_transformer(2, 16, 0), tiny_transformer(4, 24, 1)
    loss_fn = distill_loss_fn(teacher, DistillConfig(hidden=True), student=student)
    before = loss_fn.proj[1].weight.detach().clone()
    res = train(student, data, TrainConfig(epochs=1, batch_size=8, augment=False), loss_fn=loss_fn, progress=False)
    assert math.isfinite(res.loss) and res.epochs == 1
    assert not torch.equal(before, loss_fn.proj[1].weight.detach())
