"""Low-rank SVD on the captured graph: every Linear and kernel-1 Conv1d/Conv2d is eligible, the
decision is by deployed bytes, the factorized graph computes the low-rank product."""
import copy

import pytest
import torch
from torch import nn

from pqlr.capture import capture
from pqlr.compress import lowrank
from pqlr.errors import PqlrError
from pqlr.models import build_model


def test_error_decreases_with_rank_and_full_rank_is_exact():
    w = torch.randn(48, 32, generator=torch.Generator().manual_seed(0))
    errs = []
    for r in (1, 4, 8, 16, 32):
        a, b = lowrank.factorize(w, r)
        errs.append((torch.linalg.matrix_norm(w - a @ b) / torch.linalg.matrix_norm(w)).item())
    assert all(e1 > e2 for e1, e2 in zip(errs, errs[1:]))
    assert errs[-1] < 1e-5
    # Eckart-Young: the error equals the energy of the dropped singular values
    s = torch.linalg.svdvals(w.double())
    a, b = lowrank.factorize(w, 8)
    assert torch.linalg.matrix_norm((w - a @ b).double()).item() == pytest.approx(s[8:].pow(2).sum().sqrt().item(), rel=1e-4)


def test_apply_replaces_nodes_and_skips():
    gm = capture(build_model("microbert-2l", 12, seed=0).eval(), (1, 49, 10))
    x = torch.randn(2, 1, 49, 10)
    gm, summary = lowrank.apply(gm, lowrank.LowRankConfig(rank=16))
    rows = {r["layer"]: r for r in summary}
    assert rows["embed"]["action"] == "skipped" and "saves no bytes" in rows["embed"]["reason"]
    assert rows["blocks.0.ffn.fc1"]["action"] == "factorized"
    first, second = gm.graph.node("blocks.0.ffn.fc1.first"), gm.graph.node("blocks.0.ffn.fc1.second")
    assert second.inputs == [first.name] and first.shape == (49, 16)
    assert gm.module("blocks.0.ffn.fc1.first").weight.shape == (16, 144)
    assert gm.graph.consumers(second.name)[0].op == "act"
    assert gm(x).shape == (2, 12)


def test_keep_leaves_exactly_the_named_layers_whole():
    gm = capture(build_model("microbert-2l", 12, seed=0).eval(), (1, 49, 10))
    gm, summary = lowrank.apply(gm, lowrank.LowRankConfig(rank=16, keep=("blocks.0.ffn.fc1",)))
    rows = {r["layer"]: r for r in summary}
    assert rows["blocks.0.ffn.fc1"]["action"] == "skipped" and rows["blocks.0.ffn.fc1"]["reason"] == "kept whole (asked for)"
    assert rows["blocks.1.ffn.fc1"]["action"] == "factorized"        # only the named layer
    assert gm.graph.node("blocks.0.ffn.fc1") is not None


class Convs(nn.Module):
    """Pointwise Conv1d and Conv2d layers (and a 3x3 one, not eligible)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(6, 96, 1)
        self.c2 = nn.Conv2d(96, 80, 1, stride=(2, 1))
        self.c3 = nn.Conv2d(80, 80, 3, padding=1)

    def forward(self, x):                                   # (B, 6, 49)
        y = torch.relu(self.c1(x)).unsqueeze(-1)             # (B, 96, 49, 1)
        return self.c3(self.c2(y)).mean((2, 3))


def test_kernel_1_convs_factorize_and_full_rank_is_the_same_function():
    m = Convs().eval()
    gm = capture(m, (6, 49))
    x = torch.randn(3, 6, 49)
    gm2, summary = lowrank.apply(copy.deepcopy(gm), lowrank.LowRankConfig(rank=8), wbits=8)
    assert {r["layer"]: r["action"] for r in summary} == {"c1": "skipped", "c2": "factorized"}
    assert gm2.module("c2.first").stride == (2, 1) and gm2.module("c2.second").stride == (1, 1)
    assert isinstance(gm2.module("c2.first"), nn.Conv2d)
    a, b = lowrank.factorize(gm.module("c2").weight.detach()[:, :, 0, 0], 8)
    want = m.c3(nn.functional.conv2d(torch.relu(m.c1(x)).unsqueeze(-1), (a @ b)[:, :, None, None],
                                     m.c2.bias, stride=(2, 1))).mean((2, 3))
    torch.testing.assert_close(gm2(x), want, rtol=1e-4, atol=1e-5)


def test_skip_decision_counts_deployed_bytes_not_params():
    # 31x35 at rank 16: 1,056 factor weights < 1,085, but 16 extra channels of bias/multiplier/shift
    # make the factors larger as deployed; a 144x174 FFN layer at 4 bits does save bytes
    m = nn.Sequential(nn.Linear(35, 31), nn.ReLU(), nn.Linear(31, 174), nn.Linear(174, 144))
    _, summary = lowrank.apply(capture(m, (35,)), lowrank.LowRankConfig(rank=16), wbits=4)
    rows = {r["layer"]: r for r in summary}
    small, big = rows["0"], rows["3"]
    assert small["params_after"] < small["params_before"] and small["action"] == "skipped"
    assert small["bytes_after"] > small["bytes_before"] and "4-bit" in small["reason"]
    assert big["action"] == "factorized" and big["bytes_after"] < big["bytes_before"]
    assert lowrank.deployed_bytes(144, 174, 4) == 144 * (87 + lowrank.CHANNEL_BYTES)
    assert lowrank.deployed_bytes(144, 174, 4, rank=16) == 16 * (87 + 9) + 144 * (8 + 9)


def test_full_rank_energy_keeps_function():
    gm = capture(build_model("ds-cnn-s", 12, seed=0).eval(), (1, 49, 10))
    x = torch.randn(2, 1, 49, 10)
    y = gm(x)
    gm, summary = lowrank.apply(gm, lowrank.LowRankConfig(rank=None, energy=1.0))
    assert all(r["action"] == "skipped" for r in summary)   # full rank never saves bytes
    assert {r["layer"] for r in summary} == {"blocks.0.pw", "blocks.1.pw", "blocks.2.pw", "blocks.3.pw", "fc"}
    torch.testing.assert_close(gm(x), y)


def test_energy_rank_and_bad_rank():
    w = torch.diag(torch.tensor([10.0, 1.0, 0.1, 0.01]))
    assert lowrank.choose_rank(w, lowrank.LowRankConfig(rank=None, energy=0.98)) == 1
    assert lowrank.choose_rank(w, lowrank.LowRankConfig(rank=None, energy=0.99995)) == 3
    with pytest.raises(PqlrError, match="--rank"):
        lowrank.LowRankConfig(rank=0)
