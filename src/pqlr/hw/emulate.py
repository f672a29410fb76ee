"""Run a C model on the chip's instruction set (QEMU) or the host, counting retired instructions.

One emulator start runs every sample (runtime/platform/verify_main.c reads them from a
semihosting file), so a 200-sample check takes seconds. Counting:
  rv32imac  -- `rdinstret`(h) read by the harness; QEMU `-icount shift=0` makes it exact.
  cortex-m4 -- QEMU has no cycle counter for M-profile; a TCG plugin we build
               (runtime/platform/insn_plugin.c) counts translated-block instructions and logs the
               total at each harness mark ("qemu-plugin:insn"). On rv32imac both methods agree
               to the instruction (tests/hw).
  host      -- no counter: instruction counts are 0 ("none"), stack not measured.
Each count excludes the profiling hooks' own cost, measured once per run by a calibration
window with nothing inside (see `_window`).
"""
from __future__ import annotations

import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import PqlrError
from ..runtime.build import compile_c
from .toolchains import (PLATFORM_DIR, TARGETS, Image, build_image, image_section_bytes,
                         model_section_bytes, soft_float_symbols, symbol_address, toolchain)

__all__ = ["TARGETS", "TargetRun", "run_model"]

_MAGIC, _VERSION = 0x524C5150, 1
PLUGIN_COUNTER = "qemu-plugin:insn"
_FLAGS = {1: "more profiling events than the harness holds (pass extra_cflags=['-DPQLR_MAX_EVENTS=N'])",
          2: "the model wrote past PQLR_ARENA_BYTES", 4: "the model wrote past PQLR_OUTPUT_BYTES",
          8: "the stack overflowed the harness's 128 KB stack", 16: "short input read"}


@dataclass
class TargetRun:
    """What one `run_model` call measured."""
    target: str
    outputs: np.ndarray                # (N, output_bytes) int8
    instructions: list[int]            # per sample, whole pqlr_invoke
    layer_instructions: list[int]      # per layer: the low median over samples
    counter: str                       # "rdinstret" / "qemu-plugin:insn" / "none"
    text_bytes: int                    # the model's own objects after --gc-sections
    rodata_bytes: int
    data_bytes: int
    bss_bytes: int
    stack_peak_bytes: int              # max over samples (0 on the host: not measured)
    arena_peak_bytes: int              # max over samples: highest arena byte written + 1
    image_bytes: dict = field(default_factory=dict)   # whole image incl. harness and libc
    soft_float_symbols: list = field(default_factory=list)
    hook_instructions: int = 0         # cost of one profiling hook, subtracted from the counts
    elf: Path | None = None


def _plugin() -> Path:
    return compile_c([PLATFORM_DIR / "insn_plugin.c"], shared=True, name="pqlr-insn-plugin")


def _execute(image: Image, workdir: Path, timeout_s: float, counter: str) -> list[int] | None:
    """Run the image in `workdir`; return the plugin's count log (counter qemu-plugin) or None."""
    tc = toolchain(image.target)
    log = workdir / "pqlr_counts.txt"
    if not tc.emulator:
        cmd = [str(image.elf)]
    else:
        cmd = [*tc.emulator, str(image.elf)]
        if counter == PLUGIN_COUNTER:
            mark = symbol_address(image, "pqlr_counter_read")
            cmd += ["-plugin", f"file={_plugin()},mark={mark:#x},out={log}"]
    try:
        proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise PqlrError(f"{image.target}: run did not finish within {timeout_s:g} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr + proc.stdout).strip().splitlines()[-3:]
        how = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited with {proc.returncode}"
        raise PqlrError(f"{image.target}: harness {how}: {' | '.join(tail) or 'no message'}")
    if counter != PLUGIN_COUNTER:
        return None
    return [int(x) for x in log.read_text().split("\n") if x and not x.startswith("total")]


def _parse(blob: bytes, in_bytes: int, out_bytes: int) -> tuple[dict, list[dict]]:
    """Split pqlr_out.bin (format in verify_main.c) into its header and records."""
    if len(blob) < 32:
        raise PqlrError("harness output truncated (no header)")
    magic, version, h_in, h_out, arena, layers, n, _ = struct.unpack_from("<8I", blob, 0)
    if magic != _MAGIC or version != _VERSION:
        raise PqlrError("harness output has a bad magic/version")
    if h_in != in_bytes:
        raise PqlrError(f"model.h says PQLR_INPUT_BYTES={h_in}, inputs have {in_bytes} bytes per sample")
    if h_out != out_bytes:
        raise PqlrError(f"model.h says PQLR_OUTPUT_BYTES={h_out}, caller expects output_bytes={out_bytes}")
    head = dict(arena_bytes=arena, num_layers=layers, n=n)
    off, records, padded = 32, [], (out_bytes + 3) & ~3
    for _ in range(n + 1):
        status, n_ev, stack, arena_peak, flags = struct.unpack_from("<iIIII", blob, off)
        off += 20
        codes = list(struct.unpack_from(f"<{n_ev}I", blob, off))
        off += 4 * n_ev
        counts = list(struct.unpack_from(f"<{n_ev}Q", blob, off))
        off += 8 * n_ev
        out = np.frombuffer(blob, dtype=np.int8, count=out_bytes, offset=off)
        off += padded
        records.append(dict(status=status, codes=codes, counts=counts, stack=stack,
                            arena=arena_peak, flags=flags, output=out))
    if off != len(blob):
        raise PqlrError(f"harness output has {len(blob) - off} unexpected trailing bytes")
    return head, records


def _window(codes: list[int], counts: list[int], i: int, j: int, hook: int) -> int:
    """Instructions between events i and j, less one hook cost per hook boundary crossed."""
    return counts[j] - counts[i] - (j - i) * hook


def _profile(rec: dict, num_layers: int, hook: int, sample: int) -> tuple[int, list[int]]:
    """(total, per-layer) instructions of one sample from its event codes and counts."""
    codes, counts = rec["codes"], rec["counts"]
    if not codes or codes[0] != 0 or codes[-1] != 1:
        raise PqlrError(f"sample {sample}: profiling events do not start/end with the harness marks")
    layers, open_at = [0] * num_layers, {}
    for k, code in enumerate(codes[1:-1], start=1):
        layer, end = divmod(code - 2, 2)
        if not 0 <= layer < num_layers:
            raise PqlrError(f"sample {sample}: PQLR_LAYER_*({layer}) but PQLR_NUM_LAYERS={num_layers}")
        if not end:
            open_at[layer] = k
        elif layer not in open_at:
            raise PqlrError(f"sample {sample}: PQLR_LAYER_END({layer}) without PQLR_LAYER_BEGIN({layer})")
        else:
            layers[layer] += _window(codes, counts, open_at.pop(layer), k, hook)
    if open_at:
        raise PqlrError(f"sample {sample}: PQLR_LAYER_BEGIN({min(open_at)}) never ended")
    return _window(codes, counts, 0, len(codes) - 1, hook), layers


def run_model(target: str, sources: Sequence[Path], include_dirs: Sequence[Path], inputs: np.ndarray,
              *, output_bytes: int, extra_cflags: Sequence[str] = (), timeout_s: float = 600,
              counter: str | None = None) -> TargetRun:
    """Build the model with the verify harness for `target` and run it on every row of `inputs`.

    inputs: (N, PQLR_INPUT_BYTES) int8. counter: None for the target's own ("rdinstret" on
    rv32imac, "qemu-plugin:insn" on cortex-m4), or "qemu-plugin:insn" on either emulated target
    (used to cross-check the two methods). Raises PqlrError on a failed build, a non-zero
    pqlr_status, a write past the arena/output, or a stack overflow (naming the sample).
    """
    inputs = np.asarray(inputs)
    if inputs.dtype != np.int8 or inputs.ndim != 2 or len(inputs) == 0:
        raise PqlrError(f"inputs must be a non-empty (N, input_bytes) int8 array, got {inputs.dtype} {inputs.shape}")
    tc = toolchain(target)
    counter = counter or tc.counter
    if counter != tc.counter and not (counter == PLUGIN_COUNTER and tc.emulator):
        raise PqlrError(f"target {target} cannot count with {counter!r} (use {tc.counter!r}"
                        f"{' or ' + repr(PLUGIN_COUNTER) if tc.emulator else ''})")
    image = build_image(target, sources, include_dirs, extra_cflags)
    with tempfile.TemporaryDirectory(prefix="pqlr-run-") as tmp:
        work = Path(tmp)
        (work / "pqlr_in.bin").write_bytes(struct.pack("<I", len(inputs)) + inputs.tobytes())
        plugin_counts = _execute(image, work, timeout_s, counter)
        out_file = work / "pqlr_out.bin"
        if not out_file.is_file():
            raise PqlrError(f"{target}: the harness wrote no pqlr_out.bin")
        head, records = _parse(out_file.read_bytes(), inputs.shape[1], output_bytes)
    if plugin_counts is not None:  # fill the counts in from the plugin's log, in call order
        if len(plugin_counts) != sum(len(r["codes"]) for r in records):
            raise PqlrError(f"{target}: plugin logged {len(plugin_counts)} marks, harness made "
                            f"{sum(len(r['codes']) for r in records)}")
        it = iter(plugin_counts)
        for r in records:
            r["counts"] = [next(it) for _ in r["codes"]]
    calib, samples = records[0], records[1:]
    hook = calib["counts"][-1] - calib["counts"][0]
    totals, per_layer = [], []
    for s, rec in enumerate(samples):
        bad = [msg for bit, msg in _FLAGS.items() if rec["flags"] & bit]
        if bad:
            raise PqlrError(f"{target}: sample {s}: {'; '.join(bad)}")
        if rec["status"] != 0:
            raise PqlrError(f"{target}: sample {s}: pqlr_invoke returned status {rec['status']}")
        total, layers = _profile(rec, head["num_layers"], hook, s)
        totals.append(total)
        per_layer.append(layers)
    layer_median = [int(sorted(col)[(len(col) - 1) // 2]) for col in zip(*per_layer)]
    own = model_section_bytes(image)
    return TargetRun(
        target=target, outputs=np.stack([r["output"] for r in samples]).copy(),
        instructions=totals, layer_instructions=layer_median, counter=counter,
        text_bytes=own["text"], rodata_bytes=own["rodata"], data_bytes=own["data"], bss_bytes=own["bss"],
        stack_peak_bytes=max(r["stack"] for r in samples),
        arena_peak_bytes=max(r["arena"] for r in samples),
        image_bytes=image_section_bytes(image), soft_float_symbols=soft_float_symbols(image),
        hook_instructions=hook, elf=image.elf)
