"""Test helper for C kernels: build runtime sources ONCE into a shared library (UBSan when it links)
and call kernels through ctypes; build and run standalone drivers under ASan + UBSan.

Usage (tests/ir/test_ops_*.py):
    lib = load_library(["pqlr_conv2d_s8.c", ...], name="nn")      # file names under runtime/src
    Params = int32_struct("pqlr_conv2d_params", fields)           # all-int32 parameter struct
    status = call(lib, "pqlr_conv2d_s8", Params(**values), x, w, None, m, n, y)
        # Structure -> &struct, np.ndarray -> pointer to its data, None -> NULL
    proc = run_program(c_source_text, ["pqlr_conv2d_s8.c"], name="nn_driver")   # sanitized
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from pqlr.errors import PqlrError
from pqlr.runtime import SRC_DIR
from pqlr.runtime.build import cache_dir, compile_c

UBSAN_FLAGS = ["-fsanitize=undefined", "-fno-sanitize-recover=undefined"]
# The kernel files of each op family, one per op and activation dtype (optimized *_opt.c variants and
# in-place kernels are tested on their own): every runtime/src/pqlr_<op>_<s8|s16>[_<s8|s16>].c of the ops.
def family_sources(*ops: str) -> list[str]:
    import re
    pat = re.compile(rf"pqlr_({'|'.join(ops)})_s(8|16)(_s(8|16))?\.c")
    return sorted(p.name for p in SRC_DIR.glob("pqlr_*.c") if pat.fullmatch(p.name))


NN_SOURCES = family_sources("conv2d", "depthwise_conv2d", "fully_connected", "requantize")
ELEM_SOURCES = family_sources("add", "sub", "mul", "prelu", "channel_affine")
POOL_SOURCES = family_sources("avg_pool2d", "avg_pool2d_var", "max_pool2d", "mean", "adaptive_avg_pool2d",
                              "adaptive_max_pool2d")
SHAPE_SOURCES = family_sources("slice", "pad")
C_TYPES = {np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t", np.dtype(np.int32): "int32_t",
           np.dtype(np.uint8): "uint8_t"}


def runtime_paths(names: Sequence[str]) -> list[Path]:
    """runtime/src file names -> paths (each must exist)."""
    paths = [SRC_DIR / n for n in names]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"runtime sources missing: {missing}")
    return paths


def write_source(text: str, stem: str) -> Path:
    """Write generated C into the build cache under a content-addressed name."""
    d = cache_dir() / "gen"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:16]}.c"
    if not path.exists():
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")     # safe under pytest-xdist
        tmp.write_text(text)
        tmp.replace(path)
    return path


@lru_cache(maxsize=None)
def _ubsan_shared_ok() -> bool:
    """Does a -fsanitize=undefined shared library build and load into this process?"""
    try:
        src = write_source("int pqlr_probe(int a) { return a + 1; }\n", "ubsan_probe")
        lib = ctypes.CDLL(str(compile_c([src], shared=True, extra_flags=UBSAN_FLAGS, name="ubsan_probe")))
        return lib.pqlr_probe(1) == 2
    except (OSError, PqlrError):
        return False


def load_library(sources: Sequence[str | Path], *, name: str, extra: Sequence[Path] = (),
                 ubsan: bool = True) -> ctypes.CDLL:
    """Compile runtime sources (file names under runtime/src, or paths) + `extra` into a cached .so."""
    paths = [Path(s) if Path(s).is_absolute() else runtime_paths([str(s)])[0] for s in sources]
    flags = UBSAN_FLAGS if ubsan and _ubsan_shared_ok() else []
    return ctypes.CDLL(str(compile_c([*paths, *extra], shared=True, extra_flags=flags, name=name)))


@lru_cache(maxsize=None)
def int32_struct(c_name: str, fields: tuple[str, ...]) -> type[ctypes.Structure]:
    """A ctypes mirror of a C struct made only of int32_t fields, in this order."""
    return type(c_name, (ctypes.Structure,), {"_fields_": [(f, ctypes.c_int32) for f in fields]})


def _arg(a):
    if a is None:
        return None
    if isinstance(a, ctypes.Structure):
        return ctypes.byref(a)
    if isinstance(a, np.ndarray):
        if not a.flags["C_CONTIGUOUS"]:
            raise ValueError("pass C-contiguous arrays (np.ascontiguousarray)")
        return ctypes.c_void_p(a.ctypes.data)
    return a


def call(lib: ctypes.CDLL, fn: str, *args) -> int:
    """Call `fn` (returning pqlr_status / int); arrays are passed by pointer and may be written."""
    f = getattr(lib, fn)
    f.restype = ctypes.c_int
    return int(f(*[_arg(a) for a in args]))


def field_spec(spec: str) -> tuple[str, int]:
    """A STRUCT_FIELDS entry "name" (one int32_t) or "name[N]" (int32_t name[N]) -> (name, N or 0)."""
    name, _, rest = spec.partition("[")
    return name, int(rest.rstrip("]")) if rest else 0


def layout_source(structs: dict[str, tuple[str, ...]], header: str) -> str:
    """C returning the number of int32 struct fields whose offset or struct size differs."""
    checks = []
    for name, fields in structs.items():
        at = 0
        for spec in fields:
            f, n = field_spec(spec)
            checks.append(f"    bad += offsetof({name}, {f}) != {4 * at};")
            if n:
                checks.append(f"    bad += sizeof((({name} *)0)->{f}) != {4 * n};")
            at += max(n, 1)
        checks.append(f"    bad += sizeof({name}) != {4 * at};")
    return (f'#include <stddef.h>\n#include "{header}"\nint pqlr_layout_mismatches(void);\n'
            "int pqlr_layout_mismatches(void)\n{\n    int bad = 0;\n" + "\n".join(checks)
            + "\n    return bad;\n}\n")


def c_array(name: str, a: np.ndarray) -> str:
    """`static const <type> name[] = {...};` for a 1-D view of `a` (never empty)."""
    flat = np.asarray(a).ravel()
    body = ", ".join(str(int(v)) for v in flat) if flat.size else "0"
    return f"static const {C_TYPES[flat.dtype]} {name}[{max(flat.size, 1)}] = {{{body}}};"


def run_program(source: str, sources: Sequence[str | Path], *, name: str, sanitize: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess:
    """Compile `source` (a C program with main) + runtime sources with ASan/UBSan and run it."""
    paths = [Path(s) if Path(s).is_absolute() else runtime_paths([str(s)])[0] for s in sources]
    exe = compile_c([write_source(source, name), *paths], sanitize=sanitize, name=name)
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=timeout)
