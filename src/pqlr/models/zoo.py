"""The model zoo: names -> models, configs <-> models, and safetensors + JSON checkpoints.

`--model` accepts a zoo name (`ds-cnn-s`, `microbert-2l`, `tinybert`, ...), a checkpoint
(`run/model.safetensors` with `run/model.json` beside it), or a user's own model as
`path/to/file.py:ClassName` (the class is called with `n_classes=` and `input_shape=`)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from torch import nn

from ..errors import PqlrError
from ..io import load_state, save_state
from . import ds_cnn, transformer

ALIASES = {"tinybert": "microbert-2l"}   # the article's `--model tinybert` is its student
MODEL_NAMES = tuple(sorted([*ds_cnn.PRESETS, *transformer.PRESETS, *ALIASES]))


def canonical_name(name: str) -> str:
    return ALIASES.get(name, name)


def build_model(name: str, n_classes: int, input_shape=(49, 10), seed: int | None = None, **overrides) -> nn.Module:
    """A fresh model from the zoo (deterministic when `seed` is given)."""
    if seed is not None:
        torch.manual_seed(seed)
    key = canonical_name(name)
    if key in ds_cnn.PRESETS:
        return ds_cnn.build(key, n_classes, input_shape, **overrides)
    if key in transformer.PRESETS:
        return transformer.build(key, n_classes, input_shape, **overrides)
    raise PqlrError(f"unknown model {name!r} (known: {', '.join(MODEL_NAMES)}, a .safetensors "
                    "checkpoint, or path/to/file.py:ClassName)")


def model_from_config(cfg: dict) -> nn.Module:
    """Rebuild a model from `model.config.to_dict()` (unknown keys are errors)."""
    cfg = dict(cfg)
    arch = cfg.pop("arch", None)
    try:
        if arch == "ds_cnn":
            return ds_cnn.DSCNN(ds_cnn.DSCNNConfig(**cfg))
        if arch == "transformer":
            return transformer.KWSTransformer(transformer.TransformerConfig(**cfg))
    except TypeError as e:
        raise PqlrError(f"bad model config: {e}") from None
    raise PqlrError(f"unknown model architecture {arch!r} in config")


def save_model(path: str | Path, model: nn.Module, meta: dict | None = None) -> None:
    """Weights to `path` (safetensors), config + `meta` to `path` with suffix .json."""
    if not hasattr(model, "config"):
        raise PqlrError(f"{type(model).__name__} has no .config; only zoo models can be saved as checkpoints")
    save_state(path, model.state_dict(), {"model": model.config.to_dict(), **(meta or {})})


def load_model(path: str | Path) -> tuple[nn.Module, dict]:
    tensors, meta = load_state(path)
    if not meta or "model" not in meta:
        raise PqlrError(f"{path}: no model config beside it (expected {Path(path).with_suffix('.json')})")
    model = model_from_config(meta["model"])
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise PqlrError(f"{path}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model, meta


def load_user_model(spec: str, n_classes: int, input_shape=(49, 10)) -> nn.Module:
    """`path/to/file.py:ClassName` -> ClassName(n_classes=..., input_shape=...)."""
    file, _, cls = spec.rpartition(":")
    if not file.endswith(".py") or not cls:
        raise PqlrError(f"user model must be given as path/to/file.py:ClassName, got {spec!r}")
    if not Path(file).is_file():
        raise PqlrError(f"{file}: no such file")
    mod_spec = importlib.util.spec_from_file_location(Path(file).stem, file)
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    if not hasattr(module, cls):
        raise PqlrError(f"{file} defines no {cls!r}")
    return getattr(module, cls)(n_classes=n_classes, input_shape=tuple(input_shape))


def resolve_model(spec: str, n_classes: int, input_shape=(49, 10), seed: int | None = None) -> nn.Module:
    """Any `--model` value -> a model (checkpoints keep their own class count)."""
    if spec.endswith(".safetensors"):
        return load_model(spec)[0]
    if ".py:" in spec:
        if seed is not None:
            torch.manual_seed(seed)
        return load_user_model(spec, n_classes, input_shape)
    return build_model(spec, n_classes, input_shape, seed=seed)
