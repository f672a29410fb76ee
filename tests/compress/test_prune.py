"""Structured pruning from the captured graph: coupled channels found for any model (residual and
broadcast adds, concat offsets, depthwise convs, flatten -> linear column blocks, attention heads,
FFN neurons), real shape changes, and cuts of units nothing reads that leave the outputs unchanged."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pqlr.capture import capture
from pqlr.capture.stats import graph_stats
from pqlr.compress import prune
from pqlr.compress.groups import explain, find_groups
from pqlr.errors import PqlrError
from pqlr.models import build_model



def _random_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.weight.data = torch.rand(m.weight.shape, generator=g) + 0.1
            m.running_mean.data = torch.randn(m.running_mean.shape, generator=g) * 0.1
            m.running_var.data = torch.rand(m.running_var.shape, generator=g) + 0.5


class Branches(nn.Module):
    """Two conv branches concatenated, a residual add with broadcasting, a grouped conv, flatten -> linear."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 6, 3, padding=1), nn.Conv2d(1, 4, 3, padding=1)
        self.mix = nn.Conv2d(10, 10, 1)
        self.scale = nn.Parameter(torch.rand(10, 1, 1) + 0.5)
        self.grouped = nn.Conv2d(10, 4, 3, groups=2)
        self.fc = nn.Linear(4 * 7 * 2, 3)

    def forward(self, x):                               # (B, 1, 9, 4)
        y = torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], 1)     # (B, 10, 9, 4)
        y = y + self.mix(y) * self.scale                  # residual, per-channel parameter
        y = self.grouped(y)                               # (B, 4, 7, 2): groups=2 keeps its channels
        return self.fc(y.flatten(1))


def test_groups_of_ds_cnn_follow_depthwise_convs():
    gm = capture(build_model("ds-cnn-s", 12, seed=0), (1, 49, 10))
    groups = find_groups(gm)
    assert [g.name for g in groups] == ["conv", "blocks.0.pw", "blocks.1.pw", "blocks.2.pw", "blocks.3.pw"]
    first = groups[0]
    assert len(first) == 64 and first.norms == ["bn", "blocks.0.dw_bn"]
    assert ("blocks.0.dw", "rows") in first.producers and ("blocks.0.pw", "cols") in first.producers
    text = explain(gm, groups)
    assert "group conv: 64 channels" in text and "blocks.0.pw" in text and "input channels" in text


def test_groups_through_concat_add_flatten_and_grouped_conv():
    gm = capture(Branches(), (1, 9, 4))
    groups = {g.name: g for g in find_groups(gm)}
    # the concat ties a (6) and b (4) to one 10-channel space; the residual add ties mix's output
    # to it; the grouped conv reads it: channels of a grouped conv are never cut, so nothing is prunable
    assert groups == {}
    class NoGroup(Branches):
        def __init__(self):
            super().__init__()
            self.grouped = nn.Conv2d(10, 4, 3)
    gm = capture(NoGroup(), (1, 9, 4))
    groups = {g.name: g for g in find_groups(gm)}
    assert set(groups) == {"a", "b", "grouped"}
    # a's 6 and b's 4 channels sit at offsets 0 and 6 of the concat; each is tied through the residual
    # add and the per-channel parameter to mix's output channel at that offset and mix's/grouped's columns
    assert len(groups["a"]) == 6 and len(groups["b"]) == 4
    for name in ("a", "b"):
        assert {(name, "rows"), ("mix", "rows"), ("mix", "cols"), ("grouped", "cols")} <= set(groups[name].producers)
    units = groups["b"].atoms[0].units
    assert ("cat", 0, 6) in units and ("mix", 0, 6) in units and ("b", 0, 0) in units
    fc = groups["grouped"]
    assert len(fc) == 4 and len(fc.atoms[0].units) > 14   # each channel owns 7 x 2 = 14 fc columns


CASES = {
    "ds-cnn": lambda ex: build_model("ds-cnn-s", 12, seed=0),
    "transformer": lambda ex: build_model("microbert-2l", 12, seed=0),
    "bc-resnet": lambda ex: ex("bc_resnet", "BCResNet1"),
    "tc-resnet": lambda ex: ex("tc_resnet", "TCResNet8"),
    "matchboxnet": lambda ex: ex("matchboxnet", "MatchboxNet3x1x64"),
    "hello-edge": lambda ex: ex("hello_edge_cnn", "HelloEdgeCNN"),
    "resnet8": lambda ex: ex("resnet8", "ResNet8"),
    "mobilenet": lambda ex: ex("mobilenet_v1", "MobileNetV1_025", input_shape=(3, 32, 32)),
    "autoencoder": lambda ex: ex("fc_autoencoder", "FCAutoencoder"),
}
SHAPES = {"resnet8": (3, 32, 32), "mobilenet": (3, 32, 32), "autoencoder": (640,)}


@pytest.mark.parametrize("name", CASES)
def test_cutting_units_nothing_reads_keeps_outputs(name, example):
    """Zero every weight column that reads a third of each group's units: those units then affect
    nothing, so cutting them (with every coupled layer, BatchNorm, constant and shape) is exact."""
    model = CASES[name](example)
    _random_bn(model)
    gm = capture(model.eval(), SHAPES.get(name, (1, 49, 10)))
    groups = find_groups(gm)
    assert groups, f"{name}: no prunable group"
    keep = {}
    with torch.no_grad():
        for gr in groups:
            drop = list(range(0, len(gr), 3)) if len(gr) > 1 else []
            keep[gr.name] = torch.tensor([i for i in range(len(gr)) if i not in drop])
            for layer, how in gr.producers:
                if how != "cols":
                    continue
                w = gm.module(layer).weight
                for k, idx in enumerate(prune._layer_units(gm, gr, layer, "cols")):
                    if k in drop:
                        w[:, idx] = 0.0
    x = torch.randn(4, *gm.input_shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = gm(x)
    params = graph_stats(gm)["params"]
    prune.cut(gm, groups, keep)
    with torch.no_grad():
        after = gm(x)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)
    assert graph_stats(gm)["params"] < params


def test_ds_cnn_apply_cuts_for_real():
    m = build_model("ds-cnn-s", 12, seed=0)
    _random_bn(m)
    gm = capture(m, (1, 49, 10))
    macs = graph_stats(gm)["macs"]
    gm, summary = prune.apply(gm, prune.PruneConfig(sparse=0.7))
    kept = [after for _, after in summary["groups"].values()]
    assert sum(kept) == pytest.approx(0.3 * 5 * 64, abs=2) and min(kept) >= 7      # floor: 10% of 64
    dw, pw = gm.module("blocks.0.dw"), gm.module("blocks.0.pw")
    assert dw.weight.shape[0] == dw.groups == dw.in_channels == gm.module("conv").out_channels
    assert pw.in_channels == dw.out_channels and gm.module("fc").in_features == gm.module("blocks.3.pw").out_channels
    assert graph_stats(gm)["macs"] < 0.2 * macs
    assert gm(torch.randn(2, 1, 49, 10)).shape == (2, 12)


def test_transformer_heads_neurons_and_head_floor():
    gm = capture(build_model("microbert-2l", 12, seed=0), (1, 49, 10))
    kinds = {g.name: g.kind for g in find_groups(gm)}
    assert kinds == {"blocks.0.attn.q.heads": "heads", "blocks.0.ffn.fc1": "channels",
                     "blocks.1.attn.q.heads": "heads", "blocks.1.ffn.fc1": "channels"}
    p, summary = prune.apply(copy.deepcopy(gm), prune.PruneConfig(sparse=0.7))
    assert summary["groups"]["blocks.0.attn.q.heads"] == [4, 2]       # floored at half the heads
    assert p.module("blocks.0.attn.q").out_features == 2 * 36 == p.module("blocks.0.attn.o").in_features
    assert sum(p.module(f"blocks.{i}.ffn.fc1").out_features for i in range(2)) == pytest.approx(0.3 * 1152, abs=4)
    view = next(n for n in p.graph.nodes if n.op == "reshape" and n.inputs == ["blocks.0.attn.q"])
    assert view.shape == (49, 2, 36)                        # the head split follows the cut
    assert p(torch.randn(2, 1, 49, 10)).shape == (2, 12)
    p1, _ = prune.apply(copy.deepcopy(gm), prune.PruneConfig(sparse=0.7, head_floor=0.25))
    assert sum(p1.module(f"blocks.{i}.attn.q").out_features for i in range(2)) < 4 * 36


def test_choose_keep_ranks_globally_with_floors():
    scores = {"a": torch.tensor([1.0, 2, 3, 4]), "b": torch.tensor([5.0, 6, 7, 8])}
    keep = prune.choose_keep(scores, {"a": "heads", "b": "heads"}, 0.75, 0.1, {"heads": 0.5})
    assert [k.tolist() for k in keep.values()] == [[2, 3], [2, 3]]
    keep = prune.choose_keep({"a": torch.tensor([1.0, 9, 1, 9])}, {"a": "channels"}, 0.5, 0.1)
    assert keep["a"].tolist() == [1, 3]


def test_importance_criteria():
    gm = capture(build_model("ds-cnn-s", 12, seed=0), (1, 49, 10))
    groups = find_groups(gm)
    with torch.no_grad():
        gm.module("bn").weight.copy_(torch.linspace(0.1, 1.0, 64))
        gm.module("blocks.0.dw_bn").weight.zero_()
    bn = prune.importance(gm, groups, "bn")["conv"]
    torch.testing.assert_close(bn, torch.linspace(0.1, 1.0, 64))
    l2 = prune.importance(gm, groups, "l2")["conv"]
    conv, dw, pw = (gm.module(p).weight.detach() for p in ("conv", "blocks.0.dw", "blocks.0.pw"))
    want = (conv.pow(2).sum((1, 2, 3)) + dw.pow(2).sum((1, 2, 3)) + pw[:, :, 0, 0].pow(2).sum(0)).sqrt()
    torch.testing.assert_close(l2, want, rtol=1e-5, atol=1e-6)
    tf = capture(build_model("microbert-fast", 12, seed=0), (1, 49, 10))
    with pytest.raises(PqlrError, match="has no BatchNorm"):
        prune.importance(tf, find_groups(tf), "bn")


def test_slimming_penalty():
    gm = capture(build_model("ds-cnn-s", 12, seed=0), (1, 49, 10))
    pen = prune.SlimmingPenalty(gm, find_groups(gm), 1e-3)
    expected = sum(m.weight.abs().sum() for m in gm.modules() if isinstance(m, nn.BatchNorm2d))
    assert pen(gm).item() == pytest.approx(1e-3 * expected.item(), rel=1e-6)
    tf = capture(build_model("microbert-fast", 12, seed=0), (1, 49, 10))
    pen = prune.SlimmingPenalty(tf, find_groups(tf), 1.0)
    fc1 = tf.module("blocks.0.ffn.fc1").weight
    q = tf.module("blocks.0.attn.q").weight
    part = fc1.norm(dim=1).sum() + q.view(4, -1).norm(dim=1).sum()
    loss = pen(tf)
    assert loss.item() > part.item()
    loss.backward()
    assert fc1.grad is not None and q.grad is not None


def test_magnitude_and_2_4_masks_survive_training_step():
    for method in ("magnitude", "2:4"):
        gm = capture(build_model("ds-cnn-s", 12, seed=0), (1, 49, 10))
        p, s = prune.apply(gm, prune.PruneConfig(sparse=0.5, method=method))
        assert "cut no MACs" in s["note"]
        if method == "2:4":
            assert s["skipped"] == [f"blocks.{i}.dw (rows of 9)" for i in range(4)]   # 3x3 depthwise rows
        opt = torch.optim.SGD(p.parameters(), lr=0.1)
        p(torch.randn(2, 1, 49, 10)).sum().backward()
        opt.step()
        p(torch.randn(1, 1, 49, 10))                      # the pre-forward hook re-applies the mask
        w = p.module("blocks.0.pw").weight.detach().reshape(64, -1)
        if method == "2:4":
            assert torch.all((w.reshape(64, -1, 4) != 0).sum(-1) <= 2)
        else:
            assert 0.3 < (w == 0).float().mean() < 0.8


@pytest.mark.parametrize("bad", [dict(sparse=1.2), dict(sparse=-0.1), dict(method="random"), dict(head_floor=0.0),
                                 dict(importance="taylor")])
def test_bad_config(bad):
    with pytest.raises(PqlrError):
        prune.PruneConfig(**bad)
