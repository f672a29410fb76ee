"""The model zoo: names -> models, configs <-> models, and safetensors + JSON checkpoints.

`--model` accepts a zoo name (`ds-cnn-s`, `microbert-2l`, `tinybert`, ...), a checkpoint
(`run/model.safetensors` with `run/model.json` beside it: a zoo config, or a captured model's graph
spec -- never code), or a user's own model as `path/to/file.py:ClassName` (the class is called with
`n_classes=` and `input_shape=` where its constructor takes them: the number of classes of the data,
one sample's shape without the batch, e.g. (1, 49, 10) MFCC frames or (3, 32, 32) images). Zoo models are KWS models over (frames, features) MFCC maps: a sample
shape (1, frames, features)."""
from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import torch
from torch import nn

from ..errors import PqlrError
from ..io import load_state, save_state
from ..capture import GraphModel
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
    """Rebuild a model from `model.config.to_dict()` or a captured model's `spec()` (unknown keys are errors)."""
    if isinstance(cfg, dict) and cfg.get("format") == "pqlr-graph-1":
        return GraphModel.from_spec(cfg)
    if not isinstance(cfg, dict):
        raise PqlrError("bad model config: not a mapping")
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


def model_config(model: nn.Module) -> dict:
    """What model_from_config rebuilds `model` from: a zoo config or a captured model's spec."""
    if isinstance(model, GraphModel):
        return model.spec()
    if hasattr(model, "config") and hasattr(model.config, "to_dict"):
        return model.config.to_dict()
    raise PqlrError(f"{type(model).__name__} has no .config; capture it (pqlr.capture.capture) to save it")


def save_model(path: str | Path, model: nn.Module, meta: dict | None = None) -> None:
    """Weights to `path` (safetensors), config + `meta` to `path` with suffix .json."""
    save_state(path, model.state_dict(), {"model": model_config(model), **(meta or {})})


def load_model(path: str | Path) -> tuple[nn.Module, dict]:
    tensors, meta = load_state(path)
    if not isinstance(meta, dict) or "model" not in meta:
        raise PqlrError(f"{path}: no model config beside it (expected {Path(path).with_suffix('.json')})")
    model = model_from_config(meta["model"])
    try:
        missing, unexpected = model.load_state_dict(tensors, strict=False)
    except RuntimeError as e:
        raise PqlrError(f"{path}: weights do not match the config ({str(e).splitlines()[-1].strip()})") from None
    if missing or unexpected:
        raise PqlrError(f"{path}: weights do not match the config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model, meta


def user_class(spec: str):
    """`path/to/file.py:ClassName` -> the class (or factory function), the file imported once here."""
    file, _, cls = spec.rpartition(":")
    if not file.endswith(".py") or not cls:
        raise PqlrError(f"user model must be given as path/to/file.py:ClassName, got {spec!r}")
    if not Path(file).is_file():
        raise PqlrError(f"{file}: no such file")
    mod_spec = importlib.util.spec_from_file_location(Path(file).stem, file)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except (Exception, SystemExit) as e:  # the user's own code: report it in one line, whatever it raised
        line = f" (line {e.lineno})" if isinstance(e, SyntaxError) and e.lineno else ""
        raise PqlrError(f"{file}: importing it failed{line}: {type(e).__name__}: {e}") from None
    factory = getattr(module, cls, None)
    if not callable(factory):
        raise PqlrError(f"{file} defines no {cls!r}")
    return factory


def load_user_model(spec: str, n_classes: int, input_shape=(1, 49, 10)) -> nn.Module:
    """`path/to/file.py:ClassName` -> ClassName(n_classes=..., input_shape=...), passing each of the two
    only where the constructor takes it (a class with neither is called with no arguments)."""
    factory = user_class(spec)
    kwargs = {k: v for k, v in (("n_classes", n_classes), ("input_shape", tuple(input_shape))) if _takes(factory, k)}
    call = f"{spec}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"
    try:
        model = factory(**kwargs)
    except (Exception, SystemExit) as e:  # likewise
        raise PqlrError(f"{call} failed: {type(e).__name__}: {e}") from None
    if not isinstance(model, nn.Module):
        raise PqlrError(f"{call} returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _takes(factory, name: str) -> bool:
    if isinstance(factory, type) and factory.__init__ in (nn.Module.__init__, object.__init__):
        return False                                     # no constructor of its own
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == name or p.kind is p.VAR_KEYWORD for p in params)


def zoo_frames(sample_shape) -> tuple[int, int]:
    """(frames, features) of a zoo KWS model from one sample's shape (1, frames, features)."""
    s = tuple(int(v) for v in sample_shape)
    if len(s) == 2:
        return s
    if len(s) == 3 and s[0] == 1:
        return s[1:]
    raise PqlrError(f"zoo models take (1, frames, features) MFCC maps, not samples of shape {s}; "
                    "bring your own model as file.py:Class for other data")


def resolve_model(spec: str, n_classes: int, input_shape=(1, 49, 10), seed: int | None = None) -> nn.Module:
    """Any `--model` value -> a model for samples of `input_shape` (checkpoints keep their own)."""
    if spec.endswith(".safetensors"):
        return load_model(spec)[0]
    if ".py:" in spec:
        if seed is not None:
            torch.manual_seed(seed)
        return load_user_model(spec, n_classes, input_shape)
    return build_model(spec, n_classes, zoo_frames(input_shape), seed=seed)


def sample_shape(model: nn.Module, default=(1, 49, 10)) -> tuple[int, ...]:
    """The sample shape a model takes: a captured model's own, a zoo model's (1, frames, features)."""
    if isinstance(model, GraphModel):
        return model.input_shape
    shape = getattr(getattr(model, "config", None), "input_shape", None)
    return (1, *shape) if shape is not None else tuple(default)
