"""pqlr.hw.estimate and `pqlr estimate`: arithmetic checked on hand-computed cases."""
from __future__ import annotations

import json

import pytest

from pqlr.cli import main
from pqlr.errors import PqlrError
from pqlr.hw.estimate import estimate
from pqlr.hw.profiles import load_profile, parse_profile, profile_names


def _fig(v, s="test figure"):
    return {"value": v, "source": s if v is not None else "unknown"}


def _profile(kind="mcu", **over):
    raw = dict(name="round", kind=kind, description="round numbers", isa="rv32imac",
               verify_target="rv32imac", features=[],
               clock_hz=_fig(100_000_000), sram_bytes=_fig(8 * 1024), flash_bytes=_fig(1 << 20),
               flash_read_bytes_per_s=_fig(40e6), active_current_ma=_fig(10.0),
               sleep_current_ua=_fig(100.0), voltage_v=_fig(3.0), cycles_per_instruction=_fig(1.0),
               cycles_per_mac=_fig(10.0), macs_per_s=_fig(None))
    raw.update({k: _fig(v) for k, v in over.items()})
    return parse_profile(raw, "round.json")


def test_measured_latency_energy_and_average_power():
    e = estimate(_profile(), macs=1000, weight_bytes=800, activation_bytes=400,
                 instructions=1_000_000, instructions_source="rv32imac",
                 rate_hz=10, budget_mw=5, accuracy=0.9)
    assert e["latency_source"] == "measured:rv32imac"
    assert e["latency_s"] == pytest.approx(0.01)              # 1e6 instr / 100 MHz
    assert e["energy_per_inference_j"] == pytest.approx(3e-4)  # 10 mA x 3 V x 10 ms
    # 30 mW for 10% of each second, 100 uA x 3 V = 0.3 mW for the other 90%
    assert e["duty_cycle"] == pytest.approx(0.1)
    assert e["average_power_mw"] == pytest.approx(3.0 + 0.27)
    assert e["fits_budget"] is True and e["keeps_up"] is True
    assert e["accuracy_per_mw"] == pytest.approx(0.9 / 3.27)
    # 1000 MACs x (0.2 + 0.1) pJ; (800 + 2 x 400) B / 8 x 10 pJ from an 8 KB SRAM
    assert e["energy_breakdown_pj"]["arithmetic"] == pytest.approx(300.0)
    assert e["energy_breakdown_pj"]["memory"] == pytest.approx(2000.0)
    assert e["energy_breakdown_pj"]["sram_tier"] == "sram_read_64b_8kb"
    assert "npu_weights_pj" not in e
    json.dumps(e)  # JSON-ready


def test_analytic_latency_with_flash_streaming():
    e = estimate(_profile(sram_bytes=512 * 1024), macs=1_000_000, weight_bytes=8, activation_bytes=0,
                 tile_bytes_streamed=4_000_000, rate_hz=1, budget_mw=10)
    assert e["latency_source"] == "analytic"
    assert e["compute_s"] == pytest.approx(0.1)         # 1e6 MACs x 10 cycles / 100 MHz
    assert e["flash_stream_s"] == pytest.approx(0.1)    # 4 MB / 40 MB/s
    assert e["latency_s"] == pytest.approx(0.2)
    assert e["energy_breakdown_pj"]["memory"] == pytest.approx(100.0)  # one word from a 1 MB-tier SRAM
    assert e["average_power_mw"] == pytest.approx(30 * 0.2 + 0.3 * 0.8)
    assert e["fits_budget"] is True


def test_rate_the_core_cannot_sustain_never_fits():
    e = estimate(_profile(), macs=10_000_000, weight_bytes=0, activation_bytes=0, rate_hz=2, budget_mw=1000)
    assert e["latency_s"] == pytest.approx(1.0) and e["keeps_up"] is False
    assert e["average_power_mw"] == pytest.approx(30.0) and e["fits_budget"] is False
    assert any("cannot be sustained" in n for n in e["notes"])


def test_unknown_figures_give_none_and_a_note():
    e = estimate(_profile(sleep_current_ua=None), macs=10, weight_bytes=0, activation_bytes=0, budget_mw=1)
    assert e["energy_per_inference_j"] is not None
    assert e["average_power_mw"] is None and e["fits_budget"] is None
    assert any("sleep current unknown" in n for n in e["notes"])
    with pytest.raises(PqlrError, match="cycles_per_mac and macs_per_s are both unknown"):
        estimate(_profile(cycles_per_mac=None), macs=10, weight_bytes=0, activation_bytes=0)
    with pytest.raises(PqlrError, match="flash_read_bytes_per_s is unknown"):
        estimate(_profile(flash_read_bytes_per_s=None), macs=10, weight_bytes=0, activation_bytes=0,
                 tile_bytes_streamed=10)


def test_npu_weight_stationary_vs_streaming():
    p = _profile(kind="npu", macs_per_s=1e9, cycles_per_mac=None)
    e = estimate(p, macs=2_000_000, weight_bytes=4000, activation_bytes=0)
    assert e["latency_s"] == pytest.approx(2e-3)          # 2e6 MACs / 1e9 MAC/s
    w = e["npu_weights_pj"]
    assert w["weight_stationary_per_inference"] == pytest.approx(500 * 10.0)   # 500 words, 8 KB tier
    assert w["streaming_from_dram_per_inference"] == pytest.approx(1000 * 640.0)
    assert w["weight_stationary_load_once"] == w["streaming_from_dram_per_inference"]


@pytest.mark.parametrize("kw, message", [
    (dict(macs=-1), "macs must be a non-negative"), (dict(rate_hz=0), "rate_hz must be a positive"),
    (dict(accuracy=97.1), "accuracy must be a fraction"), (dict(instructions=0), "instructions must be a positive"),
    (dict(budget_mw=-2), "budget_mw must be a positive"),
])
def test_bad_arguments(kw, message):
    args = dict(macs=10, weight_bytes=0, activation_bytes=0) | kw
    with pytest.raises(PqlrError, match=message):
        estimate(_profile(), **args)


def test_cli_estimate(tmp_path, capsys):
    out = tmp_path / "est.json"
    rc = main(["estimate", "--target", "esp32-c6", "--macs", "2660000", "--weight-bytes", "22600",
               "--activation-bytes", "16000", "--instructions", "16000000", "--instructions-source",
               "rv32imac", "--rate", "1/s", "--budget-mw", "10", "--json", str(out)])
    assert rc == 0
    est = json.loads(out.read_text())
    assert est["target"] == "esp32-c6" and est["latency_source"] == "measured:rv32imac"
    assert est["latency_s"] == pytest.approx(0.1)   # 16e6 instructions at 160 MHz
    assert est["energy_per_inference_j"] == pytest.approx(0.042 * 3.3 * 0.1)
    assert "esp32-c6: latency 100.000 ms" in capsys.readouterr().out
    assert main(["estimate", "--target", "esp32-c6", "--macs", "1", "--weight-bytes", "1",
                 "--activation-bytes", "1", "--rate", "fast"]) == 2
    assert "--rate 'fast'" in capsys.readouterr().err
    assert main(["estimate", "--list-targets"]) == 0
    assert "rk3576-npu" in capsys.readouterr().out
    assert main(["estimate", "--target", "esp32-c6", "--macs", "1"]) == 2
    assert "--weight-bytes" in capsys.readouterr().err


def test_figures_from_a_real_bin(tmp_path):
    """The .bin glue: MACs, weight/arena bytes and streamed tile bytes of a model file."""
    import importlib.util
    from pathlib import Path

    from pqlr.cli.estimate import figures_from_bin
    from pqlr.deploy import binfmt
    from pqlr.deploy.tiles import make_plan
    from pqlr.ir.ops import OPS

    spec = importlib.util.spec_from_file_location(
        "deploy_graphs", Path(__file__).resolve().parents[1] / "deploy" / "graphs.py")
    graphs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(graphs)
    g = graphs.cnn()
    plan = make_plan(g, 256)
    binfmt.write_bin(tmp_path / "m.bin", g, plan, {"model": "cnn"})
    figs = figures_from_bin(tmp_path / "m.bin")
    assert figs["macs"] == sum(OPS[n.op].macs(n, g) for n in g.nodes) > 0
    assert figs["weight_bytes"] == g.weight_bytes() > 0
    assert figs["activation_bytes"] > 0
    assert figs["tile_bytes_streamed"] == sum(plan.tile_sizes) > 0
    rc = main(["estimate", str(tmp_path / "m.bin"), "--target", "esp32-c6", "--json", str(tmp_path / "e.json")])
    assert rc == 0 and json.loads((tmp_path / "e.json").read_text())["latency_source"] == "analytic"


@pytest.mark.parametrize("name", profile_names())
def test_estimate_runs_for_every_shipped_profile(name):
    """Every profile gives a latency (measured or analytic, said which) and an energy figure, or
    names the figure it lacks -- never a made-up number."""
    from pqlr.errors import PqlrError

    prof = load_profile(name)
    kw = dict(macs=2_656_768, weight_bytes=23_000, activation_bytes=8_640, rate_hz=1.0, budget_mw=10.0, accuracy=0.9)
    try:
        r = estimate(prof, **kw)
    except PqlrError as e:   # no cycles/MAC figure: it says so, and works from measured instructions
        assert "unknown" in str(e) and name in str(e)
        try:
            r = estimate(prof, **kw, instructions=10_400_000, instructions_source="measured:rv32imac")
        except PqlrError as e2:   # e.g. a licensable core with no fixed clock: the figure is named
            assert "is unknown" in str(e2) and "needed for" in str(e2)
            return
    assert r["latency_s"] > 0
    assert r["latency_source"] == "analytic" or r["latency_source"].startswith("measured")
    assert r["energy_per_inference_j"] is None or r["energy_per_inference_j"] > 0
