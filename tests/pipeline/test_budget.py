"""The accuracy budget: its decision rule on made-up measurements, then the real pipeline on FSDD
where a low-rank stage must back off, and the same stage forced."""
from __future__ import annotations

import shutil
from dataclasses import replace

import pytest

from pqlr.errors import PqlrError
from pqlr.pipeline import PipelineConfig, run_pipeline
from pqlr.pipeline.budget import Attempt, BudgetConfig, choose, summary_lines, tolerance

FSDD = "fsdd:../shared/data/fsdd/recordings"


def _tries(vals, ran):
    def make(label, v):
        def run():
            ran.append(label)
            return Attempt(label, v)
        return run
    return [make(label, v) for label, v in vals]


def test_first_try_within_budget_stops_there():
    ran = []
    chosen, rec = choose(BudgetConfig(0.5), "pruned", 0.90, _tries([("a", 0.897), ("b", 0.95)], ran), 1000)
    assert chosen.label == "a" and ran == ["a"] and rec["within"] and rec["drop_points"] == 0.3


def test_backs_off_in_order_until_within():
    ran = []
    chosen, rec = choose(BudgetConfig(0.5), "quantized", 0.90,
                         _tries([("a", 0.80), ("b", 0.85), ("c", 0.899), ("d", 0.95)], ran), 1000, log=lambda m: None)
    assert chosen.label == "c" and ran == ["a", "b", "c"] and rec["within"]
    assert [t["setting"] for t in rec["tries"]] == ["a", "b", "c"] and rec["tries"][0]["drop_points"] == 10.0


def test_nothing_within_keeps_the_best_and_says_so():
    chosen, rec = choose(BudgetConfig(0.5), "low-rank", 0.90, _tries([("a", 0.80), ("b", 0.87), ("c", 0.85)], []),
                         1000, log=lambda m: None)
    assert chosen.label == "b" and rec["within"] is False and rec["drop_points"] == 3.0
    line = summary_lines([{"name": "low-rank", "details": {"budget": rec}}])[0]
    assert "-3.00 points" in line and "nothing tried kept it" in line


def test_forced_and_off_and_unmeasurable_keep_the_first():
    for budget, n_val, base in ((BudgetConfig(0.5, force=("pruned",)), 1000, 0.9), (BudgetConfig(None), 1000, 0.9),
                                (BudgetConfig(0.5), 0, None)):
        ran = []
        chosen, rec = choose(budget, "pruned", base, _tries([("a", 0.5), ("b", 0.9)], ran), n_val)
        assert chosen.label == "a" and ran == ["a"]
    assert rec["note"] == "not measured: no validation split"
    _, rec = choose(BudgetConfig(0.5, force=("pruned",)), "pruned", 0.9, _tries([("a", 0.5)], []), 1000)
    assert summary_lines([{"name": "pruned", "details": {"budget": rec}}]) == [
        "pruned: -40.00 points on validation, a (forced) -- over the 0.50-point budget, as forced"]


def test_the_budget_is_never_finer_than_one_validation_sample():
    assert tolerance(0.5, 1000) == 0.005 and tolerance(0.5, 100) == 0.01
    chosen, rec = choose(BudgetConfig(0.5), "pruned", 0.90, _tries([("a", 0.89), ("b", 0.9)], []), 100)
    assert chosen.label == "a" and rec["within"] and rec["tolerance_points"] == 1.0


@pytest.mark.parametrize("kw", [dict(max_drop=-1), dict(max_drop=101), dict(force=("quantised",))])
def test_bad_budget_settings_are_refused(kw):
    with pytest.raises(PqlrError):
        BudgetConfig(**kw)


# ---------------------------------------------------------------- the pipeline on real speech
@pytest.fixture(scope="module")
def rank_one(tmp_path_factory):
    """DS-CNN-S on FSDD (theo held out), asked for rank 1: the low-rank stage must back off."""
    out = tmp_path_factory.mktemp("budget") / "m.bin"
    cfg = PipelineConfig(model="ds-cnn-s", dataset=FSDD, holdout_speaker="theo", per_class=100, epochs=12,
                         prune_epochs=1, qat_epochs=1, lowrank_epochs=1, augment=False, progress=False,
                         prune=replace(PipelineConfig().prune, sparse=0.3),
                         quant=replace(PipelineConfig().quant, wbits=8, abits=8),
                         lowrank=replace(PipelineConfig().lowrank, rank=1), output=str(out))
    logs = []
    return cfg, run_pipeline(cfg, log=logs.append), logs


def test_lowrank_backs_off_when_rank_one_costs_too_much(rank_one):
    cfg, report, logs = rank_one
    st = {s["name"]: s for s in report["stages"]}
    b = st["low-rank"]["details"]["budget"]
    assert b["tries"][0]["setting"] == "rank 1" and b["tries"][0]["drop_points"] > 5      # rank 1 ruins it
    assert b["chosen"] != "rank 1" and b["within"] and not b["forced"]
    assert st["low-rank"]["val_accuracy"] >= st["quantized"]["val_accuracy"] - b["tolerance_points"] / 100 - 1e-9
    assert any("[low-rank] rank 1: validation" in m and "backing off" in m for m in logs)
    assert any(line.startswith("low-rank:") and "back-off" in line for line in report["budget"])
    assert any("low-rank backed off to" in n for n in report["notes"])
    md = (cfg.out_dir / "report.md").read_text()
    assert "## Accuracy budget" in md and "low-rank:" in md
    for prev, name in (("original", "pruned"), ("pruned", "quantized"), ("quantized", "low-rank")):
        assert st[name]["details"]["budget"]["input_val"] == st[prev]["val_accuracy"]    # against its input


def test_a_forced_stage_keeps_its_setting_and_reports_the_cost(rank_one, tmp_path):
    cfg, report, _ = rank_one
    shutil.copytree(cfg.out_dir / "stages", tmp_path / "m" / "stages")
    for stage in ("low-rank", "distilled"):
        for ext in (".safetensors", ".json"):
            (tmp_path / "m" / "stages" / f"{stage}{ext}").unlink()
    forced = replace(cfg, output=str(tmp_path / "m.bin"), budget=BudgetConfig(0.5, force=("low-rank",)))
    again = run_pipeline(forced, resume=True, log=lambda m: None)
    st = {s["name"]: s for s in again["stages"]}
    b = st["low-rank"]["details"]["budget"]
    assert b["chosen"] == "rank 1" and b["forced"] and b["within"] is False and len(b["tries"]) == 1
    assert st["quantized"] == {s["name"]: s for s in report["stages"]}["quantized"]       # restored, not re-run
    assert any(line.startswith("low-rank:") and "as forced" in line for line in again["budget"])
    assert st["low-rank"]["weight_bytes"] < st["quantized"]["weight_bytes"]


def _obeys_the_budget(report):
    """Every compressing stage was measured against its input, and kept a try within the budget or,
    when none was, the best it measured."""
    st = report["stages"]
    assert all("budget" in s["details"] for s in st if s["name"] in ("pruned", "quantized", "low-rank"))
    for prev, row in zip(st, st[1:]):
        b = row["details"].get("budget")
        if b is None:                                  # distilled without a teacher: nothing to measure
            assert row["name"] == "distilled" and row["val_accuracy"] == prev["val_accuracy"]
            continue
        assert b["input_val"] == prev["val_accuracy"] and row["val_accuracy"] == b["val"]
        vals = [t["val"] for t in b["tries"]]
        if b["within"]:
            assert b["drop_points"] <= b["tolerance_points"] + 1e-6
        else:
            assert b["within"] is False and b["val"] == max(vals)


def test_every_stage_obeys_the_budget_on_fsdd(rank_one):
    _obeys_the_budget(rank_one[1])


def test_speech_commands_sample_with_a_few_words(tmp_path):
    """The Speech Commands sample (yes/no/up/down, ~10 clips a word): every stage measured and recorded,
    the budget one validation clip wide."""
    cfg = PipelineConfig(model="ds-cnn-s", dataset="speech_commands:../shared/data/speech_commands_mini",
                         words=("yes", "no", "up", "down"), epochs=8, prune_epochs=1, qat_epochs=1,
                         lowrank_epochs=1, augment=False, progress=False,
                         prune=replace(PipelineConfig().prune, sparse=0.5),
                         quant=replace(PipelineConfig().quant, wbits=8, abits=8), output=str(tmp_path / "sc.bin"))
    report = run_pipeline(cfg, log=lambda m: None)
    _obeys_the_budget(report)
    st = {s["name"]: s for s in report["stages"]}
    assert st["pruned"]["details"]["budget"]["tolerance_points"] == round(100 / 12, 3)     # 12 validation clips
    assert [line.split(":")[0] for line in report["budget"]] == ["pruned", "quantized", "low-rank"]


def test_quantized_gives_the_most_sensitive_layer_8_bits_and_low_rank_keeps_them(tmp_path, monkeypatch):
    """When QAT, longer QAT and PTQ all lose too much (scripted here: only a fake-quant model with a
    per-layer override scores well), the quantized stage tries 8-bit weights in the one most sensitive
    layer; low-rank then carries that layer's bits onto its factors and the C still matches."""
    from pqlr.compress.qmodel import QuantModel
    from pqlr.pipeline import stages

    def scripted(ctx, model):
        return 0.5 if isinstance(model, QuantModel) and not model.cfg.per_layer_wbits else 0.9
    monkeypatch.setattr(stages, "val_score", scripted)
    cfg = PipelineConfig(model="ds-cnn-s", dataset="speech_commands:../shared/data/speech_commands_mini",
                         words=("yes", "no"), epochs=1, prune_epochs=0, qat_epochs=1, lowrank_epochs=1,
                         augment=False, progress=False, prune=replace(PipelineConfig().prune, sparse=0.25),
                         quant=replace(PipelineConfig().quant, wbits=4, abits=8),
                         lowrank=replace(PipelineConfig().lowrank, rank=4), output=str(tmp_path / "s.bin"))
    report = run_pipeline(cfg, log=lambda m: None)
    st = {s["name"]: s for s in report["stages"]}
    q = st["quantized"]["details"]["budget"]
    assert [t["setting"] for t in q["tries"]] == ["QAT 1 epochs", "QAT 2 epochs", "QAT 4 epochs", "PTQ",
                                                  q["chosen"]]
    assert q["chosen"].startswith("8-bit weights in ") and q["chosen"].endswith("(most sensitive)")
    layer = q["chosen"][len("8-bit weights in "):-len(" (most sensitive)")]
    lr = st["low-rank"]["details"]
    assert lr["budget"]["chosen"] == "rank 4"
    factorized = {r["layer"] for r in lr["lowrank"] if r["action"] == "factorized"}
    assert factorized                                              # rank 4 saves bytes somewhere
    bits = report["final"]["layer_wbits"]
    if layer in factorized:
        assert bits.get(f"{layer}.first") == bits.get(f"{layer}.second") == 8
    else:
        assert bits.get(layer) == 8
    assert report["final"]["host_check"]["mismatches"] == 0


def test_per_layer_bits_follow_a_layer_onto_its_factors():
    from pqlr.compress.quantize import QuantConfig
    from pqlr.pipeline.stages import _bits_after_factorizing
    q = QuantConfig(wbits=4, per_layer_wbits={"fc": 8, "conv1": 2})
    out = _bits_after_factorizing(q, [{"layer": "fc", "action": "factorized"}, {"layer": "conv1", "action": "skipped"}])
    assert out.per_layer_wbits == {"fc.first": 8, "fc.second": 8, "conv1": 2} and out.wbits == 4
    assert _bits_after_factorizing(QuantConfig(wbits=4), [{"layer": "fc", "action": "factorized"}]).per_layer_wbits is None


def test_low_rank_leaves_the_worst_approximated_layer_whole():
    from pqlr.compress.lowrank import LowRankConfig
    from pqlr.pipeline.stages import _keep_worst_whole
    seen = []

    def factorize(lr, label):
        seen.append((lr, label))
        return lambda: Attempt(label, 0.9)
    summary = [{"layer": "a", "action": "factorized", "rel_error": 0.2},
               {"layer": "b", "action": "factorized", "rel_error": 0.6},
               {"layer": "c", "action": "skipped"}]
    a = _keep_worst_whole(LowRankConfig(rank=4), summary, factorize)
    assert a.label == "rank 4, b kept whole" and seen[0][0].keep == ("b",)
    assert _keep_worst_whole(LowRankConfig(rank=4), summary[:1], factorize) is None   # one layer: that is "none"
    _, rec = choose(BudgetConfig(0.5), "low-rank", 0.9, [lambda: Attempt("x", 0.5), lambda: None,
                                                         lambda: Attempt("y", 0.9)], 1000, log=lambda m: None)
    assert [t["setting"] for t in rec["tries"]] == ["x", "y"]              # a try that does not apply is skipped
