"""The supported PyTorch operations: which module types, functions and tensor methods capture
understands, the canonical op each becomes, and that op's attributes. docs/ops.md is generated from
this table (`markdown()`; `pqlr ops --markdown > docs/ops.md`), so the documentation and
what capture accepts cannot disagree. Anything not listed here is refused by capture, naming the
node, the operation and the line of the user's code.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class OpInfo:
    doc: str                          # what the op computes (PyTorch semantics, shapes without the batch)
    attrs: str = ""                   # its attributes
    deploy: str = ""                  # what it becomes on the target


OPS: dict[str, OpInfo] = {
    "input": OpInfo("the model input, one sample's shape (the batch is dim 0 of the real tensor)", "",
                    "int8 features (widened to int16 for 16-bit models)"),
    "const": OpInfo("a parameter/buffer of the model read in forward (e.g. a positional table), or a scalar",
                    "key (its name) or value (a number)", "a constant operand of add/sub/mul, in flash"),
    "conv": OpInfo("Conv1d / Conv2d: any kernel, stride, dilation, zero padding (incl. 'same', asymmetric "
                   "after a folded zero pad), groups and depthwise; weights in the module",
                   "dims (1 or 2), padding ((before, after) per spatial dim)",
                   "conv2d / depthwise_conv2d, channels last; a 1-D conv runs over (T, C)"),
    "linear": OpInfo("Linear on the last dim of any leading shape", "", "fully_connected"),
    "batchnorm": OpInfo("BatchNorm1d / BatchNorm2d (eval statistics); folded into the conv/linear before it "
                        "when that is its only producer, else a per-channel affine", "",
                        "folded, or channel_affine"),
    "layernorm": OpInfo("LayerNorm over the last dim", "", "layernorm"),
    "prelu": OpInfo("PReLU, one slope or one per channel", "", "prelu"),
    "act": OpInfo("an element-wise activation", "fn: relu, hardtanh (min, max; ReLU6 = 0..6; clamp: either "
                  "bound may be open), leaky_relu "
                  "(slope), sigmoid, tanh, hardswish, hardsigmoid, silu, gelu, gelu_tanh, elu (alpha), "
                  "softplus (beta, threshold), mish",
                  "relu / hardtanh: the producer's output clamp (or a requantize); leaky_relu: prelu; the "
                  "others: a 256-entry table (int8) or interpolated 513-knot table (int16)"),
    "add": OpInfo("a + b with broadcasting (a scalar or a constant operand allowed)", "", "add"),
    "sub": OpInfo("a - b with broadcasting (a scalar or a constant operand allowed)", "", "sub"),
    "mul": OpInfo("a * b of two tensors with broadcasting (a constant operand allowed)", "", "mul"),
    "scale": OpInfo("x times (or divided by) a positive Python number", "factor",
                    "requantize (folded into a matmul's multiplier when it follows one)"),
    "cat": OpInfo("torch.cat (and torch.stack: a size-1 axis, then a cat) of up to 8 tensors", "dim",
                  "concat (inputs requantized to one scale)"),
    "slice": OpInfo("basic indexing x[..., a:b:s, i], narrow, split, chunk (the batch dim untouched)",
                    "begin, end, step per dim", "slice (free when it keeps every element)"),
    "reshape": OpInfo("view / reshape / flatten / squeeze / unsqueeze / Flatten / Unflatten (batch kept)",
                      "(the output shape is the node's shape)", "reshape (a no-op in memory where the layout allows)"),
    "permute": OpInfo("permute / transpose (batch kept in place)", "perm", "a relabelling; transpose only where "
                      "a later op needs another layout"),
    "pad": OpInfo("F.pad / ZeroPad / ConstantPad (constant mode)", "pads ((before, after) per dim), value",
                  "folded into the next conv's padding when it is a zero pad on its spatial dims, else pad"),
    "maxpool": OpInfo("MaxPool1d / MaxPool2d (ceil_mode only where it changes nothing)",
                      "dims, kernel, stride, padding, dilation", "max_pool2d"),
    "avgpool": OpInfo("AvgPool1d / AvgPool2d, count_include_pad either way (ceil_mode only where it changes "
                      "nothing)", "dims, kernel, stride, padding, count_include_pad", "avg_pool2d"),
    "adaptive_avgpool": OpInfo("AdaptiveAvgPool1d / 2d to a fixed size", "dims, output",
                               "adaptive_avg_pool2d (mean when the output is 1)"),
    "adaptive_maxpool": OpInfo("AdaptiveMaxPool1d / 2d to a fixed size", "dims, output", "adaptive_max_pool2d"),
    "mean": OpInfo("x.mean(dims, keepdim) over non-batch dims (x.sum: the mean, then a scale by the count)",
                   "dims, keepdim", "mean"),
    "softmax": OpInfo("softmax over one dim", "dim", "softmax (int8: 1/256 steps)"),
    "matmul": OpInfo("torch.matmul / @ / bmm of two activations", "", "matmul"),
    "dropout": OpInfo("Dropout (active while training, removed for deployment)", "p", "nothing"),
}

# ---------------------------------------------------------------- PyTorch spellings -> handler
# handler names are implemented in capture/trace.py; each produces one canonical op (or none).
MODULES: dict[type, str] = {
    nn.Conv1d: "conv", nn.Conv2d: "conv", nn.Linear: "linear",
    nn.BatchNorm1d: "batchnorm", nn.BatchNorm2d: "batchnorm", nn.LayerNorm: "layernorm", nn.PReLU: "prelu",
    nn.ReLU: "act", nn.ReLU6: "act", nn.Hardtanh: "act", nn.LeakyReLU: "act", nn.Sigmoid: "act",
    nn.Tanh: "act", nn.Hardswish: "act", nn.Hardsigmoid: "act", nn.SiLU: "act", nn.GELU: "act",
    nn.ELU: "act", nn.Softplus: "act", nn.Mish: "act",
    nn.Softmax: "softmax", nn.Dropout: "dropout", nn.Dropout1d: "dropout", nn.Dropout2d: "dropout",
    nn.AlphaDropout: "dropout", nn.Identity: "identity", nn.Flatten: "reshape", nn.Unflatten: "reshape",
    nn.MaxPool1d: "maxpool", nn.MaxPool2d: "maxpool", nn.AvgPool1d: "avgpool", nn.AvgPool2d: "avgpool",
    nn.AdaptiveAvgPool1d: "adaptive_avgpool", nn.AdaptiveAvgPool2d: "adaptive_avgpool",
    nn.AdaptiveMaxPool1d: "adaptive_maxpool", nn.AdaptiveMaxPool2d: "adaptive_maxpool",
    nn.ZeroPad1d: "pad", nn.ZeroPad2d: "pad", nn.ConstantPad1d: "pad", nn.ConstantPad2d: "pad",
}

FUNCTIONS: dict[object, str] = {
    operator.add: "add", torch.add: "add", operator.iadd: "add",
    operator.sub: "sub", torch.sub: "sub", operator.isub: "sub",
    operator.mul: "mul", torch.mul: "mul", operator.imul: "mul",
    operator.truediv: "div", torch.div: "div", operator.itruediv: "div",
    torch.cat: "cat", torch.concat: "cat", torch.concatenate: "cat",
    torch.flatten: "reshape", torch.reshape: "reshape", torch.squeeze: "reshape", torch.unsqueeze: "reshape",
    torch.permute: "permute", torch.transpose: "permute",
    torch.mean: "mean", torch.matmul: "matmul", operator.matmul: "matmul", torch.bmm: "matmul",
    torch.relu: "act", F.relu: "act", F.relu6: "act", F.hardtanh: "act", F.leaky_relu: "act",
    torch.sigmoid: "act", F.sigmoid: "act", torch.tanh: "act", F.tanh: "act", F.hardswish: "act",
    F.hardsigmoid: "act", F.silu: "act", F.gelu: "act", F.elu: "act", F.softplus: "act", F.mish: "act",
    F.softmax: "softmax", torch.softmax: "softmax", F.dropout: "dropout",
    F.pad: "pad", F.max_pool1d: "maxpool", F.max_pool2d: "maxpool", F.avg_pool1d: "avgpool",
    F.avg_pool2d: "avgpool", F.adaptive_avg_pool1d: "adaptive_avgpool", F.adaptive_avg_pool2d: "adaptive_avgpool",
    F.adaptive_max_pool1d: "adaptive_maxpool", F.adaptive_max_pool2d: "adaptive_maxpool",
    operator.getitem: "getitem", torch.split: "split", torch.chunk: "chunk", torch.narrow: "narrow",
    torch.clamp: "clamp", torch.clip: "clamp", torch.clamp_min: "clamp", torch.clamp_max: "clamp",
    torch.sum: "sum", torch.stack: "stack",
    getattr: "python", len: "python", operator.floordiv: "python", operator.mod: "python",
    operator.neg: "python", math.prod: "python",
}

METHODS: dict[str, str] = {
    "add": "add", "add_": "add", "sub": "sub", "mul": "mul", "div": "div",
    "view": "reshape", "reshape": "reshape", "flatten": "reshape", "squeeze": "reshape",
    "unsqueeze": "reshape", "view_as": "reshape", "reshape_as": "reshape",
    "permute": "permute", "transpose": "permute",
    "contiguous": "identity", "clone": "identity", "float": "identity", "detach": "identity",
    "mean": "mean", "matmul": "matmul", "softmax": "softmax", "relu": "act", "sigmoid": "act", "tanh": "act",
    "split": "split", "chunk": "chunk", "narrow": "narrow", "clamp": "clamp", "clip": "clamp",
    "clamp_min": "clamp", "clamp_max": "clamp", "sum": "sum",
    "size": "python", "dim": "python",
}

# which canonical op each handler makes (for the documentation)
HANDLER_OPS = {"div": "scale", "getitem": "slice", "split": "slice", "chunk": "slice", "narrow": "slice",
               "clamp": "act", "sum": "mean", "stack": "cat", "identity": None, "python": None}


def _spellings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {op: [] for op in OPS}
    for t, h in MODULES.items():
        op = HANDLER_OPS.get(h, h)
        if op:
            out[op].append(f"nn.{t.__name__}")
    for f, h in FUNCTIONS.items():
        op = HANDLER_OPS.get(h, h)
        if op:
            mod = getattr(f, "__module__", "") or ""
            prefix = "F." if "functional" in mod else ("operator." if f in vars(operator).values() else "torch.")
            out[op].append(prefix + getattr(f, "__name__", str(f)))
    for m, h in METHODS.items():
        op = HANDLER_OPS.get(h, h)
        if op:
            out[op].append(f"Tensor.{m}")
    if "mul" in out:
        out["scale"] += ["x * number", "x / number"]
        out["add"].append("x + number")
        out["sub"].append("x - number, number - x")
    return {op: sorted(set(v)) for op, v in out.items()}


def markdown() -> str:
    """docs/ops.md: every canonical op, its PyTorch spellings, attributes and what it deploys as."""
    lines = ["# Supported operations", "",
             "<!-- generated by `pqlr ops --markdown > docs/ops.md`; do not edit -->", "",
             "`pqlr-compress --model file.py:Class` captures the model with torch.fx "
             "(src/pqlr/capture) into the canonical ops below; every compression stage and the code "
             "generator read that graph. Anything else is refused before training, naming the node, "
             "the operation and the line of your code.", "",
             "| op | PyTorch | attributes | on the target |", "|---|---|---|---|"]
    spell = _spellings()
    for op, info in OPS.items():
        names = ", ".join(f"`{s}`" for s in spell.get(op, [])) or "-"
        lines.append(f"| `{op}` | {info.doc}. {names} | {info.attrs or '-'} | {info.deploy or '-'} |")
    lines += ["", "Not supported (refused with that message): recurrent layers (GRU, LSTM), "
              "nn.MultiheadAttention / nn.TransformerEncoderLayer modules, transposed convolutions, "
              "interpolation, reflection/replication padding, functional conv/linear with weights passed "
              "by hand, tensors created inside forward, data-dependent control flow, models with more "
              "than one input or output.", ""]
    return "\n".join(lines)
