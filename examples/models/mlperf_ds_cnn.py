"""The MLPerf Tiny keyword-spotting reference DS-CNN, written as its Keras reference builds it, in plain
PyTorch.

Written from: Yundong Zhang, Naveen Suda, Liangzhen Lai, Vikas Chandra, "Hello Edge: Keyword Spotting on
Microcontrollers", 2017, arXiv:1711.07128 (DS-CNN), as fixed by the MLPerf Tiny benchmark (Banbury et al.,
"MLPerf Tiny Benchmark", NeurIPS Datasets and Benchmarks 2021, arXiv:2106.07597) and its Keras
reference model (keyword_spotting/keras_model.py, "ds_cnn").

Classes (constructor `Class(n_classes=12, input_shape=(1, 49, 10))`, input (B, 1, frames, coefficients)):
  MLPerfDSCNN   the student, the reference: 64 channels, 4 depthwise-separable blocks
  MLPerfDSCNNL  the teacher, DS-CNN-L-like: 276 channels, 5 depthwise-separable blocks
Imports only torch.
"""
from torch import nn


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple:
    """TensorFlow padding="same" along one axis: (pad_before, pad_after, output_size). TensorFlow puts
    the odd pixel after, so a stride-2 conv pads asymmetrically."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class DSBlock(nn.Module):
    """Depthwise 3x3 ("same") + BN + ReLU, then pointwise 1x1 + BN + ReLU; convs with bias, as Keras'
    defaults. (B, c, H, W) -> (B, c_out, H, W)."""

    def __init__(self, c: int, c_out: int):
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.dw_bn = nn.BatchNorm2d(c)
        self.dw_relu = nn.ReLU()
        self.pw = nn.Conv2d(c, c_out, 1)
        self.pw_bn = nn.BatchNorm2d(c_out)
        self.pw_relu = nn.ReLU()

    def forward(self, x):                                   # (B, c, H, W)
        x = self.dw_relu(self.dw_bn(self.dw(x)))            # (B, c, H, W)
        return self.pw_relu(self.pw_bn(self.pw(x)))         # (B, c_out, H, W)


class MLPerfDSCNNBase(nn.Module):
    """DS-CNN as the MLPerf Tiny KWS Keras reference builds it (Zhang et al. 2017, "Hello Edge",
    arXiv:1711.07128; MLPerf Tiny, arXiv:2106.07597). Base class; use MLPerfDSCNN (student) or
    MLPerfDSCNNL (teacher).

    Topology as implemented (input (B, 1, T, F) = (B, 1, 49 frames, 10 MFCC), Keras' (49, 10, 1)):
      nn.ZeroPad2d reproducing TensorFlow's padding="same" for the 10x4 stride-2 conv, computed from
        the input shape: (left 1, right 1, top 4, bottom 5) on 49x10          -> (B, 1, 58, 12)
      conv 10x4, stride 2, `width` channels, bias, BN, ReLU, dropout 0.2       -> (B, w, 25, 5)
      n_blocks x [depthwise 3x3 "same" + BN + ReLU, pointwise 1x1 + BN + ReLU] -> (B, w, 25, 5)
      dropout 0.4
      average pooling with pool size (T // 2, F // 2) = (24, 5) and stride = pool size, valid: on the
        25x5 map it averages rows 0-23 and drops the last row (NOT a global pool)  -> (B, w, 1, 1)
      flatten, fully connected layer to n_classes (logits; softmax left to the loss).

    Deviations from the reference: none in the topology (the default class count is the reference's
    12). Parameter counts below include BatchNorm's weight and bias; Keras additionally lists the
    moving mean and variance as non-trainable parameters.
    """

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10), width: int = 64,
                 n_blocks: int = 4):
        super().__init__()
        c_in, frames, freq = (int(v) for v in input_shape)
        top, bottom, h = tf_same_padding(frames, 10, 2)
        left, right, w = tf_same_padding(freq, 4, 2)
        self.pad = nn.ZeroPad2d((left, right, top, bottom))
        self.conv = nn.Conv2d(c_in, width, (10, 4), stride=2)
        self.bn = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.drop1 = nn.Dropout(0.2)
        self.blocks = nn.Sequential(*[DSBlock(width, width) for _ in range(n_blocks)])
        self.drop2 = nn.Dropout(0.4)
        pool = (max(frames // 2, 1), max(freq // 2, 1))
        self.pool = nn.AvgPool2d(pool)                          # stride = pool size, no padding
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(width * (h // pool[0]) * (w // pool[1]), n_classes)

    def forward(self, x):                                       # (B, 1, T, F)
        x = self.pad(x)                                         # (B, 1, T+9, F+2) at 49x10
        x = self.drop1(self.relu(self.bn(self.conv(x))))        # (B, w, ceil(T/2), ceil(F/2))
        x = self.blocks(x)                                      # (B, w, 25, 5)
        x = self.pool(self.drop2(x))                            # (B, w, 1, 1)
        return self.fc(self.flatten(x))                         # (B, n_classes)


class MLPerfDSCNN(MLPerfDSCNNBase):
    """The MLPerf Tiny KWS reference DS-CNN, the student. Papers: Zhang, Suda, Lai, Chandra 2017, "Hello
    Edge: Keyword Spotting on Microcontrollers", arXiv:1711.07128; Banbury et al. 2021, "MLPerf Tiny
    Benchmark", arXiv:2106.07597 (its Keras reference).

    Topology: ZeroPad2d (1, 1, 4, 5), conv 10x4 stride 2 (64) + BN + ReLU + dropout 0.2, 4 x [depthwise
    3x3 + BN + ReLU, pointwise 64 + BN + ReLU], dropout 0.4, AvgPool2d (24, 5) (drops the 25th row),
    flatten, FC (details in MLPerfDSCNNBase).
    Deviations: none from the Keras reference.

    At the default input (1, 49, 10), 12 classes: 23,756 parameters (22,604 conv/linear weights and
    biases, the reference's ~22.6 K, + 1,152 BatchNorm weights and biases), 2,656,768 MACs
    (conv/linear multiply-accumulates, counted with forward hooks; the reference's ~2.66 M)."""

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10)):
        super().__init__(n_classes, input_shape, width=64, n_blocks=4)


class MLPerfDSCNNL(MLPerfDSCNNBase):
    """A DS-CNN-L-like teacher. Papers: Zhang, Suda, Lai, Chandra 2017, "Hello Edge: Keyword Spotting on
    Microcontrollers", arXiv:1711.07128 (DS-CNN-L); Banbury et al. 2021, "MLPerf Tiny Benchmark",
    arXiv:2106.07597 (the reference's padding, stride and pooling).

    Topology: as MLPerfDSCNN with DS-CNN-L's width (276 channels) and depth (5 depthwise-separable
    blocks).
    Deviations from Hello Edge's DS-CNN-L: its stride (2, 1) first conv and stride-2 second block are
    replaced by the reference's stride-2 first conv, so the map stays 25x5 as in MLPerfDSCNN.

    At the default input (1, 49, 10), 12 classes: 416,772 parameters, 50.5 M MACs (conv/linear
    multiply-accumulates, counted with forward hooks)."""

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10)):
        super().__init__(n_classes, input_shape, width=276, n_blocks=5)
