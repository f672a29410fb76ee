"""Per-stage pipeline checkpoints: safetensors + JSON, written atomically, restorable for --resume."""
from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path

from ..errors import PqlrError
from ..io import load_state, save_state
from ..models import model_from_config
from . import lowrank
from .quantize import QuantConfig, quantize_


def save_stage(stage_dir: Path, name: str, ctx, row: dict) -> None:
    if not hasattr(ctx.model, "config"):
        return  # user models without a config cannot be rebuilt: no resume for them
    tensors = {f"float.{k}": v for k, v in ctx.model.state_dict().items()}
    if ctx.qmodel is not None:
        tensors.update({f"quant.{k}": v for k, v in ctx.qmodel.state_dict().items()})
    meta = {
        "stage": name,
        "row": row,
        "model_config": ctx.model.config.to_dict(),
        "lowrank": ctx.lowrank_summary,
        "quant_config": asdict(ctx.qmodel_cfg) if ctx.qmodel_cfg else None,
        "notes": ctx.notes,
    }
    save_state(stage_dir / f"{name}.safetensors", tensors, json.loads(json.dumps(meta, default=str)))


def load_stage(stage_dir: Path, name: str, ctx) -> dict | None:
    """Restore ctx.model / ctx.qmodel from a finished stage; None if the stage never finished."""
    path = stage_dir / f"{name}.safetensors"
    if not path.is_file() or not path.with_suffix(".json").is_file():
        return None
    tensors, meta = load_state(path)
    model = model_from_config(meta["model_config"])
    if meta.get("lowrank"):
        lowrank.restructure(model, meta["lowrank"])
        ctx.lowrank_summary = meta["lowrank"]
    _load(model, tensors, "float.", path)
    ctx.model = model
    ctx.notes = list(meta.get("notes", []))
    if meta.get("quant_config"):
        qc = dict(meta["quant_config"])
        qcfg = QuantConfig(**qc)
        from .pipeline import _calib_batches

        q = quantize_(copy.deepcopy(model), qcfg, step="prepare", calib=_calib_batches(ctx, min(qcfg.calib, 8)))
        _load(q, tensors, "quant.", path)
        ctx.qmodel, ctx.qmodel_cfg = q, qcfg
    return meta["row"]


def _load(model, tensors: dict, prefix: str, path: Path) -> None:
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise PqlrError(f"{path}: stage checkpoint does not match its model (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]}); delete the stages folder to start over")
