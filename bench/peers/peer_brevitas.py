"""brevitas INT4 QAT of the shared float model: DS-CNN-S rebuilt from brevitas layers (BatchNorm
folded first, as PQLR does), 4-bit per-channel weights (Int8WeightPerChannelFloat at bit width 4),
4-bit unsigned activations after every ReLU (Uint8ActPerTensorFloat at bit width 4), 8-bit input;
activation scales calibrated on the same clips as PQLR (brevitas calibration_mode), then the same
fine-tuning loop and epochs as PQLR's LSQ+ QAT. The average pool and the logits stay float (brevitas
fake-quant only; PQLR quantizes both, logits at 8 bit)."""
from __future__ import annotations

import torch
from torch import nn

from pqlr.compress.fold import fold_bn

from common import Settings, Split, accuracy, clone, fine_tune


def build(folded, bits: int = 4) -> nn.Module:
    import brevitas.nn as qnn
    from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Uint8ActPerTensorFloat

    def conv(src: nn.Conv2d):
        q = qnn.QuantConv2d(src.in_channels, src.out_channels, src.kernel_size, stride=src.stride, padding=src.padding,
                            groups=src.groups, bias=True, weight_quant=Int8WeightPerChannelFloat, weight_bit_width=bits)
        with torch.no_grad():
            q.weight.copy_(src.weight)
            q.bias.copy_(src.bias)
        return q

    def relu():
        return qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=bits)

    layers = [qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=8), conv(folded.conv), relu()]
    for b in folded.blocks:
        layers += [conv(b.dw), relu(), conv(b.pw), relu()]
    fc = qnn.QuantLinear(folded.fc.in_features, folded.fc.out_features, bias=True,
                         weight_quant=Int8WeightPerChannelFloat, weight_bit_width=bits)
    with torch.no_grad():
        fc.weight.copy_(folded.fc.weight)
        fc.bias.copy_(folded.fc.bias)
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), fc)


def packed_weight_bytes(model: nn.Module, bits: int = 4) -> int:
    """Computed deployable size: each output channel's weights packed at `bits` (row padded to a
    byte), plus a 4-byte scale and a 4-byte (int32) bias per output channel. brevitas itself stores
    float weights; it exports (Q)ONNX, not a packed MCU format."""
    import brevitas.nn as qnn

    total = 0
    for m in model.modules():
        if isinstance(m, (qnn.QuantConv2d, qnn.QuantLinear)):
            rows, per_row = m.weight.shape[0], m.weight[0].numel()
            total += rows * ((per_row * bits + 7) // 8) + rows * 8
    return int(total)


def int4_qat(model, split: Split, s: Settings) -> dict:
    from brevitas.graph.calibrate import calibration_mode

    folded = clone(model)
    fold_bn(folded)
    q = build(folded)
    q.eval()
    with torch.no_grad(), calibration_mode(q):
        for i in range(0, len(split.calib), s.batch_size):
            q(split.calib[i:i + s.batch_size])
    before = accuracy(q, split)
    secs = fine_tune(q, split, s)
    return {"accuracy_before_ft": before, "accuracy": accuracy(q, split), "weight_bytes": packed_weight_bytes(q),
            "ft_epochs": s.ft_epochs, "ft_seconds": round(secs, 1),
            "note": "fake-quant accuracy (brevitas has no integer runtime of its own); "
                    "weight bytes computed: packed int4 + 4 B scale + 4 B int32 bias per channel"}
