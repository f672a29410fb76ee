"""pqlr.hw.profiles: the shipped chip profiles and the loader's errors."""
from __future__ import annotations

import copy
import json

import pytest

from pqlr.errors import PqlrError
from pqlr.hw.profiles import FIGURES, load_profile, parse_profile, profile_names

SHIPPED = ["c908", "esp32-c3", "esp32-c6", "esp32-p4", "esp32-s3", "nrf52840", "rk3576-npu",
           "rp2040", "stm32f4", "stm32h7"]


def test_shipped_profiles_load_and_every_figure_is_sourced():
    assert profile_names() == SHIPPED
    for name in SHIPPED:
        p = load_profile(name)
        assert p.name == name
        for fig in [*p.figures.values(), *p.energy_pj.values()]:
            assert fig.source.strip()
            assert fig.value is not None or fig.source.lower().startswith("unknown")


def test_esp32_c6_facts():
    p = load_profile("esp32-c6")
    assert (p.isa, p.verify_target, p.kind) == ("rv32imac", "rv32imac", "mcu")
    assert p.value("clock_hz") == 160_000_000 and p.value("sram_bytes") == 512 * 1024
    assert "no-fpu" in p.features
    assert p.energy_pj["dram_read_32b"].value == 640.0  # Horowitz default
    assert load_profile("stm32f4").verify_target == "cortex-m4"
    assert load_profile("rk3576-npu").kind == "npu" and "2:4-structured-sparsity" in load_profile("rk3576-npu").features


def _raw() -> dict:
    from pqlr.hw.profiles import TARGETS_DIR
    return json.loads((TARGETS_DIR / "esp32-c6.json").read_text())


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(colour="red"), "unknown key 'colour'"),
    (lambda r: r.pop("clock_hz"), "missing field 'clock_hz'"),
    (lambda r: r.pop("isa"), "missing field 'isa'"),
    (lambda r: r.update(clock_hz={"value": "fast", "source": "x"}), "clock_hz.value"),
    (lambda r: r.update(clock_hz=160e6), "clock_hz: must be an object"),
    (lambda r: r.update(sram_bytes={"value": 1.5, "source": "x"}), "sram_bytes.value: must be a whole number"),
    (lambda r: r.update(voltage_v={"value": -3.3, "source": "x"}), "voltage_v.value: must be a positive"),
    (lambda r: r.update(voltage_v={"value": None, "source": "datasheet"}), "voltage_v: a null value"),
    (lambda r: r.update(voltage_v={"value": 3.3, "source": ""}), "voltage_v.source"),
    (lambda r: r.update(verify_target="x86"), "verify_target must be one of"),
    (lambda r: r.update(kind="gpu"), "kind must be one of"),
    (lambda r: r.update(features="no-fpu"), "'features' must be a list"),
    (lambda r: r.update(energy_pj={"int3_add": {"value": 1, "source": "x"}}), "unknown entry 'int3_add'"),
])
def test_loader_errors_name_the_field(edit, message):
    raw = _raw()
    edit(raw)
    with pytest.raises(PqlrError, match=message):
        parse_profile(raw, "esp32-c6.json")


def test_load_by_path_with_energy_override(tmp_path):
    raw = copy.deepcopy(_raw())
    raw["name"] = "my-board"
    raw["energy_pj"] = {"sram_read_64b_1mb": {"value": 50, "source": "my measurement"}}
    path = tmp_path / "my-board.json"
    path.write_text(json.dumps(raw))
    p = load_profile(path)
    assert p.name == "my-board"
    assert p.energy_pj["sram_read_64b_1mb"].value == 50.0
    assert p.energy_pj["int8_mult"].value == 0.2
    assert set(p.figures) == set(FIGURES)


def test_unknown_name_lists_the_known_ones(tmp_path):
    with pytest.raises(PqlrError, match="unknown hardware profile 'esp8266'.*esp32-c6"):
        load_profile("esp8266")
    with pytest.raises(PqlrError, match="no such file"):
        load_profile(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(PqlrError, match="not valid JSON"):
        load_profile(bad)
