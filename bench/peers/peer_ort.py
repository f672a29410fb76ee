"""onnxruntime static INT8 quantization of the shared float model: torch.onnx export (opset 17),
quant_pre_process, quantize_static (QDQ, per-channel symmetric weights, int8 activations, MinMax
calibration on the same clips as PQLR), scored with onnxruntime's CPU session (1 thread): the
QDQ model as quantized (Q/DQ executed in float, graph optimizations off), the same model on
onnxruntime's fused int8 CPU kernels, and with reduce_range=True (7-bit weights), onnxruntime's
documented remedy for int8 saturation on x86 CPUs without VNNI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common import Split


def export(model, split: Split, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model.eval(), (split.calib[:1].clone(),), str(out), input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17, dynamo=False)
    return out


def quantize(model, split: Split, work: Path, reduce_range: bool = False) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{"x": split.calib[i:i + 1].numpy()} for i in range(len(split.calib))])

        def get_next(self):
            return next(self.it, None)

    pre = work / "float_pre.onnx"
    quant_pre_process(str(export(model, split, work / "float.onnx")), str(pre))
    out = work / ("int8_qdq_reduce_range.onnx" if reduce_range else "int8_qdq.onnx")
    quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, reduce_range=reduce_range)
    return out


def accuracy(onnx_path: Path, split: Split, int8_kernels: bool = True) -> float:
    """int8_kernels=False: graph optimizations off, so each QuantizeLinear/DequantizeLinear pair runs
    as float arithmetic (the quantized model's own accuracy, independent of the CPU's int8 kernels)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = so.inter_op_num_threads = 1
    if not int8_kernels:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
    x = split.x_test.numpy()
    logits = np.concatenate([sess.run(None, {"x": x[i:i + 256]})[0] for i in range(0, len(x), 256)])
    return float(np.mean(logits.argmax(1) == split.y_test))


def weight_bytes_int8(onnx_path: Path) -> int:
    """Bytes of the quantized model's integer initializers (int8 weights, int32 biases) + their scales
    and zero points: what an int8 runtime would store; the .onnx file itself is larger (graph, names)."""
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(onnx_path))
    total = 0
    for init in m.graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype in (np.int8, np.uint8, np.int32) or init.name.endswith(("_scale", "_zero_point")):
            total += a.nbytes
    return int(total)


def run(model, split: Split, work: Path) -> dict:
    q = quantize(model, split, work)
    rr = quantize(model, split, work, reduce_range=True)
    return {"accuracy": accuracy(q, split, int8_kernels=False), "accuracy_int8_kernels": accuracy(q, split),
            "accuracy_reduce_range_int8_kernels": accuracy(rr, split),
            "float_onnx_accuracy": accuracy(work / "float.onnx", split), "onnx_bytes": q.stat().st_size,
            "weight_bytes": weight_bytes_int8(q), "calibration": "MinMax (quantize_static default)"}
