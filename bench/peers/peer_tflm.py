"""TFLite int8 of the shared float model, made by litert-torch (PT2E post-training quantization,
per-channel symmetric weights, the same calibration clips as PQLR) and run in the TFLite Micro
interpreter (the tflite-micro wheel's Python binding over the C++ runtime): test accuracy, the
.tflite size, the minimal arena (bisected) and the host invoke time."""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import numpy as np
import torch

from common import Split, Settings, median_ns


@contextlib.contextmanager
def quiet_fd2():
    """TFLM prints every failed allocation to stderr while the arena is bisected: hide it."""
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def convert(model, split: Split, out: Path) -> Path:
    """litert-torch: torch.export -> PT2E prepare -> calibrate on split.calib -> convert -> .tflite."""
    import litert_torch
    from litert_torch.quantize import pt2e_quantizer
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e import move_exported_model_to_eval, quantize_pt2e

    args = (split.calib[:1].clone(),)
    gm = torch.export.export(model.eval(), args).module()
    quantizer = pt2e_quantizer.PT2EQuantizer().set_global(
        pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))
    gm = quantize_pt2e.prepare_pt2e(gm, quantizer)
    move_exported_model_to_eval(gm)
    with torch.no_grad():
        for i in range(len(split.calib)):           # the exported graph has batch 1
            gm(split.calib[i:i + 1])
    gm = quantize_pt2e.convert_pt2e(gm, fold_quantize=False)
    move_exported_model_to_eval(gm)    # batch-norm / dropout in inference form
    edge = litert_torch.convert(gm, args, quant_config=QuantConfig(pt2e_quantizer=quantizer))
    out.parent.mkdir(parents=True, exist_ok=True)
    edge.export(str(out))
    return out


def _interpreter(blob: bytes, arena: int):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.Interpreter.from_bytes(blob, arena_size=arena)


def _runs(blob: bytes, arena: int, x: np.ndarray) -> bool:
    try:
        it = _interpreter(blob, arena)
        it.set_input(x, 0)
        it.invoke()
        return True
    except Exception:       # the binding raises RuntimeError on a failed AllocateTensors / Invoke
        return False


def min_arena(blob: bytes, x: np.ndarray, hi: int = 1 << 20) -> int:
    """Smallest arena_size (bytes) with which the interpreter allocates and invokes (bisection)."""
    lo = 0
    with quiet_fd2():
        if not _runs(blob, hi, x):
            raise RuntimeError(f"TFLM does not run this model even with a {hi} B arena")
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if _runs(blob, mid, x) else (mid, hi)
    return hi


def evaluate(tflite: Path, split: Split, s: Settings) -> dict:
    blob = tflite.read_bytes()
    it = _interpreter(blob, 1 << 20)
    din, dout = it.get_input_details(0), it.get_output_details(0)
    sc, zp = float(din["quantization_parameters"]["scales"][0]), int(din["quantization_parameters"]["zero_points"][0])
    shape = tuple(int(v) for v in din["shape"])
    xq = np.clip(np.round(split.x_test.numpy() / sc) + zp, -128, 127).astype(np.int8)   # (N, 1, 49, 10)
    preds = []
    for i in range(len(xq)):
        it.set_input(xq[i].reshape(shape), 0)
        it.invoke()
        preds.append(int(np.argmax(it.get_output(0))))
    acc = float(np.mean(np.array(preds) == split.y_test))
    arena = min_arena(blob, xq[0].reshape(shape))
    it = _interpreter(blob, arena)
    it.set_input(xq[0].reshape(shape), 0)
    for _ in range(20):
        it.invoke()
    ns = []
    for _ in range(s.repeats):
        t0 = time.perf_counter_ns()
        it.invoke()
        ns.append(time.perf_counter_ns() - t0)
    return {"accuracy": acc, "tflite_bytes": len(blob), "arena_min_bytes": arena,
            "input_dtype": str(np.dtype(din["dtype"])), "output_dtype": str(np.dtype(dout["dtype"])),
            "latency": {"median_ns": median_ns(ns), "repeats": s.repeats,
                        "what": "Interpreter.invoke() from Python (tflite-micro wheel, reference kernels); "
                                "includes the binding's call overhead"}}
