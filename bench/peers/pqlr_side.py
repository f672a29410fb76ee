"""The PQLR contenders of bench/peers, through the library API only: INT8 post-training
quantization (pqlr.compress.quantize, method "ptq") lowered to the integer program
(pqlr.compress.lower) and packaged (pqlr.deploy), INT4 LSQ+ QAT, and structured channel pruning
(pqlr.compress.prune). Also the host timing of the generated C (time_pqlr.c) and the rv32imac
measurements (pqlr.deploy.verify.verify_graph: QEMU, exact retired instructions)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from pqlr.capture import capture
from pqlr.compress import prune
from pqlr.deploy.inputs import input_int8
from pqlr.pipeline.measure import code_bytes, graph_macs, lower_quantized
from pqlr.compress.quantize import QuantConfig, quantize_
from pqlr.deploy.host import model_sources, run_host
from pqlr.deploy.package import write_package
from pqlr.deploy.verify import verify_graph
from pqlr.ir.interp import run_graph
from pqlr.runtime.build import compile_c

from common import HERE, Settings, Split, accuracy, accuracy_of_logits, calib_batches, clone, fine_tune, stats


def quantized(model, split: Split, s: Settings, wbits: int, abits: int, method: str):
    """A PQLR QuantModel of a copy of `model` (BN folded), calibrated on the split's clips."""
    cfg = QuantConfig(wbits=wbits, abits=abits, method=method, calib=s.calib)
    return quantize_(captured(model), cfg, step="prepare", calib=calib_batches(split, s))


def captured(model):
    """A captured copy of the shared float model (the graph every PQLR stage reads)."""
    return capture(clone(model), (1, 49, 10))


def integer_program(q, split: Split) -> tuple[object, np.ndarray, float]:
    """(integer Graph, int8 test inputs, accuracy of the integer oracle on the test split)."""
    g = lower_quantized(q, split.classes)
    x = input_int8(g, split.x_test)
    return g, x, accuracy_of_logits(run_graph(g, x), split)


def host_latency_ns(pkg_dir: Path, x: np.ndarray, repeats: int) -> dict:
    """Median wall time of pqlr_invoke on this host: the generated C + kernels compiled with the
    runtime's flags (gcc -O2), one input, `repeats` timed calls after 20 warm-up calls."""
    exe = compile_c(model_sources(pkg_dir) + [HERE / "time_pqlr.c"], include_dirs=[pkg_dir / "src"],
                    name="peers_time_pqlr")
    inp = pkg_dir / "one_input.raw"
    inp.write_bytes(np.ascontiguousarray(x[:1]).tobytes())
    out = subprocess.run([str(exe), str(inp), str(repeats)], capture_output=True, text=True, check=True).stdout
    vals = dict(line.split() for line in out.strip().splitlines())
    return {"median_ns": int(vals["median_ns"]), "repeats": repeats, "compiler": "gcc -O2 (pqlr.runtime.build)"}


def int8_ptq(model, split: Split, s: Settings, work: Path, rv32: bool = True) -> dict:
    """PQLR INT8 PTQ: accuracy (fake-quant and integer program), the deployable package and its
    bytes, planned / measured RAM, host latency, rv32imac instructions and sections."""
    q = quantized(model, split, s, 8, 8, "ptq")
    g, x, acc_int = integer_program(q, split)
    pkg = write_package(work / "pqlr_int8", g)
    y_c, arena_hw = run_host(pkg.out_dir, g, x[:64], bin_path=pkg.bin_path)
    mism = int((y_c.reshape(len(y_c), -1) != run_graph(g, x[:64]).reshape(len(y_c), -1)).any(axis=1).sum())
    row = {"accuracy_fakequant": accuracy(q, split), "accuracy": acc_int, "weight_bytes": int(g.weight_bytes()),
           "bin_bytes": pkg.bin_path.stat().st_size, "code_bytes_rv32": code_bytes(g),
           "arena_planned_bytes": int(pkg.arena.arena_bytes), "arena_measured_host_bytes": int(arena_hw),
           "host_c_vs_oracle_mismatches": mism, "host_check_samples": int(len(y_c)), "macs": graph_macs(g),
           "latency": host_latency_ns(pkg.out_dir, x, s.repeats)}
    if rv32:
        r = verify_graph(g, None, x[:2], "rv32imac")
        row["rv32imac"] = {k: r[k] for k in ("mismatches", "instructions_per_inference", "instructions_per_mac",
                                             "text_bytes", "rodata_bytes", "data_bytes", "bss_bytes",
                                             "arena_peak_bytes", "arena_plan_bytes", "stack_peak_bytes",
                                             "ram_peak_bytes")}
    row["package"] = str(pkg.out_dir)
    return row


def int4_qat(model, split: Split, s: Settings) -> dict:
    """PQLR INT4 weights + INT4 activations, LSQ+ QAT for s.ft_epochs (logits stay 8-bit)."""
    q = quantized(model, split, s, 4, 4, "lsq+")
    secs = fine_tune(q, split, s)
    g, _, acc_int = integer_program(q, split)
    return {"accuracy_fakequant": accuracy(q, split), "accuracy": acc_int, "weight_bytes": int(g.weight_bytes()),
            "ft_epochs": s.ft_epochs, "ft_seconds": round(secs, 1),
            "note": "weight bytes as stored in the .bin: packed int4 weights, int32 biases, requantizers"}


def int8_of(model, split: Split, s: Settings) -> dict:
    """Cheap int8 figures of a (pruned) float model: integer accuracy and weight bytes."""
    q = quantized(model, split, s, 8, 8, "ptq")
    g, _, acc_int = integer_program(q, split)
    return {"accuracy_int8": acc_int, "weight_bytes_int8": int(g.weight_bytes())}


def channel_prune(model, split: Split, s: Settings, sparse: float) -> dict:
    """PQLR structured pruning (network-slimming ranking of BN gammas, global, 10% per-layer floor)
    of the shared float model, then s.ft_epochs of fine-tuning."""
    pruned, summary = prune.apply(captured(model), prune.PruneConfig(sparse=sparse))
    before = accuracy(pruned, split)
    secs = fine_tune(pruned, split, s)
    return {"sparse": sparse, "accuracy_before_ft": before, "accuracy": accuracy(pruned, split), **stats(pruned),
            "channels": [pruned.module(p).out_channels for p in pruned.graph.modules()
                         if p == "conv" or p.endswith(".pw")], "ft_epochs": s.ft_epochs, "ft_seconds": round(secs, 1),
            **int8_of(pruned, split, s)}


def int8_rv32_opt(model, split: Split, s: Settings) -> dict:
    """The same INT8 PTQ program built with PQLR's optimized kernels (`pqlr verify --kernels opt`):
    rv32imac instructions, code, stack and arena (they run out of place, so the arena is larger)."""
    q = quantized(model, split, s, 8, 8, "ptq")
    g, x, _ = integer_program(q, split)
    r = verify_graph(g, None, x[:2], "rv32imac", kernels="opt")
    return {"split": split.name, **{k: r[k] for k in ("mismatches", "instructions_per_inference", "instructions_per_mac",
                                                        "text_bytes", "rodata_bytes", "arena_peak_bytes",
                                                        "arena_plan_bytes", "stack_peak_bytes", "ram_peak_bytes")}}
