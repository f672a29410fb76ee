"""Per-target toolchains for the verify harness: flags, cached builds, section sizes, soft-float scan.

Targets (`TARGETS`): "host" (native gcc), "rv32imac" (riscv64-unknown-elf-gcc + picolibc, QEMU
`virt`), "cortex-m4" (arm-none-eabi-gcc + picolibc, QEMU `mps2-an386`). An image is the model's
sources + runtime/platform (startup, linker script, semihosting, verify_main.c), linked with
--gc-sections and a link map; sizes are read from that map so the model's own bytes are told
apart from the harness, startup code and libc.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import PqlrError
from ..runtime import INCLUDE_DIR, RUNTIME_DIR
from ..runtime.build import cache_dir

PLATFORM_DIR = RUNTIME_DIR / "platform"
TARGETS = ("host", "rv32imac", "cortex-m4")
COMMON_CFLAGS = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-ffunction-sections",
                 "-fdata-sections", "-fno-asynchronous-unwind-tables", "-DPQLR_PROFILE=1")


@dataclass(frozen=True)
class Toolchain:
    """How to build and run the harness for one target."""
    target: str
    cc: str
    size: str
    nm: str
    cflags: tuple[str, ...]          # machine flags (ISA, ABI, libc)
    platform_sources: tuple[str, ...]  # files in runtime/platform/
    linker_script: str | None        # file in runtime/platform/ (None: the host default)
    emulator: tuple[str, ...]        # command before the ELF path (empty: run natively)
    counter: str                     # how instructions are counted
    apt: str                         # Debian packages providing the tools

    def __post_init__(self):
        if self.target not in TARGETS:
            raise PqlrError(f"unknown target {self.target!r}; choose one of {', '.join(TARGETS)}")


_QEMU_COMMON = ("-semihosting-config", "enable=on,target=native", "-display", "none",
                "-monitor", "none", "-serial", "none")

TOOLCHAINS = {
    "host": Toolchain(
        "host", "gcc", "size", "nm", (), ("host_io.c", "verify_main.c"), None, (), "none",
        "gcc binutils"),
    "rv32imac": Toolchain(
        "rv32imac", "riscv64-unknown-elf-gcc", "riscv64-unknown-elf-size", "riscv64-unknown-elf-nm",
        ("-march=rv32imac", "-mabi=ilp32", "-misa-spec=2.2", "--specs=picolibc.specs", "-nostartfiles"),
        ("crt0_rv32.S", "semihost.c", "verify_main.c"), "link_rv32.ld",
        ("qemu-system-riscv32", "-M", "virt", "-cpu", "rv32,f=false,d=false", "-bios", "none",
         "-icount", "shift=0", *_QEMU_COMMON, "-kernel"),
        "rdinstret", "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc"),
    "cortex-m4": Toolchain(
        "cortex-m4", "arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm",
        ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "--specs=picolibc.specs", "-nostartfiles"),
        ("crt0_cm4.S", "semihost.c", "verify_main.c"), "link_cm4.ld",
        ("qemu-system-arm", "-M", "mps2-an386", *_QEMU_COMMON, "-kernel"),
        "qemu-plugin:insn", "gcc-arm-none-eabi picolibc-arm-none-eabi qemu-system-arm"),
}


def toolchain(target: str) -> Toolchain:
    """The toolchain for `target`, after checking its tools are installed."""
    if target not in TOOLCHAINS:
        raise PqlrError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    tc = TOOLCHAINS[target]
    for tool in (tc.cc, tc.size, tc.nm, *tc.emulator[:1]):
        if shutil.which(tool) is None:
            raise PqlrError(f"target {target}: {tool} not found (apt-get install {tc.apt})")
    return tc


@dataclass(frozen=True)
class Image:
    """A linked harness image and its link map."""
    target: str
    elf: Path
    map: Path
    model_objects: tuple[Path, ...]


def _digest(tc: Toolchain, files: Sequence[Path], flags: Sequence[str]) -> str:
    h = hashlib.sha256(" ".join([tc.cc, *flags]).encode())
    for p in files:
        h.update(str(p).encode() + b"\0" + Path(p).read_bytes())
    return h.hexdigest()[:16]


def _run(cmd: Sequence[str], what: str) -> None:
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, text=True)
    if proc.returncode != 0:
        raise PqlrError(f"{what} failed: {' '.join(map(str, cmd))}\n{proc.stderr.strip()}")


def build_image(target: str, sources: Sequence[Path], include_dirs: Sequence[Path] = (),
                extra_cflags: Sequence[str] = ()) -> Image:
    """Compile the model `sources` with the harness for `target`; cached by content hash."""
    tc = toolchain(target)
    sources = [Path(s).resolve() for s in sources]
    for s in sources:
        if not s.is_file():
            raise PqlrError(f"{s}: no such C source")
    incs = [PLATFORM_DIR, INCLUDE_DIR, *[Path(d).resolve() for d in include_dirs]]
    flags = [*tc.cflags, *COMMON_CFLAGS, *[f"-I{d}" for d in incs], *extra_cflags]
    platform = [PLATFORM_DIR / f for f in tc.platform_sources]
    ld = [PLATFORM_DIR / tc.linker_script] if tc.linker_script else []
    headers = sorted(h for d in incs if d.is_dir() for h in d.glob("*.h"))
    key = _digest(tc, [*sources, *platform, *ld, *headers], flags)
    out = cache_dir() / f"verify-{target}-{key}"
    names = [f"m{i}_{s.stem}.o" for i, s in enumerate(sources)]
    image = Image(target, out / "image.elf", out / "image.map", tuple(out / n for n in names))
    if image.elf.exists():
        return image
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        objs = []
        for src, name in [*zip(sources, names), *((p, f"p_{p.stem}.o") for p in platform)]:
            _run([tc.cc, *flags, "-c", src, "-o", tmp / name], f"{target} compile of {src.name}")
            objs.append(tmp / name)
        link = [f"-T{ld[0]}", "-Wl,--no-warn-rwx-segments"] if ld else []
        # The map names objects by their build path; model_section_bytes matches base names.
        _run([tc.cc, *flags, *link, "-Wl,--gc-sections", f"-Wl,-Map={tmp / 'image.map'}",
              *objs, "-o", tmp / "image.elf"], f"{target} link")
        try:
            os.replace(tmp, out)
        except OSError:  # another process built the same image first
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return image


def _section_kind(name: str) -> str | None:
    """Classify an input/output section name as text / rodata / data / bss (None: not loaded)."""
    if name.startswith(".text") or name in (".init", ".fini", ".plt", ".ARM.exidx"):
        return "text"
    if name.startswith((".rodata", ".srodata")):
        return "rodata"
    if name.startswith((".data", ".sdata", ".init_array", ".fini_array", ".got")):
        return "data"
    if name.startswith((".bss", ".sbss")) or name == "COMMON":
        return "bss"
    return None


_MAP_ENTRY = re.compile(r"^ (\S+)?\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*)$")


def model_section_bytes(image: Image) -> dict[str, int]:
    """Bytes the model's own objects put in text / rodata / data / bss, after --gc-sections.

    Read from the GNU ld map ("Linker script and memory map" part; an input section whose name is
    long sits alone on a line, its address/size/object on the next).
    """
    sizes = dict(text=0, rodata=0, data=0, bss=0)
    objs = {o.name for o in image.model_objects}
    lines = image.map.read_text(errors="replace").splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("Linker script and memory map"))
    except StopIteration:
        raise PqlrError(f"{image.map}: not a GNU ld map file") from None
    pending = None
    for line in lines[start:]:
        if re.fullmatch(r" \.\S+", line):
            pending = line.strip()
            continue
        m = _MAP_ENTRY.match(line)
        name = (m.group(1) or pending) if m else None
        pending = None
        if m and name and Path(m.group(4).strip()).name in objs:
            kind = _section_kind(name)
            if kind:
                sizes[kind] += int(m.group(3), 16)
    return sizes


def image_section_bytes(image: Image) -> dict[str, int]:
    """Bytes of the whole linked image (harness, startup, libc included) per kind, from `size -A`."""
    out = subprocess.run([toolchain(image.target).size, "-A", str(image.elf)],
                         capture_output=True, text=True, check=True).stdout
    sizes = dict(text=0, rodata=0, data=0, bss=0)
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and (kind := _section_kind(parts[0])):
            sizes[kind] += int(parts[1])
    return sizes


_SOFT_FLOAT = re.compile(r"^__(aeabi_[fd]\w+|aeabi_u?[il]2[fd]|\w+[sdt]f[23]|float\w+|fix\w+)$")


def soft_float_symbols(image: Image) -> list[str]:
    """Floating-point emulation routines linked into the image (__addsf3, __aeabi_fmul, ...)."""
    out = subprocess.run([toolchain(image.target).nm, str(image.elf)],
                         capture_output=True, text=True, check=True).stdout
    names = {line.split()[-1] for line in out.splitlines() if line.strip()}
    return sorted(n for n in names if _SOFT_FLOAT.match(n))


def symbol_address(image: Image, name: str) -> int:
    """Address of a function symbol (Thumb bit cleared)."""
    out = subprocess.run([toolchain(image.target).nm, str(image.elf)],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16) & ~1
    raise PqlrError(f"{image.elf}: symbol {name} not found")
