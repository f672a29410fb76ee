"""Structured pruning: real shape changes, coupled layers consistent, cuts that keep the function."""
import pytest
import torch
from torch import nn

from pqlr.compress import prune
from pqlr.errors import PqlrError
from pqlr.models import build_model, model_stats


def _random_gammas(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data = torch.rand(m.weight.shape, generator=g)
            m.running_mean.data = torch.randn(m.running_mean.shape, generator=g) * 0.1
            m.running_var.data = torch.rand(m.running_var.shape, generator=g) + 0.5


def test_dscnn_channels_removed_and_coupled():
    m = build_model("ds-cnn-s", 12, seed=0)
    _random_gammas(m)
    p, summary = prune.apply(m, prune.PruneConfig(sparse=0.7))
    ch = p.config.channels
    assert sum(ch) == pytest.approx(0.3 * 5 * 64, abs=2)
    for i, blk in enumerate(p.blocks):      # depthwise follows its input channels
        assert blk.dw.weight.shape[0] == blk.dw.groups == ch[i]
        assert blk.pw.weight.shape[:2] == (ch[i + 1], ch[i])
    assert p.fc.weight.shape[1] == ch[-1]
    assert model_stats(p)["macs"] < 0.2 * model_stats(m)["macs"]
    assert all(after >= 7 for _, after in summary["groups"].values())   # floor 10% of 64


def test_dscnn_cut_of_dead_channels_keeps_outputs():
    """Channels whose BN gamma and beta are 0 (and are ReLU-killed) contribute nothing: cutting them is exact."""
    m = build_model("ds-cnn-s", 12, seed=0).eval()
    _random_gammas(m)
    dead = torch.arange(0, 64, 2)
    for bn in [m.bn] + [b.pw_bn for b in m.blocks] + [b.dw_bn for b in m.blocks]:
        bn.weight.data[dead] = 0.0
        bn.bias.data[dead] = 0.0
    keep = {f"channels{i}": torch.arange(1, 64, 2) for i in range(5)}
    p = prune._cut_dscnn(m, keep).eval()
    x = torch.randn(4, 1, 49, 10)
    torch.testing.assert_close(p(x), m(x), rtol=1e-5, atol=1e-5)


def test_transformer_heads_and_neurons():
    m = build_model("microbert-2l", 12, seed=0).eval()
    p, _ = prune.apply(m, prune.PruneConfig(sparse=0.5))
    assert all(1 <= h <= 4 for h in p.config.heads)
    assert sum(p.config.ffn) == pytest.approx(576, abs=4)
    assert p(torch.randn(2, 1, 49, 10)).shape == (2, 12)
    # keeping everything is the identity
    full = {f"blocks.{i}.heads": torch.arange(4) for i in range(2)} | {f"blocks.{i}.ffn": torch.arange(576) for i in range(2)}
    same = prune._cut_transformer(m, full).eval()
    x = torch.randn(2, 1, 49, 10)
    torch.testing.assert_close(same(x), m(x))


def test_head_floor_keeps_half_the_heads_of_every_block():
    m = build_model("microbert-2l", 12, seed=0).eval()
    p, summary = prune.apply(m, prune.PruneConfig(sparse=0.7))
    assert p.config.heads == (2, 2)                                # 8 -> 2.4 by rank, floored at 2 per block
    assert summary["groups"]["blocks.0.heads"] == [4, 2]
    assert sum(p.config.ffn) == pytest.approx(0.3 * 1152, abs=4)  # FFN neurons still cut at 70%
    p1, _ = prune.apply(m, prune.PruneConfig(sparse=0.7, head_floor=0.25))
    assert sum(p1.config.heads) < 4
    scores = {"a.heads": torch.tensor([1.0, 2, 3, 4]), "b.heads": torch.tensor([5.0, 6, 7, 8])}
    keep = prune.choose_keep(scores, 0.75, 0.1, {"heads": 0.5})
    assert [k.tolist() for k in keep.values()] == [[2, 3], [2, 3]]


def test_transformer_zero_head_cut_is_exact():
    m = build_model("microbert-2l", 12, seed=0).eval()
    blk = m.blocks[0]
    Dh = blk.attn.head_dim
    blk.attn.o.weight.data[:, 2 * Dh:3 * Dh] = 0.0       # head 2 writes nothing
    blk.ffn.fc2.weight.data[:, :100] = 0.0               # neurons 0..99 write nothing
    keep = {"blocks.0.heads": torch.tensor([0, 1, 3]), "blocks.1.heads": torch.arange(4),
            "blocks.0.ffn": torch.arange(100, 576), "blocks.1.ffn": torch.arange(576)}
    p = prune._cut_transformer(m, keep).eval()
    x = torch.randn(3, 1, 49, 10)
    torch.testing.assert_close(p(x), m(x), rtol=1e-5, atol=1e-5)


def test_slimming_penalty_is_l1_on_gammas():
    m = build_model("ds-cnn-s", 12, seed=0)
    expected = sum(b.weight.abs().sum() for b in m.modules() if isinstance(b, nn.BatchNorm2d))
    assert prune.slimming_penalty(m, prune.PruneConfig(l1=1e-3)).item() == pytest.approx(1e-3 * expected.item())


def test_magnitude_and_2_4_masks_survive_training_step():
    for method, check in [("magnitude", None), ("2:4", 4)]:
        m = build_model("ds-cnn-s", 12, seed=0)
        p, s = prune.apply(m, prune.PruneConfig(sparse=0.5, method=method))
        assert "cut no MACs" in s["note"]
        opt = torch.optim.SGD(p.parameters(), lr=0.1)
        p(torch.randn(2, 1, 49, 10)).sum().backward()
        opt.step()
        p(torch.randn(1, 1, 49, 10))                      # the pre-forward hook re-applies the mask
        w = p.blocks[0].pw.weight.detach().reshape(64, -1)
        if check:
            assert torch.all((w.reshape(64, -1, 4) != 0).sum(-1) <= 2)
        else:
            assert 0.3 < (w == 0).float().mean() < 0.8


@pytest.mark.parametrize("bad", [dict(sparse=1.2), dict(sparse=-0.1), dict(method="random"), dict(head_floor=0.0)])
def test_bad_config(bad):
    with pytest.raises(PqlrError):
        prune.PruneConfig(**bad)
