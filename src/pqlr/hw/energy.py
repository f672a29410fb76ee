"""Energy per operation and per memory access (pJ): the default table and the arithmetic on it.

Default: Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014,
45 nm, 0.9 V. A profile may override single entries (each with its own source).
Energy is dominated by moving data: one 64-bit read from a 1 MB SRAM (100 pJ) costs 500 int8
multiplies; one 32-bit DRAM read (640 pJ) costs 3,200.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import PqlrError

HOROWITZ = "Horowitz, ISSCC 2014, 45 nm"


@dataclass(frozen=True)
class Figure:
    """One number with where it comes from; value None means unknown (source says so)."""
    value: float | None
    source: str

    def __post_init__(self):
        if not isinstance(self.source, str) or not self.source.strip():
            raise PqlrError("every figure needs a non-empty source string")
        if self.value is None and not self.source.lower().startswith("unknown"):
            raise PqlrError(f"a null figure must have a source starting with 'unknown', got {self.source!r}")


DEFAULT_ENERGY_PJ: dict[str, Figure] = {
    "int8_add": Figure(0.03, HOROWITZ),
    "int8_mult": Figure(0.2, HOROWITZ),
    "int32_add": Figure(0.1, HOROWITZ),
    "int32_mult": Figure(3.1, HOROWITZ),
    "fp16_add": Figure(0.4, HOROWITZ),
    "fp16_mult": Figure(1.1, HOROWITZ),
    "fp32_add": Figure(0.9, HOROWITZ),
    "fp32_mult": Figure(3.7, HOROWITZ),
    "sram_read_64b_8kb": Figure(10.0, HOROWITZ),
    "sram_read_64b_32kb": Figure(20.0, HOROWITZ),
    "sram_read_64b_1mb": Figure(100.0, HOROWITZ),
    "dram_read_32b": Figure(640.0, HOROWITZ),
}

# A MAC at each precision: (multiply entry, accumulate entry). int8/int4 products accumulate in int32.
MAC_OPS = {
    "int8": ("int8_mult", "int32_add"),
    "int4": ("int8_mult", "int32_add"),   # no 45 nm int4 figure: the int8 one is an upper bound
    "int32": ("int32_mult", "int32_add"),
    "fp16": ("fp16_mult", "fp16_add"),
    "fp32": ("fp32_mult", "fp32_add"),
}

_SRAM_TIERS = ((8 * 1024, "sram_read_64b_8kb"), (32 * 1024, "sram_read_64b_32kb"),
               (1024 * 1024, "sram_read_64b_1mb"))


def energy_table(overrides: dict[str, Figure] | None = None) -> dict[str, Figure]:
    """The default table with a profile's overrides applied (unknown entry names are errors)."""
    table = dict(DEFAULT_ENERGY_PJ)
    for name, fig in (overrides or {}).items():
        if name not in table:
            raise PqlrError(f"energy_pj: unknown entry {name!r}; known: {', '.join(table)}")
        table[name] = fig
    return table


def _pj(table: dict[str, Figure], name: str) -> float:
    value = table[name].value
    if value is None:
        raise PqlrError(f"energy_pj.{name} is unknown ({table[name].source})")
    return float(value)


def mac_pj(table: dict[str, Figure], dtype: str = "int8") -> float:
    """Energy of one multiply-accumulate at `dtype` (pJ)."""
    if dtype not in MAC_OPS:
        raise PqlrError(f"unknown MAC precision {dtype!r}; choose one of {', '.join(MAC_OPS)}")
    mult, add = MAC_OPS[dtype]
    return _pj(table, mult) + _pj(table, add)


def sram_tier(capacity_bytes: int) -> str:
    """The table entry for an SRAM of `capacity_bytes`: the smallest tier that holds it
    (8 KB / 32 KB / 1 MB); above 1 MB the 1 MB figure (a lower bound for bigger arrays)."""
    for limit, name in _SRAM_TIERS:
        if capacity_bytes <= limit:
            return name
    return _SRAM_TIERS[-1][1]


def sram_read_pj(table: dict[str, Figure], nbytes: float, capacity_bytes: int) -> float:
    """Energy to read `nbytes` from an SRAM of `capacity_bytes`, in 64-bit words (pJ)."""
    return nbytes / 8.0 * _pj(table, sram_tier(capacity_bytes))


def dram_read_pj(table: dict[str, Figure], nbytes: float) -> float:
    """Energy to read `nbytes` from DRAM, in 32-bit words (pJ)."""
    return nbytes / 4.0 * _pj(table, "dram_read_32b")
