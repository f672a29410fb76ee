"""Host C builds for tests and `pqlr verify --target host`: compile once, cache by content hash."""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from ..errors import PqlrError
from . import INCLUDE_DIR, SRC_DIR

WARN_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g", "-O1"]


def runtime_sources() -> list[Path]:
    return sorted(SRC_DIR.glob("*.c"))


def cache_dir() -> Path:
    base = os.environ.get("PQLR_BUILD_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "pqlr", "build")
    Path(base).mkdir(parents=True, exist_ok=True)
    return Path(base)


def _digest(paths: Sequence[Path], flags: Sequence[str], cc: str) -> str:
    h = hashlib.sha256()
    h.update(" ".join([cc, *flags]).encode())
    for p in sorted(set(paths)):
        h.update(str(p).encode())
        h.update(Path(p).read_bytes())
    return h.hexdigest()[:16]


def compile_c(sources: Sequence[Path], *, shared: bool = False, sanitize: bool = False,
              include_dirs: Sequence[Path] = (), extra_flags: Sequence[str] = (),
              name: str = "prog", cc: str | None = None) -> Path:
    """Compile `sources` (plus nothing implicit) with gcc into a cached executable or .so."""
    cc = cc or os.environ.get("CC", "gcc")
    if shutil.which(cc) is None:
        raise PqlrError(f"C compiler {cc!r} not found (install gcc)")
    flags = list(WARN_FLAGS)
    if sanitize:
        flags += SANITIZE_FLAGS
    if shared:
        flags += ["-shared", "-fPIC"]
    flags += [f"-I{d}" for d in [INCLUDE_DIR, *include_dirs]] + list(extra_flags)
    headers = [h for d in [INCLUDE_DIR, *include_dirs] for h in Path(d).glob("*.h")]
    key = _digest([*map(Path, sources), *headers], flags, cc)
    out = cache_dir() / f"{name}-{key}{'.so' if shared else ''}"
    if out.exists():
        return out
    tmp = out.with_name(out.name + f".{os.getpid()}.tmp")
    cmd = [cc, *flags, *map(str, sources), "-o", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise PqlrError(f"C build failed: {' '.join(cmd)}\n{proc.stderr.strip()}")
    os.replace(tmp, out)
    return out
