"""Host runs of a generated package: compile it with gcc (-Wall -Wextra -Werror, optionally
ASan/UBSan), feed N inputs through host/host_main.c, read N outputs and the arena high-water mark.
Used by the tests and by `pqlr verify --target host`."""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import PqlrError
from ..ir.graph import DTYPES, Graph
from ..runtime.build import compile_c


def build_host(pkg_dir: str | os.PathLike, sanitize: bool = False, embed_bin: bool = False) -> Path:
    """Compile the package's C with host/host_main.c (cached by content); `embed_bin` links the
    .bin in as a const array (-DPQLR_EMBED_MODEL_BIN) instead of reading it as a file."""
    pkg = Path(pkg_dir)
    if not (pkg / "src" / "model.c").is_file():
        raise PqlrError(f"{pkg}: not a PQLR package (no src/model.c)")
    return compile_c(model_sources(pkg) + [pkg / "host" / "host_main.c"], sanitize=sanitize,
                     include_dirs=[pkg / "src"], name="pqlr_host",
                     extra_flags=["-DPQLR_EMBED_MODEL_BIN"] if embed_bin else [])


def model_sources(pkg_dir: str | os.PathLike) -> list[Path]:
    """The C a model build needs: the generated files, the kernels model.c calls, the flash hooks
    and the .bin reader (the package's Makefile builds every file; this keeps builds small).
    Also what pqlr.hw.emulate.run_model takes for the emulated targets."""
    pkg = Path(pkg_dir)
    model = (pkg / "src" / "model.c").read_text()
    keep = []
    for f in sorted((pkg / "src").glob("*.c")):
        s = f.stem
        if (not s.startswith("pqlr_") or s.startswith(("pqlr_flash", "pqlr_binfmt"))
                or re.search(rf"\b{re.escape(s)}\(", model)):
            keep.append(f)
    return keep


def run_host(pkg_dir: str | os.PathLike, graph: Graph, x: np.ndarray, *, sanitize: bool = False,
             bin_path: str | os.PathLike | None = None, margin: int = 0,
             embed_bin: bool = False) -> tuple[np.ndarray, int]:
    """x (N, *input shape) -> (outputs (N, *output shape), arena high-water mark in bytes).
    Streamed weights come from `bin_path` (default: the package's model.bin) or, with
    `embed_bin`, from the copy compiled into the program."""
    pkg = Path(pkg_dir)
    exe = build_host(pkg, sanitize, embed_bin)
    t_in, t_out = graph.tensor(graph.inputs[0]), graph.tensor(graph.outputs[0])
    x = np.ascontiguousarray(np.asarray(x).astype(DTYPES[t_in.dtype]))
    if x.shape[1:] != tuple(t_in.shape):
        raise PqlrError(f"host run: inputs {x.shape} do not match the model input {t_in.shape}")
    bin_path = Path(bin_path) if bin_path is not None else pkg / "model.bin"
    with tempfile.TemporaryDirectory(prefix="pqlr-host-") as tmp:
        fin, fout = Path(tmp) / "in.raw", Path(tmp) / "out.raw"
        fin.write_bytes(x.astype(x.dtype.newbyteorder("<")).tobytes())
        args = [str(exe), str(fin), str(fout), "-" if embed_bin else str(bin_path), str(int(margin))]
        proc = subprocess.run(args,
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise PqlrError(f"host model run failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
        y = np.frombuffer(fout.read_bytes(), dtype=np.dtype(DTYPES[t_out.dtype]).newbyteorder("<"))
    m = re.search(r"arena_high_water (\d+)", proc.stdout)
    hw = int(m.group(1)) if m else 0
    return y.astype(DTYPES[t_out.dtype]).reshape((len(x), *t_out.shape)), hw
