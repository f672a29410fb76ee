"""The pipeline end to end on a small real model and real data: every stage runs, the report has
the article's table, the C package is written, and --resume after a crash gives the same result."""
import json
from types import SimpleNamespace

import pytest

from pqlr import pipeline
from pqlr.compress.lowrank import LowRankConfig
from pqlr.compress.prune import PruneConfig
from pqlr.compress.quantize import QuantConfig
from pqlr.pipeline import run, stages
from pqlr.pipeline.budget import BudgetConfig

FSDD = "fsdd:../shared/data/fsdd/recordings"


def _cfg(tmp_path, **kw):
    base = dict(model="ds-cnn-s", dataset=FSDD, holdout_speaker="theo", per_class=30, augment=False,
                teacher=None, prune=PruneConfig(sparse=0.5), quant=QuantConfig(wbits=4, abits=8, calib=64),
                lowrank=LowRankConfig(rank=16), epochs=2, prune_epochs=1, qat_epochs=1, lowrank_epochs=1,
                distill_epochs=1, output=str(tmp_path / "kws.bin"), progress=False,
                budget=BudgetConfig(None))          # two-epoch models: the mechanics (test_budget.py: the budget)
    base.update(kw)
    return pipeline.PipelineConfig(**base)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full")
    cfg = _cfg(tmp, target="esp32-c6")
    return cfg, pipeline.run_pipeline(cfg, log=lambda m: None)


def test_report_has_the_article_table(full_run):
    cfg, report = full_run
    names = [s["name"] for s in report["stages"]]
    assert names == ["original", "pruned", "quantized", "low-rank", "distilled"]
    for s in report["stages"]:
        for key in ("accuracy", "weight_bytes", "activation_bytes", "code_bytes", "macs"):
            assert key in s
    st = {s["name"]: s for s in report["stages"]}
    assert st["pruned"]["macs"] < st["original"]["macs"]
    assert st["quantized"]["weight_bytes"] < st["pruned"]["weight_bytes"] / 3      # fp32 -> int4 (+ int32 bias, multiplier, shift per channel)
    assert st["quantized"]["code_bytes"] and st["quantized"]["code_bytes"] > 0
    f = report["final"]
    assert f["host_check"]["mismatches"] == 0
    assert abs(f["accuracy_int"] - f["accuracy"]) <= 0.05
    assert f["ram_peak_bytes"] > 0 and f["flash_bytes"] >= f["weight_bytes"]
    est = f["estimate"]                                    # --target esp32-c6
    assert est["target"] == "esp32-c6" and est["latency_s"] > 0 and est["latency_source"] == "measured:rv32imac"
    assert any("saves no bytes" in json.dumps(s) or "skipped" in json.dumps(s) for s in report["stages"]) or \
        any("low-rank" in n for n in report["notes"])


def test_outputs_written(full_run):
    cfg, _ = full_run
    out = cfg.out_dir
    assert (out.parent / "kws.bin").read_bytes()[:4] == b"PQLR"
    for f in ("report.json", "report.md", "src/model.c", "src/model_data.c", "src/tiles.c", "CMakeLists.txt",
              "idf_component.yml", "library.properties", "Makefile"):
        assert (out / f).is_file(), f
    assert "const int8_t" in (out / "src/model_data.c").read_text()
    assert "| weights |" in (out / "report.md").read_text()


def test_resume_after_crash_gives_same_result(full_run, tmp_path, monkeypatch):
    cfg0, report0 = full_run
    cfg = _cfg(tmp_path, target="esp32-c6")
    real = stages.stage_lowrank

    def crash(ctx):
        raise RuntimeError("simulated crash")
    monkeypatch.setattr(run, "STAGES", [(n, crash if n == "low-rank" else f) for n, f in stages.STAGES])
    with pytest.raises(RuntimeError, match="simulated crash"):
        pipeline.run_pipeline(cfg, log=lambda m: None)
    assert (cfg.out_dir / "stages" / "quantized.safetensors").is_file()
    monkeypatch.setattr(run, "STAGES", [(n, real if n == "low-rank" else f) for n, f in stages.STAGES])
    logs = []
    report = pipeline.run_pipeline(cfg, resume=True, log=logs.append)
    assert any("restored" in m for m in logs)
    for a, b in zip(report0["stages"], report["stages"]):
        assert a["name"] == b["name"] and a["accuracy"] == b["accuracy"] and a["weight_bytes"] == b["weight_bytes"]
    assert report["final"]["accuracy_int"] == report0["final"]["accuracy_int"]
    assert (cfg.out_dir.parent / "kws.bin").read_bytes() == (cfg0.out_dir.parent / "kws.bin").read_bytes()


def test_lowrank_stage_is_a_no_op_when_no_layer_saves_bytes(tmp_path, monkeypatch):
    """All layers skipped -> the QAT'd model is kept (not re-quantized from float); otherwise the
    factorized model is quantized again."""
    from pqlr.capture import capture
    from pqlr.models import build_model

    monkeypatch.setattr(stages, "quant_row", lambda ctx, q: {"q": q})
    monkeypatch.setattr(stages, "_quantize", lambda ctx, fm, epochs, info, base=None: (("requantized", fm), None))
    monkeypatch.setattr(stages, "val_score", lambda ctx, model: None)
    qat_model = object()
    for rank, factorized in ((32, False), (8, True)):     # 64x64 1x1 convs at 4 bits: r=32 saves nothing
        ctx = stages.Context(_cfg(tmp_path, lowrank=LowRankConfig(rank=rank)), data=SimpleNamespace(val=[]))
        ctx.model, ctx.qmodel = capture(build_model("ds-cnn-s", 10, seed=0), (1, 49, 10)), qat_model
        row = stages.stage_lowrank(ctx)
        rows = ctx.stage_info["lowrank"]
        if factorized:
            assert row["q"][0] == "requantized" and "blocks.0.pw.first" in ctx.model.graph.modules()
        else:
            assert row["q"] is qat_model and "blocks.0.pw" in ctx.model.graph.modules()
            assert all(r["action"] == "skipped" for r in rows) and any("skipped" in n for n in ctx.notes)
