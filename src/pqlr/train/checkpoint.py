"""Resumable training checkpoints: model, optimizer, scheduler and RNG states after each epoch, as
safetensors (every tensor) + JSON (everything else), never pickle.

Files are `DIR/epoch-NNNN.safetensors` and `DIR/epoch-NNNN.json`, each written atomically; the
older epochs are deleted only after both new files exist, and loading takes the newest epoch whose
two files agree, so an interrupted write never loses the previous checkpoint.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from ..errors import PqlrError
from ..io import load_state, save_state

_NAME = re.compile(r"^epoch-(\d{4,})\.safetensors$")


def split_state(obj, tensors: dict, prefix: str = "s"):
    """Nested dicts/lists holding tensors -> a JSON-able skeleton; tensors go to `tensors` by name.
    Dict keys keep their type (optimizer state is keyed by int)."""
    if isinstance(obj, torch.Tensor):
        name = f"{prefix}"
        tensors[name] = obj
        return {"__tensor__": name}
    if isinstance(obj, dict):
        return {"__dict__": [[k, split_state(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [split_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise PqlrError(f"cannot checkpoint a value of type {type(obj).__name__} at {prefix}")


def join_state(obj, tensors: dict):
    """Inverse of `split_state`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        return {k: join_state(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [join_state(v, tensors) for v in obj]
    return obj


def save_checkpoint(directory: str | Path, epoch: int, states: dict, meta: dict) -> Path:
    """Write `states` (name -> nested state dict) and JSON `meta` as the checkpoint of `epoch` (1-based)."""
    directory = Path(directory)
    path = directory / f"epoch-{epoch:04d}.safetensors"
    tensors: dict[str, torch.Tensor] = {"_epoch": torch.tensor(epoch, dtype=torch.int64)}
    skeleton = {name: split_state(state, tensors, name) for name, state in states.items()}
    save_state(path, tensors, {"epoch": epoch, "states": skeleton, **meta})
    for old in directory.glob("epoch-*.safetensors"):
        m = _NAME.match(old.name)
        if m and int(m.group(1)) < epoch:
            old.with_suffix(".json").unlink(missing_ok=True)
            old.unlink(missing_ok=True)
    return path


def clear_checkpoints(directory: str | Path) -> None:
    """Delete the epoch checkpoints in `directory` (a fresh, non-resumed run starts clean)."""
    for old in Path(directory).glob("epoch-*.safetensors"):
        if _NAME.match(old.name):
            old.with_suffix(".json").unlink(missing_ok=True)
            old.unlink(missing_ok=True)


def load_checkpoint(directory: str | Path) -> tuple[int, dict, dict] | None:
    """-> (epoch, states, meta) of the newest complete checkpoint, or None when there is none."""
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = sorted(((int(m.group(1)), p) for p in directory.glob("epoch-*.safetensors")
                    if (m := _NAME.match(p.name))), reverse=True)
    for epoch, path in found:
        if not path.with_suffix(".json").is_file():
            continue
        tensors, meta = load_state(path)
        if meta.get("epoch") != epoch or int(tensors.get("_epoch", torch.tensor(-1))) != epoch:
            continue
        states = {name: join_state(sk, tensors) for name, sk in meta.pop("states").items()}
        return epoch, states, meta
    return None
