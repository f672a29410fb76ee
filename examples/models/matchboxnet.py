"""MatchboxNet: 1-D time-channel separable convolutional networks for speech commands, in plain PyTorch.

Written from the paper: Somshubra Majumdar, Boris Ginsburg, "MatchboxNet: 1D Time-Channel Separable
Convolutional Neural Network Architecture for Speech Commands Recognition", Interspeech 2020,
arXiv:2004.08531 (built on QuartzNet, Kriman et al. 2019, arXiv:1910.10261).

Classes (constructor `Class(n_classes=12, input_shape=(1, 49, 10))`, input (B, 1, frames, coefficients)):
  MatchboxNet3x1x64  the student, B = 3 blocks x R = 1 sub-block x C = 64 channels
  MatchboxNet6x2x64  the teacher, B = 6 x R = 2 x C = 64
Imports only torch.
"""
from torch import nn


class TimeChannelSeparableConv(nn.Module):
    """Depthwise 1-D conv over time (kernel k, dilation d, "same" length) then a pointwise 1x1 conv
    across channels, both without bias. (B, c_in, T) -> (B, c_out, T)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int = 1):
        super().__init__()
        self.depthwise = nn.Conv1d(c_in, c_in, kernel, padding=dilation * (kernel - 1) // 2,
                                   dilation=dilation, groups=c_in, bias=False)
        self.pointwise = nn.Conv1d(c_in, c_out, 1, bias=False)

    def forward(self, x):                                   # (B, c_in, T)
        return self.pointwise(self.depthwise(x))            # (B, c_out, T)


class MatchboxBlock(nn.Module):
    """One residual block of R sub-blocks. (B, c_in, T) -> (B, c_out, T).

    sub-block r < R:  time-channel separable conv -> BN -> ReLU -> dropout
    sub-block R:      time-channel separable conv -> BN
    residual:         pointwise 1x1 conv -> BN, added before the last ReLU -> dropout."""

    def __init__(self, c_in: int, c_out: int, kernel: int, repeat: int, dropout: float):
        super().__init__()
        layers = []
        for r in range(repeat):
            layers += [TimeChannelSeparableConv(c_in if r == 0 else c_out, c_out, kernel), nn.BatchNorm1d(c_out)]
            if r < repeat - 1:
                layers += [nn.ReLU(), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.residual = nn.Sequential(nn.Conv1d(c_in, c_out, 1, bias=False), nn.BatchNorm1d(c_out))
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):                                   # (B, c_in, T)
        y = self.body(x) + self.residual(x)                 # (B, c_out, T)
        return self.dropout(self.relu(y))


class MatchboxNet(nn.Module):
    """MatchboxNet BxRxC (Majumdar & Ginsburg 2020, "MatchboxNet: 1D Time-Channel Separable
    Convolutional Neural Network Architecture for Speech Commands Recognition", arXiv:2004.08531).
    Base class; use MatchboxNet3x1x64 (student) or MatchboxNet6x2x64 (teacher).

    Topology as implemented (input (B, C, T, F) = (B, 1, 49 frames, 10 MFCC)):
      the MFCC coefficients become the channels of a 1-D signal over time: (B, C*F, T) = (B, 10, 49)
      prologue Conv1: time-channel separable conv, kernel 11, 128 channels, BN, ReLU, dropout
      B residual blocks (MatchboxBlock) of R sub-blocks, C = 64 channels, kernels 13, 15, 17 (3 blocks)
        or 13, 15, 17, 19, 21, 23 (6 blocks)
      epilogue Conv2: time-channel separable conv, kernel 29, dilation 2, 128 channels, BN, ReLU, dropout
      epilogue Conv3: 1x1 conv, 128 channels, BN, ReLU, dropout
      Conv4 + global average pooling over time: average pooling then an nn.Linear(128, n_classes) (the
        paper's 1x1 conv to the classes followed by the average; the two orders compute the same
        function, pooling first costs T times fewer MACs).
    All convolutions are stride 1, without bias; "same" padding keeps the 49 frames throughout.

    Deviations from the paper:
      - input: 10 MFCC coefficients x 49 frames (PQLR's MLPerf Tiny front end) instead of 64 MFCC x 128
        frames; the prologue's depthwise/pointwise convs take 10 channels, not 64.
      - dropout p = 0.0 by default, as in the authors' released 3x1x64 training configuration (the
        modules are kept where the paper puts them; set DROPOUT to change it).
      - the paper's parameter counts (77 K / 140 K) are for 30 classes; the class default is 12.
    """

    DROPOUT = 0.0

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10), blocks: int = 3,
                 repeat: int = 1, channels: int = 64):
        super().__init__()
        c_in, frames, freq = (int(v) for v in input_shape)
        p = self.DROPOUT
        self.in_channels = c_in * freq
        kernels = [13 + 2 * i for i in range(blocks)]                  # 13, 15, 17, ...
        self.prologue = nn.Sequential(TimeChannelSeparableConv(self.in_channels, 128, 11),
                                      nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(p))
        body, prev = [], 128
        for k in kernels:
            body.append(MatchboxBlock(prev, channels, k, repeat, p))
            prev = channels
        self.blocks = nn.Sequential(*body)
        self.epilogue1 = nn.Sequential(TimeChannelSeparableConv(prev, 128, 29, dilation=2),
                                       nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(p))
        self.epilogue2 = nn.Sequential(nn.Conv1d(128, 128, 1, bias=False),
                                       nn.BatchNorm1d(128), nn.ReLU(), nn.Dropout(p))
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(128, n_classes)

    def forward(self, x):                                       # (B, C, T, F)
        B = x.shape[0]
        x = x.transpose(2, 3).reshape(B, self.in_channels, -1)  # (B, C*F, T): coefficients as channels
        x = self.prologue(x)                                    # (B, 128, T)
        x = self.blocks(x)                                      # (B, 64, T)
        x = self.epilogue1(x)                                   # (B, 128, T)
        x = self.epilogue2(x)                                   # (B, 128, T)
        x = self.flatten(self.pool(x))                          # (B, 128)
        return self.fc(x)                                       # (B, n_classes)


class MatchboxNet3x1x64(MatchboxNet):
    """MatchboxNet 3x1x64, the student. Paper: Majumdar & Ginsburg 2020, "MatchboxNet: 1D Time-Channel
    Separable Convolutional Neural Network Architecture for Speech Commands Recognition",
    arXiv:2004.08531.

    Topology: MFCC coefficients as channels; prologue separable conv k = 11 (128 ch); 3 blocks (kernels
    13, 15, 17) of 1 time-channel separable sub-block with 64 channels and a pointwise + BN residual;
    epilogue separable conv k = 29 dilation 2 (128), 1x1 conv (128), average pooling, linear.
    Deviations: 10 MFCC x 49 frames instead of 64 x 128; dropout 0 (the authors' released config)
    (details in MatchboxNet).

    At the default input (1, 49, 10), 12 classes: 67,386 parameters (the paper: 77 K with 64 MFCC and
    30 classes; this class at n_classes=30, input_shape=(1, 128, 64) has 77,214), 3.15 M MACs
    (conv/linear multiply-accumulates, counted with forward hooks; 9.20 M at the paper's input)."""

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10)):
        super().__init__(n_classes, input_shape, blocks=3, repeat=1, channels=64)


class MatchboxNet6x2x64(MatchboxNet):
    """MatchboxNet 6x2x64, the teacher. Paper: Majumdar & Ginsburg 2020, "MatchboxNet: 1D Time-Channel
    Separable Convolutional Neural Network Architecture for Speech Commands Recognition",
    arXiv:2004.08531.

    Topology: as MatchboxNet3x1x64 with 6 blocks (kernels 13, 15, 17, 19, 21, 23) of 2 sub-blocks.
    Deviations: as MatchboxNet3x1x64 (details in MatchboxNet).

    At the default input (1, 49, 10), 12 classes: 129,018 parameters (the paper: 140 K with 64 MFCC
    and 30 classes; 138,846 at n_classes=30, input_shape=(1, 128, 64)), 6.10 M MACs (conv/linear
    multiply-accumulates, counted with forward hooks; 16.9 M at the paper's input)."""

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10)):
        super().__init__(n_classes, input_shape, blocks=6, repeat=2, channels=64)
