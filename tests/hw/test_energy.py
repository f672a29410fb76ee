"""pqlr.hw.energy: the Horowitz 45 nm table and the arithmetic on it."""
from __future__ import annotations

import pytest

from pqlr.errors import PqlrError
from pqlr.hw.energy import (DEFAULT_ENERGY_PJ, Figure, dram_read_pj, energy_table, mac_pj,
                            sram_read_pj, sram_tier)


def test_table_holds_the_horowitz_figures():
    t = {k: f.value for k, f in DEFAULT_ENERGY_PJ.items()}
    assert (t["int8_add"], t["int8_mult"], t["int32_add"], t["int32_mult"]) == (0.03, 0.2, 0.1, 3.1)
    assert (t["fp16_add"], t["fp16_mult"], t["fp32_add"], t["fp32_mult"]) == (0.4, 1.1, 0.9, 3.7)
    assert (t["sram_read_64b_8kb"], t["sram_read_64b_32kb"], t["sram_read_64b_1mb"]) == (10, 20, 100)
    assert t["dram_read_32b"] == 640
    assert all("Horowitz" in f.source for f in DEFAULT_ENERGY_PJ.values())


def test_mac_and_memory_arithmetic():
    t = energy_table()
    assert mac_pj(t, "int8") == pytest.approx(0.3)     # int8 mult + int32 accumulate
    assert mac_pj(t, "fp32") == pytest.approx(4.6)
    assert sram_tier(8 * 1024) == "sram_read_64b_8kb"
    assert sram_tier(8 * 1024 + 1) == "sram_read_64b_32kb"
    assert sram_tier(512 * 1024) == sram_tier(4 << 20) == "sram_read_64b_1mb"
    assert sram_read_pj(t, 64, 4096) == pytest.approx(80.0)     # 8 words x 10 pJ
    assert dram_read_pj(t, 64) == pytest.approx(10240.0)        # 16 words x 640 pJ
    with pytest.raises(PqlrError, match="unknown MAC precision 'int3'"):
        mac_pj(t, "int3")


def test_unknown_figure_rules():
    with pytest.raises(PqlrError, match="must have a source starting with 'unknown'"):
        Figure(None, "datasheet")
    t = energy_table({"dram_read_32b": Figure(None, "unknown here")})
    with pytest.raises(PqlrError, match="dram_read_32b is unknown"):
        dram_read_pj(t, 4)
