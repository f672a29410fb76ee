"""File I/O: atomic writes, safetensors + JSON checkpoints (never pickle), byte-size parsing."""
from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import PqlrError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path beside `path`; on success rename it over `path`, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes 0600; give the file normal permissions
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.is_file():
        raise PqlrError(f"{path}: no such file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise PqlrError(f"{path}: not valid JSON ({type(e).__name__}: {e})") from None


def save_state(path: str | os.PathLike, tensors: dict, meta: dict | None = None) -> None:
    """Save a tensor dict as safetensors (atomically); `meta` goes to `<path>.json`."""
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    clean = {k: v.detach().contiguous().cpu() for k, v in tensors.items() if isinstance(v, torch.Tensor)}
    with atomic_path(path) as tmp:
        save_file(clean, str(tmp))
    if meta is not None:
        write_json(path.with_suffix(".json"), meta)


def load_state(path: str | os.PathLike) -> tuple[dict, dict | None]:
    """Load tensors saved by `save_state` (and the JSON metadata beside them, if any)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise PqlrError(f"{path}: no such checkpoint")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise PqlrError(f"{path}: not a valid safetensors checkpoint ({e})") from None
    meta_path = path.with_suffix(".json")
    meta = read_json(meta_path) if meta_path.is_file() else None
    return tensors, meta


_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmM]i?[bB]?|[bB])?\s*$")


def parse_bytes(text: str | int) -> int:
    """'35KB' -> 35840, '0.5MB' -> 524288, '12000' -> 12000 (KB = 1024 bytes, as on MCU datasheets)."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise PqlrError(f"cannot read byte size {text!r} (use e.g. 35KB, 0.5MB, 12000)")
    value, unit = float(m.group(1)), (m.group(2) or "b").lower()
    mult = 1024 if unit.startswith("k") else 1024 * 1024 if unit.startswith("m") else 1
    n = int(round(value * mult))
    if n <= 0:
        raise PqlrError(f"byte size must be positive, got {text!r}")
    return n
