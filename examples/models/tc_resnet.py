"""TC-ResNet: temporal convolution ResNets for keyword spotting, in plain PyTorch.

Written from the paper: Seungwoo Choi, Seokjun Seo, Beomjun Shin, Hyeongmin Byun, Martin Kersner,
Beomsu Kim, Dongyoung Kim, Sungjoo Ha, "Temporal Convolution for Real-time Keyword Spotting on Mobile
Devices", Interspeech 2019, arXiv:1904.03814.

Classes (constructor `Class(n_classes=12, input_shape=(1, 49, 10))`, input (B, 1, frames, coefficients)):
  TCResNet8       the student, TC-ResNet8 (width multiplier 1)
  TCResNet14_1_5  the teacher, TC-ResNet14-1.5
Imports only torch.
"""
from torch import nn


class TCResBlock(nn.Module):
    """Residual block of two temporal convolutions. (B, c_in, T) -> (B, c_out, ceil(T / stride)).

    main:     conv k (stride s) -> BN -> ReLU -> conv k -> BN
    shortcut: identity when c_in == c_out and s == 1, else conv 1x1 (stride s) -> BN -> ReLU
    out = ReLU(main + shortcut)"""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int = 9):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm1d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv1d(c_out, c_out, kernel, padding=kernel // 2, bias=False)
        self.bn2 = nn.BatchNorm1d(c_out)
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False),
                                          nn.BatchNorm1d(c_out), nn.ReLU())
        else:
            self.shortcut = nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x):                                   # (B, c_in, T)
        y = self.relu1(self.bn1(self.conv1(x)))             # (B, c_out, T')
        y = self.bn2(self.conv2(y))                         # (B, c_out, T')
        return self.relu(y + self.shortcut(x))              # (B, c_out, T')


class TCResNet(nn.Module):
    """TC-ResNet (Choi et al. 2019, "Temporal Convolution for Real-time Keyword Spotting on Mobile
    Devices", arXiv:1904.03814). Base class; use TCResNet8 (student) or TCResNet14_1_5 (teacher).

    Topology as implemented (input (B, C, T, F) = (B, 1, 49 frames, 10 MFCC)):
      the MFCC coefficients become the channels of a 1-D signal over time: (B, C*F, T) = (B, 10, 49)
      conv 3 (temporal), widths[0] channels, BN, ReLU
      one TCResBlock (kernel 9) per further width: a block that changes the width has stride 2 and a
        1x1 conv + BN + ReLU shortcut, a block that keeps it has stride 1 and an identity shortcut
      global average pooling over time, dropout 0.5, fully connected layer to n_classes.
    No bias in the convolutions (all are followed by BatchNorm).

    Deviations from the paper:
      - input: 10 MFCC coefficients x 49 frames (PQLR's MLPerf Tiny front end; 40 ms windows, 20 ms hop)
        instead of 40 MFCC x 98 frames (30 ms / 10 ms); the first conv has 10 input channels, not 40.
      - padding: symmetric k // 2, which equals TensorFlow's "same" at odd lengths (49 -> 25 -> 13 -> 7)
        and gives the same output lengths at any length.
      - the classifier is an nn.Linear with a bias.
    """

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10),
                 widths: tuple = (16, 24, 32, 48)):
        super().__init__()
        c_in, frames, freq = (int(v) for v in input_shape)
        self.in_channels = c_in * freq
        self.conv0 = nn.Conv1d(self.in_channels, widths[0], 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm1d(widths[0])
        self.relu0 = nn.ReLU()
        blocks = []
        for prev, w in zip(widths[:-1], widths[1:]):
            blocks.append(TCResBlock(prev, w, stride=2 if w != prev else 1))
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(widths[-1], n_classes)

    def forward(self, x):                                       # (B, C, T, F)
        B = x.shape[0]
        x = x.transpose(2, 3).reshape(B, self.in_channels, -1)  # (B, C*F, T): coefficients as channels
        x = self.relu0(self.bn0(self.conv0(x)))                 # (B, w0, T)
        x = self.blocks(x)                                      # (B, w_last, T / 2^n_strided)
        x = self.flatten(self.pool(x))                          # (B, w_last)
        return self.fc(self.dropout(x))                         # (B, n_classes)


class TCResNet8(TCResNet):
    """TC-ResNet8, the student. Paper: Choi et al. 2019, "Temporal Convolution for Real-time Keyword
    Spotting on Mobile Devices", arXiv:1904.03814.

    Topology: MFCC coefficients as channels; temporal conv 3 (16 ch), 3 residual blocks of two k = 9
    convs with widths 24, 32, 48, each with stride 2 and a 1x1 conv + BN + ReLU shortcut; average
    pooling, dropout, FC (details in TCResNet).
    Deviations: 10 MFCC x 49 frames instead of 40 MFCC x 98, so 10 input channels (details in TCResNet).

    At the default input (1, 49, 10), 12 classes: 63,740 parameters (the paper: 66 K with 40 MFCC; this
    class at input_shape=(1, 98, 40) has 65,180), 722,016 MACs (conv/linear multiply-accumulates,
    counted with forward hooks; 1.52 M at input_shape=(1, 98, 40))."""

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10)):
        super().__init__(n_classes, input_shape, widths=(16, 24, 32, 48))


class TCResNet14_1_5(TCResNet):
    """TC-ResNet14-1.5, the teacher. Paper: Choi et al. 2019, "Temporal Convolution for Real-time
    Keyword Spotting on Mobile Devices", arXiv:1904.03814.

    Topology: widths 1.5 x (16, 24, 24, 32, 32, 48, 48) = 24, 36, 36, 48, 48, 72, 72: temporal conv 3,
    then six blocks, alternately strided (1x1 conv shortcut) and identity; average pooling, dropout, FC.
    Deviations: as TCResNet8 (details in TCResNet).

    At the default input (1, 49, 10), 12 classes: 300,852 parameters (the paper: 305 K with 40 MFCC;
    303,012 at input_shape=(1, 98, 40)), 3.38 M MACs (conv/linear multiply-accumulates, counted with
    forward hooks; 6.68 M at input_shape=(1, 98, 40))."""

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10)):
        super().__init__(n_classes, input_shape, widths=tuple(int(w * 1.5) for w in (16, 24, 24, 32, 32, 48, 48)))
