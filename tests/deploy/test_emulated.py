"""Generated C with streamed weight tiles on the emulated targets (RV32IMAC, Cortex-M4), the .bin
embedded as a memory-mapped const array: outputs == the NumPy oracle, arena peak <= the plan."""
import shutil

import numpy as np
import pytest

import graphs
from pqlr.deploy.host import model_sources
from pqlr.deploy.package import write_package
from pqlr.ir.interp import run_graph

TOOLS = {"rv32imac": ("riscv64-unknown-elf-gcc", "qemu-system-riscv32"),
         "cortex-m4": ("arm-none-eabi-gcc", "qemu-system-arm")}


@pytest.mark.emulator
@pytest.mark.parametrize("target", sorted(TOOLS))
def test_streamed_tiles_on_target(target, tmp_path):
    missing = [t for t in TOOLS[target] if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed")
    from pqlr.hw.emulate import run_model

    g = graphs.tokens()
    x = graphs.random_input(g, 6)
    ref = run_graph(g, x)
    pkg = write_package(tmp_path / "p", g, n_tiles=3, double_buffer=True)
    run = run_model(target, model_sources(pkg.out_dir), [pkg.out_dir / "src"], x.reshape(len(x), -1),
                    output_bytes=ref[0].nbytes, extra_cflags=["-DPQLR_EMBED_MODEL_BIN"])
    assert np.array_equal(run.outputs.reshape(ref.shape), ref)
    assert 0 < run.arena_peak_bytes <= pkg.arena.arena_bytes
