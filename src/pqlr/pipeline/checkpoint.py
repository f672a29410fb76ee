"""Per-stage pipeline checkpoints: safetensors + JSON, written atomically, restorable for --resume.

A stage checkpoint holds the captured float model (its graph spec: JSON, never code) and weights,
and the quantized twin's state with its QuantConfig. Any model a user brings resumes the same way."""
from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from ..capture import GraphModel
from ..compress.quantize import QuantConfig, quantize_
from ..errors import PqlrError
from ..io import load_state, save_state


def save_stage(stage_dir: Path, name: str, ctx, row: dict) -> None:
    tensors = {f"float.{k}": v for k, v in ctx.model.state_dict().items()}
    if ctx.qmodel is not None:
        tensors.update({f"quant.{k}": v for k, v in ctx.qmodel.state_dict().items()})
    meta = {
        "stage": name,
        "row": row,
        "model_spec": ctx.model.spec(),
        "quant_config": asdict(ctx.qmodel_cfg) if ctx.qmodel_cfg else None,
        "quant_chosen": asdict(ctx.quant) if ctx.quant else None,
        "notes": ctx.notes,
    }
    save_state(stage_dir / f"{name}.safetensors", tensors, json.loads(json.dumps(meta, default=str)))


def load_stage(stage_dir: Path, name: str, ctx, calib) -> dict | None:
    """Restore ctx.model / ctx.qmodel from a finished stage; None if the stage never finished.
    `calib(n)` gives n calibration batches (the quantizers are then overwritten by the checkpoint)."""
    path = stage_dir / f"{name}.safetensors"
    if not path.is_file() or not path.with_suffix(".json").is_file():
        return None
    tensors, meta = load_state(path)
    if not isinstance(meta, dict) or "model_spec" not in meta or "row" not in meta:
        raise PqlrError(f"{path}: not a PQLR stage checkpoint; delete the stages folder to start over")
    model = GraphModel.from_spec(meta["model_spec"])
    load_into(model, tensors, "float.", path)
    ctx.model = model
    ctx.notes = list(meta.get("notes", []))
    if meta.get("quant_config"):
        qcfg = quant_config(meta["quant_config"], path)
        q = quantize_(copy.deepcopy(model), qcfg, step="prepare", calib=calib(min(qcfg.calib, 8)))
        load_into(q, tensors, "quant.", path)
        ctx.qmodel, ctx.qmodel_cfg = q, qcfg
    if meta.get("quant_chosen"):
        ctx.quant = quant_config(meta["quant_chosen"], path)
    return meta["row"]


def quant_config(raw: dict, path) -> QuantConfig:
    try:
        return QuantConfig(**raw)
    except (TypeError, PqlrError) as e:
        raise PqlrError(f"{path}: bad quant_config ({e})") from None


def load_into(model, tensors: dict, prefix: str, path: Path) -> None:
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise PqlrError(f"{path}: weights do not fit the model ({str(e).splitlines()[0]})") from None
    if missing or unexpected:
        raise PqlrError(f"{path}: stage checkpoint does not match its model (missing {missing[:3]}, "
                        f"unexpected {unexpected[:3]}); delete the stages folder to start over")


def fakequant_accuracy(ckpt: str | Path, inputs: torch.Tensor, labels) -> float:
    """Top-1 accuracy of a quantized stage checkpoint's fake-quant model on float inputs (N, *sample)."""
    path = Path(ckpt)
    if not path.is_file():
        raise PqlrError(f"--fakequant {path}: no such checkpoint")
    tensors, meta = load_state(path)
    meta = meta or {}
    if not meta.get("quant_config") or not meta.get("model_spec"):
        raise PqlrError(f"--fakequant {path}: not a quantized stage checkpoint (no quant_config/model_spec)")
    model = GraphModel.from_spec(meta["model_spec"])
    load_into(model, tensors, "float.", path)
    qm = quantize_(model, quant_config(meta["quant_config"], path), step="prepare", calib=[inputs[:8]])
    if any(k.startswith("quant.w_int__") for k in tensors):
        qm.freeze()                                   # a converted checkpoint: integer buffers too
    load_into(qm, tensors, "quant.", path)           # the learned steps/offsets replace the calibration
    qm.eval()
    with torch.no_grad():
        pred = torch.cat([qm(inputs[i:i + 256]) for i in range(0, len(inputs), 256)]).argmax(dim=1).numpy()
    return float(np.mean(pred == np.asarray(labels)))
