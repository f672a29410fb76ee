"""pqlr.hw.emulate: a tiny real int8 model run on host, RV32IMAC (QEMU) and Cortex-M4 (QEMU)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pqlr.errors import PqlrError
from pqlr.hw import toolchains
from pqlr.hw.emulate import TARGETS, run_model
from pqlr.hw.toolchains import build_image, soft_float_symbols

from .tiny_ref import tiny_model

HERE = Path(__file__).resolve().parent
EMULATED = ("rv32imac", "cortex-m4")
pytestmark = pytest.mark.emulator


def _have(target: str) -> bool:
    tc = toolchains.TOOLCHAINS[target]
    return all(shutil.which(t) for t in (tc.cc, tc.size, tc.nm, *tc.emulator[:1]))


def _target(t: str):
    return pytest.param(t, marks=pytest.mark.skipif(not _have(t), reason=f"{t} toolchain not installed"))


ALL = [_target(t) for t in TARGETS]
CROSS = [_target(t) for t in EMULATED]


def _run(model: str, target: str, inputs: np.ndarray, **kw):
    d = HERE / model
    return run_model(target, sorted(d.glob("*.c")), [d], inputs, output_bytes=4, **kw)


@pytest.fixture(scope="module")
def tiny_inputs() -> np.ndarray:
    return np.random.default_rng(1).integers(-128, 128, size=(200, 24)).astype(np.int8)


@pytest.fixture(scope="module")
def tiny_runs(tiny_inputs):
    """Two runs of the 200-sample tiny model per available target: {target: (run1, run2)}."""
    return {t: (_run("tiny_model", t, tiny_inputs), _run("tiny_model", t, tiny_inputs))
            for t in TARGETS if _have(t)}


@pytest.mark.parametrize("target", ALL)
def test_outputs_equal_numpy(tiny_runs, tiny_inputs, target):
    ref = tiny_model(tiny_inputs)
    assert len(np.unique(ref)) > 50  # the reference exercises the requantizer, not a constant
    out = tiny_runs[target][0].outputs
    assert out.dtype == np.int8 and out.shape == (200, 4)
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("target", CROSS)
def test_counts_positive_deterministic_and_layers_within_total(tiny_runs, target):
    a, b = tiny_runs[target]
    assert a.counter == ("rdinstret" if target == "rv32imac" else "qemu-plugin:insn")
    assert len(a.instructions) == 200 and min(a.instructions) > 0
    assert a.instructions == b.instructions and a.layer_instructions == b.layer_instructions
    assert len(a.layer_instructions) == 2 and min(a.layer_instructions) > 0
    assert sum(a.layer_instructions) <= min(a.instructions)
    # layer 0 (24x8 MACs) does more work than layer 1 (8x4 MACs)
    assert a.layer_instructions[0] > 3 * a.layer_instructions[1]
    assert 0 < a.hook_instructions < 64


def test_host_has_no_counter(tiny_runs):
    run = tiny_runs["host"][0]
    assert run.counter == "none" and set(run.instructions) == {0} and run.stack_peak_bytes == 0


@pytest.mark.parametrize("target", ALL)
def test_sizes_and_memory_peaks(tiny_runs, target):
    run = tiny_runs[target][0]
    assert run.text_bytes > 0
    assert run.rodata_bytes == 8 * 24 + 4 * 8 + 4 * 8 + 4 * 4  # W0 + B0 + W1 + B1, exactly
    assert run.data_bytes == 0 and run.bss_bytes == 0
    assert run.image_bytes["text"] > run.text_bytes
    assert run.arena_peak_bytes == 8  # the 8-byte hidden layer, all of it
    if target != "host":
        assert 0 < run.stack_peak_bytes < 1024


@pytest.mark.parametrize("target", CROSS)
def test_no_soft_float_linked_and_scan_finds_it(tiny_runs, target):
    assert tiny_runs[target][0].soft_float_symbols == []
    d = HERE / "float_model"
    image = build_image(target, [d / "float_model.c"], [d])
    found = soft_float_symbols(image)
    assert found, "a float model must pull in soft-float helpers"
    assert any(s in found for s in ("__mulsf3", "__addsf3", "__aeabi_fmul", "__aeabi_fadd"))


@pytest.mark.parametrize("target", CROSS)
def test_loop_count_is_exactly_linear(target):
    trips = np.array([1, 7, 20, 50, 127, 3, 0])
    inputs = np.zeros((len(trips), 4), dtype=np.int8)
    inputs[:, 0], inputs[:, 1], inputs[:, 2] = trips, 5, -3
    run = _run("loop_model", target, inputs)
    counts = np.array(run.instructions)
    per_trip = (counts[4] - counts[0]) // 126
    assert per_trip >= 3  # at least multiply/add, increment, branch
    # exactly affine for n >= 1; n = 0 skips the loop's setup too (the compiler's loop guard)
    np.testing.assert_array_equal(counts[:-1], counts[0] + per_trip * (trips[:-1] - 1))
    assert counts[-1] < counts[0]
    acc = np.full(len(trips), 5, dtype=np.int64)
    for i, n in enumerate(trips):
        for _ in range(n):
            acc[i] = (acc[i] * 3 - 3) & 0xFFFFFFFF
    np.testing.assert_array_equal(run.outputs.view("<u4")[:, 0], acc)


@pytest.mark.skipif(not _have("rv32imac"), reason="rv32imac toolchain not installed")
def test_rdinstret_and_plugin_agree_on_rv32(tiny_runs, tiny_inputs):
    by_csr = tiny_runs["rv32imac"][0]
    by_plugin = _run("tiny_model", "rv32imac", tiny_inputs[:20], counter="qemu-plugin:insn")
    assert by_plugin.counter == "qemu-plugin:insn"
    assert by_plugin.instructions == by_csr.instructions[:20]
    assert by_plugin.hook_instructions == by_csr.hook_instructions


@pytest.mark.parametrize("target", ALL)
@pytest.mark.parametrize("mode, message", [(1, "past PQLR_ARENA_BYTES"), (2, "status -1"),
                                           (3, "past PQLR_OUTPUT_BYTES"), (4, "never ended")])
def test_misbehaving_model_is_named(target, mode, message):
    inputs = np.array([[0, 1, 2, 3], [mode, 0, 0, 0]], dtype=np.int8)
    with pytest.raises(PqlrError, match=f"sample 1: .*{message}"):
        _run("bad_model", target, inputs)


@pytest.mark.parametrize("target", ALL)
def test_trap_stops_the_run_with_its_cause(target):
    inputs = np.array([[0, 1, 2, 3], [5, 0, 0, 0]], dtype=np.int8)
    with pytest.raises(PqlrError, match="harness killed by signal" if target == "host" else r"exited with 3: pqlr: trap cause=0x[0-9a-f]{8} pc=0x[0-9a-f]{8}$"):
        _run("bad_model", target, inputs)


def test_bad_arguments():
    with pytest.raises(PqlrError, match="PQLR_INPUT_BYTES=4"):
        _run("bad_model", "host", np.zeros((2, 5), dtype=np.int8))
    with pytest.raises(PqlrError, match="int8"):
        _run("bad_model", "host", np.zeros((2, 4), dtype=np.int16))
    with pytest.raises(PqlrError, match="unknown target 'avr'"):
        _run("bad_model", "avr", np.zeros((2, 4), dtype=np.int8))
    with pytest.raises(PqlrError, match="cannot count with"):
        _run("bad_model", "host", np.zeros((2, 4), dtype=np.int8), counter="qemu-plugin:insn")


def test_missing_toolchain_names_the_apt_package(monkeypatch):
    monkeypatch.setattr(toolchains.shutil, "which", lambda tool: None)
    with pytest.raises(PqlrError, match="apt-get install gcc-riscv64-unknown-elf picolibc"):
        toolchains.toolchain("rv32imac")
    with pytest.raises(PqlrError, match="apt-get install gcc-arm-none-eabi"):
        toolchains.toolchain("cortex-m4")
