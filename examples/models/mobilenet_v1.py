"""The MLPerf Tiny visual-wake-words MobileNetV1 (alpha = 0.25, 96x96x3), in plain PyTorch.

Written from: Andrew G. Howard, Menglong Zhu, Bo Chen, Dmitry Kalenichenko, Weijun Wang, Tobias Weyand,
Marco Andreetto, Hartwig Adam, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", 2017, arXiv:1704.04861, as fixed by the MLPerf Tiny visual wake words benchmark
(Banbury et al., "MLPerf Tiny Benchmark", arXiv:2106.07597; Chowdhery et al., "Visual Wake Words
Dataset", arXiv:1906.05721) and its Keras reference (vww_model.py, "mobilenet_v1").

Classes (constructor `Class(n_classes=2, input_shape=(3, 96, 96))`, input (B, 3, H, W)):
  MobileNetV1_025  the student, width multiplier alpha = 0.25 (the benchmark's)
  MobileNetV1_050  the teacher, alpha = 0.5
Imports only torch.
"""
from torch import nn


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple:
    """TensorFlow padding="same" along one axis: (pad_before, pad_after, output_size). TensorFlow puts
    the odd pixel after, so a 3x3 stride-2 conv on an even size pads (0, 1)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def conv_same(c_in: int, c_out: int, kernel: int, stride: int, hw: tuple, groups: int = 1):
    """A conv (with bias, as Keras' default) with TensorFlow's "same" padding on an (H, W) input:
    symmetric padding inside the conv, or an explicit nn.ZeroPad2d when TensorFlow pads asymmetrically.
    Returns (module, (H_out, W_out))."""
    top, bottom, h = tf_same_padding(hw[0], kernel, stride)
    left, right, w = tf_same_padding(hw[1], kernel, stride)
    if top == bottom and left == right:
        return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(top, left), groups=groups), (h, w)
    return nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)),
                         nn.Conv2d(c_in, c_out, kernel, stride=stride, groups=groups)), (h, w)


class DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 (stride s) + BN + ReLU, then pointwise 1x1 + BN + ReLU.
    (B, c_in, H, W) -> (B, c_out, H/s, W/s)."""

    def __init__(self, c_in: int, c_out: int, stride: int, hw: tuple):
        super().__init__()
        self.dw, self.hw_out = conv_same(c_in, c_in, 3, stride, hw, groups=c_in)
        self.dw_bn = nn.BatchNorm2d(c_in)
        self.dw_relu = nn.ReLU()
        self.pw = nn.Conv2d(c_in, c_out, 1)
        self.pw_bn = nn.BatchNorm2d(c_out)
        self.pw_relu = nn.ReLU()

    def forward(self, x):                                   # (B, c_in, H, W)
        x = self.dw_relu(self.dw_bn(self.dw(x)))            # (B, c_in, H/s, W/s)
        return self.pw_relu(self.pw_bn(self.pw(x)))         # (B, c_out, H/s, W/s)


class MobileNetV1(nn.Module):
    """MobileNetV1 (Howard et al. 2017, arXiv:1704.04861) as the MLPerf Tiny visual wake words reference
    builds it (arXiv:2106.07597). Base class; use MobileNetV1_025 (student) or MobileNetV1_050 (teacher).

    Topology as implemented (input (B, 3, 96, 96); alpha = width multiplier):
      conv 3x3 stride 2, 32*alpha channels, BN, ReLU                              -> (B, 8, 48, 48)
      13 depthwise-separable blocks (DepthwiseSeparable), pointwise channels alpha x (64, 128, 128, 256,
        256, 512, 512, 512, 512, 512, 512, 1024, 1024), depthwise strides (1, 2, 1, 2, 1, 2, 1, 1, 1, 1,
        1, 2, 1)                                                                  -> (B, 256, 3, 3)
      average pooling over the whole last map (3x3 at 96x96)                      -> (B, 256, 1, 1)
      flatten, fully connected layer to n_classes (logits; softmax left to the loss).
    All convs have a bias (Keras' default in the reference); "same" padding is TensorFlow's, so the
    stride-2 convs pad (0, 1) through an explicit nn.ZeroPad2d.

    Deviations from the reference: none in the topology (ReLU, not the Keras-applications ReLU6, as the
    benchmark reference). Parameter counts include BatchNorm's weight and bias; Keras additionally lists
    the moving mean and variance as non-trainable parameters.
    """

    POINTWISE = (64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024)
    STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1)

    def __init__(self, n_classes: int = 2, input_shape: tuple = (3, 96, 96), alpha: float = 0.25):
        super().__init__()
        c_in, height, width = (int(v) for v in input_shape)
        ch = lambda c: max(1, int(c * alpha))
        self.stem, hw = conv_same(c_in, ch(32), 3, 2, (height, width))
        self.stem_bn = nn.BatchNorm2d(ch(32))
        self.stem_relu = nn.ReLU()
        blocks, prev = [], ch(32)
        for c, s in zip(self.POINTWISE, self.STRIDES):
            blocks.append(DepthwiseSeparable(prev, ch(c), s, hw))
            prev, hw = ch(c), blocks[-1].hw_out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AvgPool2d(hw)                            # the whole last map
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(prev, n_classes)

    def forward(self, x):                                       # (B, 3, 96, 96)
        x = self.stem_relu(self.stem_bn(self.stem(x)))          # (B, 32a, 48, 48)
        x = self.blocks(x)                                      # (B, 1024a, 3, 3)
        x = self.flatten(self.pool(x))                          # (B, 1024a)
        return self.fc(x)                                       # (B, n_classes)


class MobileNetV1_025(MobileNetV1):
    """MobileNetV1 alpha = 0.25, the student (the MLPerf Tiny VWW reference). Papers: Howard et al. 2017,
    "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
    arXiv:1704.04861; Banbury et al. 2021, "MLPerf Tiny Benchmark", arXiv:2106.07597.

    Topology: conv 3x3 stride 2 (8) + BN + ReLU; 13 depthwise-separable blocks with pointwise 16, 32,
    32, 64, 64, 128 x 6, 256, 256 and strides 1, 2, 1, 2, 1, 2, 1 x 5, 2, 1; average pooling 3x3; FC
    (details in MobileNetV1).
    Deviations: none from the Keras reference (TensorFlow "same" padding reproduced with ZeroPad2d).

    At the default input (3, 96, 96), 2 classes: 216,322 parameters (208,112 conv/linear weights, the
    reference's ~208 K, + 2,738 biases + 5,472 BatchNorm weights and biases), 7,489,664 MACs
    (conv/linear multiply-accumulates, counted with forward hooks; the reference's ~7.5 M)."""

    def __init__(self, n_classes: int = 2, input_shape: tuple = (3, 96, 96)):
        super().__init__(n_classes, input_shape, alpha=0.25)


class MobileNetV1_050(MobileNetV1):
    """MobileNetV1 alpha = 0.5, the teacher. Papers: Howard et al. 2017, "MobileNets: Efficient
    Convolutional Neural Networks for Mobile Vision Applications", arXiv:1704.04861; Banbury et al.
    2021, "MLPerf Tiny Benchmark", arXiv:2106.07597.

    Topology: as MobileNetV1_025 with twice the channels: stem 16, pointwise 32, 64, 64, 128, 128,
    256 x 6, 512, 512.
    Deviations: only the width multiplier (0.5 instead of the reference's 0.25).

    At the default input (3, 96, 96), 2 classes: 825,090 parameters, 27.4 M MACs (conv/linear
    multiply-accumulates, counted with forward hooks)."""

    def __init__(self, n_classes: int = 2, input_shape: tuple = (3, 96, 96)):
        super().__init__(n_classes, input_shape, alpha=0.5)
