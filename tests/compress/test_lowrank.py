"""Low-rank SVD: reconstruction error falls with rank, skipping layers that would not save bytes."""
import pytest
import torch

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


def test_apply_replaces_and_skips():
    m = build_model("microbert-2l", 12, seed=0).eval()
    x = torch.randn(2, 1, 49, 10)
    m, summary = lowrank.apply(m, lowrank.LowRankConfig(rank=16))
    rows = {r["layer"]: r for r in summary}
    assert rows["embed"]["action"] == "skipped" and "saves no bytes" in rows["embed"]["reason"]
    assert rows["blocks.0.ffn.fc1"]["action"] == "factorized"
    assert isinstance(m.blocks[0].ffn.fc1, lowrank.LowRankLinear)
    assert m(x).shape == (2, 12)


def test_skip_decision_counts_deployed_bytes_not_params():
    # 31x35 at rank 16: 1,056 factor weights < 1,085, but 16 extra channels of bias/multiplier/shift
    # make the factors larger as deployed; a 144x174 FFN layer at 4 bits does save bytes
    m = torch.nn.Sequential(torch.nn.Linear(35, 31), torch.nn.Linear(174, 144))
    _, summary = lowrank.apply(m, lowrank.LowRankConfig(rank=16), wbits=4)
    small, big = summary
    assert small["params_after"] < small["params_before"] and small["action"] == "skipped"
    assert small["bytes_after"] > small["bytes_before"] and "4-bit" in small["reason"]
    assert big["action"] == "factorized" and big["bytes_after"] < big["bytes_before"]
    assert lowrank.deployed_bytes(144, 174, 4) == 144 * (87 + lowrank.CHANNEL_BYTES)
    assert lowrank.deployed_bytes(144, 174, 4, rank=16) == 16 * (87 + 9) + 144 * (8 + 9)


def test_full_rank_energy_keeps_function():
    m = build_model("ds-cnn-s", 12, seed=0).eval()
    x = torch.randn(2, 1, 49, 10)
    y = m(x)
    m, summary = lowrank.apply(m, lowrank.LowRankConfig(rank=None, energy=1.0))
    assert all(r["action"] == "skipped" for r in summary)   # full rank never saves bytes
    torch.testing.assert_close(m(x), y)


def test_energy_rank_and_bad_rank():
    w = torch.diag(torch.tensor([10.0, 1.0, 0.1, 0.01]))
    assert lowrank.choose_rank(w, lowrank.LowRankConfig(rank=None, energy=0.98)) == 1
    assert lowrank.choose_rank(w, lowrank.LowRankConfig(rank=None, energy=0.99995)) == 3
    with pytest.raises(PqlrError, match="--rank"):
        lowrank.LowRankConfig(rank=0)
