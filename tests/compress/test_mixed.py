"""Mixed precision: per-layer sensitivity, bit choice under a flash budget, BudgetError."""
import pytest
import torch

from pqlr import primitives as P
from pqlr.compress.mixed import MixedConfig, choose_bits, plan_mixed, sensitivity, weight_counts
from pqlr.compress.quantize import QuantConfig, quantize_
from pqlr.errors import BudgetError, PqlrError
from pqlr.models import build_model


def _x(n=32, seed=0):
    return torch.randn(n, 1, 49, 10, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def qm():
    model = build_model("ds-cnn-s", 12, seed=0, channels=(16, 24, 24))
    return quantize_(model, QuantConfig(), calib=[_x()], input_shape=(1, 49, 10))


@pytest.fixture(scope="module")
def sens(qm):
    return sensitivity(qm, [_x(16, 1)], bits=(8, 4, 2, 1))


def _bytes(counts, bits):
    return sum(c * P.packed_row_bytes(k, bits[l]) for l, (c, k) in counts.items())


def test_sensitivity_table(qm, sens):
    assert list(sens) == qm.program.layers
    assert all(set(v) == {8, 4, 2, 1} for v in sens.values())
    mean = {b: sum(v[b] for v in sens.values()) / len(sens) for b in (8, 4, 1)}
    assert mean[8] > mean[4] > mean[1]
    assert qm.weight_bits() == {l: 8 for l in qm.program.layers}      # model restored


def test_choice_meets_budget_with_least_loss(qm, sens):
    counts = weight_counts(qm)
    assert counts["blocks.0.pw"] == (24, 16) and counts["conv"] == (16, 40)
    full = _bytes(counts, {l: 8 for l in counts})
    low = _bytes(counts, {l: 1 for l in counts})
    budget = _bytes(counts, {l: 4 for l in counts}) - 1          # all-4 bit just misses
    choice = choose_bits(sens, counts, budget)
    assert _bytes(counts, choice) <= budget
    assert set(choice.values()) <= {8, 4, 2, 1} and len(set(choice.values())) > 1
    assert choose_bits(sens, counts, full) == {l: 8 for l in counts}
    with pytest.raises(BudgetError, match=rf"at least {low} bytes"):
        choose_bits(sens, counts, low - 1)


def test_knapsack_cuts_the_insensitive_layer_first():
    sens = {"a": {8: 40.0, 4: 20.0, 1: 5.0}, "b": {8: 40.0, 4: 39.0, 1: 35.0}}
    counts = {"a": (10, 100), "b": (10, 100)}
    assert choose_bits(sens, counts, 1500) == {"a": 8, "b": 4}            # 1000 + 500
    assert choose_bits(sens, counts, 1130) == {"a": 8, "b": 1}            # 1000 + 130
    assert choose_bits(sens, counts, 1000) == {"a": 4, "b": 4}
    assert choose_bits({"a": {8: 1.0, 1: 0.0}}, {"a": 64}, 8) == {"a": 1}  # plain weight counts


def test_plan_mixed_feeds_quantize(qm):
    counts = weight_counts(qm)
    budget = _bytes(counts, {l: 4 for l in counts})
    choice, table = plan_mixed(qm, [_x(16, 1)], MixedConfig(flash=budget, candidates=(8, 4, 2)))
    assert sum(r["bytes"] for r in table) <= budget
    assert [r["layer"] for r in table] == qm.program.layers
    assert all({"layer", "weights", "bits", "bytes", "sqnr_db", "loss_db"} <= set(r) for r in table)
    model = build_model("ds-cnn-s", 12, seed=0, channels=(16, 24, 24))
    mixed = quantize_(model, QuantConfig(per_layer_wbits=choice), calib=[_x()], input_shape=(1, 49, 10))
    assert mixed.weight_bits() == choice


def test_mixed_config_validation():
    with pytest.raises(PqlrError):
        MixedConfig(flash=0)
    with pytest.raises(PqlrError):
        MixedConfig(flash=100, candidates=(8, 3))
    assert MixedConfig(flash=10, candidates=(1, 8, 4)).candidates == (8, 4, 1)
