"""YAML recipes for the pipeline: load into the same dataclasses the CLI fills.

Example (every key optional; unknown keys and bad values are errors):
    model: tinybert
    dataset: kws_chinese
    teacher: tinybert-6l
    epochs: 8
    prune:   {sparse: 0.7, method: structured, l1: 1.0e-4}
    quant:   {wbits: 4, abits: 8, method: lsq+, calib: 200, init: percentile}
    lowrank: {rank: 16}            # or {energy: 0.9}, or null to skip
    distill: {temperature: 6, alpha: 0.7}
    budget:  {max_drop: 0.5, force: [low-rank]}   # max_drop: null turns the accuracy budget off
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import yaml

from ..errors import PqlrError
from ..compress.distill import DistillConfig
from ..compress.lowrank import LowRankConfig
from ..compress.prune import PruneConfig
from ..compress.quantize import QuantConfig
from .budget import BudgetConfig
from .config import PipelineConfig

SECTIONS = {"prune": PruneConfig, "quant": QuantConfig, "lowrank": LowRankConfig, "distill": DistillConfig,
            "budget": BudgetConfig}


def _build(cls, values: Any, where: str):
    if not isinstance(values, dict):
        raise PqlrError(f"recipe: {where} must be a mapping, got {type(values).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise PqlrError(f"recipe: unknown key(s) in {where}: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    try:
        return cls(**values)
    except TypeError as e:
        raise PqlrError(f"recipe: bad value in {where}: {e}") from None


def recipe_overrides(path: str | Path) -> dict:
    """Read a recipe into PipelineConfig keyword arguments (sections become config objects)."""
    path = Path(path)
    if not path.is_file():
        raise PqlrError(f"{path}: no such recipe file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise PqlrError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise PqlrError(f"{path}: a recipe is a mapping of keys to values")
    top = {f.name for f in dataclasses.fields(PipelineConfig)}
    unknown = sorted(set(raw) - top)
    if unknown:
        raise PqlrError(f"{path}: unknown key(s): {', '.join(unknown)}")
    out = {}
    for key, value in raw.items():
        if key in SECTIONS:
            out[key] = None if (value is None and key == "lowrank") else _build(SECTIONS[key], value, key)
        elif key == "words" and value is not None:
            out[key] = tuple(value)
        else:
            out[key] = value
    return out


def load_recipe(path: str | Path, **cli_overrides) -> PipelineConfig:
    """Recipe values, then explicit command-line values on top."""
    try:
        return PipelineConfig(**{**recipe_overrides(path), **cli_overrides})
    except TypeError as e:
        raise PqlrError(f"{path}: {e}") from None
