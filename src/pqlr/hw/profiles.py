"""Hardware profiles: chips as data (src/pqlr/hw/targets/*.json), loaded and validated.

A profile file is one JSON object:
  name, kind ("mcu" / "npu" / "cpu"), description, isa, verify_target ("rv32imac" / "cortex-m4" /
  null: no emulator, the analytic cost model is used), features (list of strings),
  the figures below, each {"value": number or null, "source": "where it comes from"} (a null value
  has a source starting with "unknown": nothing is invented), and optionally
  energy_pj (overrides of the default table in energy.py, same figure form) and notes.
Unknown keys, missing fields and bad types are errors naming the field.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PqlrError
from ..io import read_json
from .energy import Figure, energy_table

TARGETS_DIR = Path(__file__).resolve().parent / "targets"
KINDS = ("mcu", "npu", "cpu")
VERIFY_TARGETS = ("rv32imac", "cortex-m4")

# figure name -> (must be an integer, meaning)
FIGURES = {
    "clock_hz": (True, "core clock, Hz"),
    "sram_bytes": (True, "on-chip SRAM usable by the application, bytes"),
    "flash_bytes": (True, "flash for code and weights, bytes"),
    "flash_read_bytes_per_s": (False, "sustained flash read rate, bytes/s"),
    "active_current_ma": (False, "supply current while computing, mA"),
    "sleep_current_ua": (False, "supply current asleep between inferences, uA"),
    "voltage_v": (False, "supply voltage the currents are given at, V"),
    "cycles_per_instruction": (False, "cycles per retired instruction (turns measured counts into time)"),
    "cycles_per_mac": (False, "whole-network cycles per MAC (analytic cost model)"),
    "macs_per_s": (False, "peak MAC throughput (analytic cost model for accelerators)"),
}
_TEXT = ("name", "kind", "description", "isa")
_OPTIONAL = ("energy_pj", "notes")


@dataclass(frozen=True)
class Profile:
    """One chip. `figures[name]` is a Figure (value None = unknown)."""
    name: str
    kind: str
    description: str
    isa: str
    verify_target: str | None
    features: tuple[str, ...]
    figures: dict = field(default_factory=dict)
    energy_pj: dict = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise PqlrError(f"profile {self.name}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.verify_target not in (*VERIFY_TARGETS, None):
            raise PqlrError(f"profile {self.name}: verify_target must be one of "
                            f"{', '.join(VERIFY_TARGETS)} or null, got {self.verify_target!r}")
        missing = set(FIGURES) - set(self.figures)
        if missing:
            raise PqlrError(f"profile {self.name}: missing field {sorted(missing)[0]!r}")

    def value(self, name: str) -> float | None:
        """The value of figure `name` (None if unknown)."""
        return self.figures[name].value

    def require(self, name: str, why: str) -> float:
        """The value of figure `name`, or a PqlrError saying it is unknown and why it is needed."""
        fig = self.figures[name]
        if fig.value is None:
            raise PqlrError(f"profile {self.name}: {name} is unknown ({fig.source}); needed for {why}")
        return fig.value


def profile_names() -> list[str]:
    """Names of the profiles shipped with PQLR."""
    return sorted(p.stem for p in TARGETS_DIR.glob("*.json"))


def _figure(where: str, raw, integer: bool) -> Figure:
    if not isinstance(raw, dict) or set(raw) != {"value", "source"}:
        raise PqlrError(f"{where}: must be an object with exactly 'value' and 'source'")
    value, source = raw["value"], raw["source"]
    if not isinstance(source, str) or not source.strip():
        raise PqlrError(f"{where}.source: must be a non-empty string")
    if value is None:
        if not source.lower().startswith("unknown"):
            raise PqlrError(f"{where}: a null value needs a source starting with 'unknown'")
        return Figure(None, source)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise PqlrError(f"{where}.value: must be a positive number or null, got {value!r}")
    if integer and value != int(value):
        raise PqlrError(f"{where}.value: must be a whole number, got {value!r}")
    return Figure(int(value) if integer else float(value), source)


def parse_profile(raw: dict, origin: str) -> Profile:
    """Validate a profile object (from JSON) into a Profile; errors name `origin` and the field."""
    if not isinstance(raw, dict):
        raise PqlrError(f"{origin}: a profile must be a JSON object")
    known = {*_TEXT, "verify_target", "features", *FIGURES, *_OPTIONAL}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise PqlrError(f"{origin}: unknown key {unknown[0]!r}")
    missing = sorted(k for k in (*_TEXT, "verify_target", "features", *FIGURES) if k not in raw)
    if missing:
        raise PqlrError(f"{origin}: missing field {missing[0]!r}")
    for key in (*_TEXT, *(("notes",) if "notes" in raw else ())):
        if not isinstance(raw[key], str) or not raw[key].strip():
            raise PqlrError(f"{origin}: field {key!r} must be a non-empty string")
    vt = raw["verify_target"]
    if vt is not None and not isinstance(vt, str):
        raise PqlrError(f"{origin}: field 'verify_target' must be a string or null")
    feats = raw["features"]
    if not isinstance(feats, list) or not all(isinstance(f, str) and f for f in feats):
        raise PqlrError(f"{origin}: field 'features' must be a list of strings")
    figures = {k: _figure(f"{origin}: {k}", raw[k], integer) for k, (integer, _) in FIGURES.items()}
    overrides = raw.get("energy_pj", {})
    if not isinstance(overrides, dict):
        raise PqlrError(f"{origin}: field 'energy_pj' must be an object")
    energy = {k: _figure(f"{origin}: energy_pj.{k}", v, False) for k, v in overrides.items()}
    try:
        table = energy_table(energy)
    except PqlrError as e:
        raise PqlrError(f"{origin}: {e}") from None
    return Profile(name=raw["name"], kind=raw["kind"], description=raw["description"], isa=raw["isa"],
                   verify_target=vt, features=tuple(feats), figures=figures, energy_pj=table,
                   notes=raw.get("notes", ""))


def load_profile(name_or_path: str | os.PathLike) -> Profile:
    """Load a shipped profile by name ("esp32-c6") or any profile file by path."""
    text = str(name_or_path)
    path = Path(text)
    if not (path.suffix == ".json" or os.sep in text or path.is_file()):
        path = TARGETS_DIR / f"{text}.json"
        if not path.is_file():
            raise PqlrError(f"unknown hardware profile {text!r}; known: {', '.join(profile_names())}")
    return parse_profile(read_json(path), path.name)
