"""BC-ResNet: broadcasted residual learning for keyword spotting, in plain PyTorch.

Written from the paper: Byeonggeun Kim, Simyung Chang, Jinkyu Lee, Dooyong Sung, "Broadcasted Residual
Learning for Efficient Keyword Spotting", Interspeech 2021, arXiv:2106.04140; SubSpectral Normalization
from Chang et al. 2021, arXiv:2103.13620.

Classes (constructor `Class(n_classes=12, input_shape=(1, 49, 10))`, input (B, 1, frames, coefficients)):
  BCResNet1  the student, width tau = 1
  BCResNet3  the teacher, width tau = 3
Imports only torch.
"""
from torch import nn


def _subbands(freq: int, wanted: int = 5) -> int:
    """The largest sub-band count <= `wanted` (5 in the paper) that divides the frequency axis."""
    for s in range(min(wanted, freq), 0, -1):
        if freq % s == 0:
            return s
    return 1


class SubSpectralNorm(nn.Module):
    """SubSpectral Normalization: the frequency axis is split into S sub-bands and every (channel,
    sub-band) pair gets its own BatchNorm statistics and affine parameters.
    (B, C, F, T) -> view (B, C*S, F/S, T) -> BatchNorm2d(C*S) -> view back to (B, C, F, T)."""

    def __init__(self, channels: int, freq: int, subbands: int):
        super().__init__()
        assert freq % subbands == 0, (freq, subbands)
        self.channels, self.freq, self.subbands = channels, freq, subbands
        self.bn = nn.BatchNorm2d(channels * subbands)

    def forward(self, x):                                                     # (B, C, F, T)
        B = x.shape[0]
        y = x.view(B, self.channels * self.subbands, self.freq // self.subbands, -1)  # (B, C*S, F/S, T)
        y = self.bn(y)
        return y.view(B, self.channels, self.freq, -1)                        # (B, C, F, T)


class BCResBlock(nn.Module):
    """One BC-ResBlock. (B, c_in, F, T) -> (B, c_out, F', T), F' = ceil(F / freq_stride).

    f2 (2-D, frequency): [transition only: 1x1 conv + BN + ReLU] -> frequency-depthwise conv 3x1
        (stride freq_stride in frequency) -> SubSpectralNorm
    f1 (1-D, temporal), on the frequency average of f2: temporal-depthwise conv 1x3 with dilation
        -> BN -> SiLU (swish) -> 1x1 conv -> dropout
    y = ReLU( [x +] f2(x) + broadcast_F( f1(avgpool_F(f2(x))) ) ); the identity term only in normal
    blocks (c_in == c_out, no stride); a transition block changes the channel count and drops it."""

    def __init__(self, c_in: int, c_out: int, freq: int, freq_stride: int, dilation: int,
                 dropout: float = 0.1):
        super().__init__()
        self.identity = c_in == c_out and freq_stride == 1
        if c_in != c_out:                                    # transition: channel change first
            self.pre = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU())
        else:
            self.pre = nn.Identity()
        self.freq_dw = nn.Conv2d(c_out, c_out, (3, 1), stride=(freq_stride, 1), padding=(1, 0),
                                 groups=c_out, bias=False)
        self.freq_out = (freq + 2 - 3) // freq_stride + 1
        self.ssn = SubSpectralNorm(c_out, self.freq_out, _subbands(self.freq_out))
        self.freq_pool = nn.AvgPool2d((self.freq_out, 1))   # average over the whole frequency axis
        self.time_dw = nn.Conv2d(c_out, c_out, (1, 3), padding=(0, dilation), dilation=(1, dilation),
                                 groups=c_out, bias=False)
        self.time_bn = nn.BatchNorm2d(c_out)
        self.swish = nn.SiLU()
        self.time_pw = nn.Conv2d(c_out, c_out, 1, bias=False)
        self.drop = nn.Dropout(dropout)
        self.relu = nn.ReLU()

    def forward(self, x):                                   # (B, c_in, F, T)
        y = self.pre(x)                                     # (B, c_out, F, T)
        f2 = self.ssn(self.freq_dw(y))                      # (B, c_out, F', T)
        f1 = self.freq_pool(f2)                             # (B, c_out, 1, T)
        f1 = self.swish(self.time_bn(self.time_dw(f1)))     # (B, c_out, 1, T)
        f1 = self.drop(self.time_pw(f1))                    # (B, c_out, 1, T)
        out = f2 + f1                                       # broadcast over F: (B, c_out, F', T)
        if self.identity:
            out = out + x
        return self.relu(out)


class BCResNet(nn.Module):
    """BC-ResNet-tau (Kim, Chang, Lee, Sung 2021, "Broadcasted Residual Learning for Efficient Keyword
    Spotting", arXiv:2106.04140). Base class; use BCResNet1 (student) or BCResNet3 (teacher).

    Topology as implemented (c = 8 * tau; input (B, 1, T, F) = (B, 1, 49 frames, 10 MFCC)):
      transpose to (B, 1, F, T) (the paper's frequency x time layout)
      head: conv 5x5, stride (2, 1) in frequency, 16c channels, BN, ReLU            -> (B, 16c, F/2, T)
      stage 1: 2 BC-ResBlocks, 8c  (the first a transition 16c -> 8c), dilation 1
      stage 2: 2 BC-ResBlocks, 12c, dilation 2  (frequency stride 2 in the first, see deviations)
      stage 3: 4 BC-ResBlocks, 16c, dilation 4  (frequency stride 2 in the first, see deviations)
      stage 4: 4 BC-ResBlocks, 20c, dilation 8
      classifier: depthwise conv (F_last x 5), no frequency padding (collapses F to 1), 1x1 conv 32c,
        BN, ReLU, global average pooling over time, 1x1 conv to n_classes (bias), flatten.
    Blocks: see BCResBlock (SubSpectralNorm with 5 sub-bands, SiLU in the temporal branch, dropout 0.1).

    Deviations from the paper:
      - input: 10 MFCC coefficients x 49 frames (PQLR's MLPerf Tiny front end) instead of 40 log-mel x 101
        frames; the frequency axis is the 10 coefficients.
      - frequency strides: the paper halves frequency in the first block of stages 2 and 3 (40 -> 20 -> 10
        -> 5). Here a stage halves it only while the result stays >= 5 (the classifier's 5-tap frequency
        kernel): on 40 mel bins that reproduces the paper exactly; on 10 coefficients the head gives 5
        bins and no stage strides, so every stage runs on 5 bins (the paper's stages 3-4 resolution).
      - SubSpectralNorm uses 5 sub-bands when the frequency axis divides by 5 (always true here: F = 5,
        one bin per sub-band, as in the paper's last two stages), else the largest divisor <= 5.
      - the classifier's depthwise kernel is F_last x 5 (= 5 x 5 as in the paper at both 40 and 10 bins).
      - the paper's channel-wise (spatial) dropout is an element-wise nn.Dropout(0.1) (only
        nn.Dropout is in PQLR's op set; identical at inference).
      - frequency averaging is an nn.AvgPool2d((F, 1)) with F fixed by input_shape.
    """

    N_BLOCKS = (2, 2, 4, 4)
    STRIDED_STAGES = (1, 2)                        # 0-based: stages 2 and 3 halve frequency in the paper

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10), tau: float = 1):
        super().__init__()
        c_in, frames, freq = (int(v) for v in input_shape)
        c = lambda m: max(1, int(round(m * 8 * tau)))          # widths in units of c = 8 * tau
        widths = [c(2), c(1), c(1.5), c(2), c(2.5), c(4)]       # 16c, 8c, 12c, 16c, 20c, 32c (tau = 1)
        self.head = nn.Sequential(
            nn.Conv2d(c_in, widths[0], 5, stride=(2, 1), padding=2, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(),
        )
        f = (freq + 4 - 5) // 2 + 1                             # frequency bins after the head
        blocks, prev = [], widths[0]
        for stage, n in enumerate(self.N_BLOCKS):
            for i in range(n):
                stride = 2 if (stage in self.STRIDED_STAGES and i == 0 and (f + 1) // 2 >= 5) else 1
                block = BCResBlock(prev, widths[stage + 1], f, stride, dilation=2 ** stage)
                blocks.append(block)
                f, prev = block.freq_out, widths[stage + 1]
        self.blocks = nn.Sequential(*blocks)
        self.freq_last = f
        self.cls_dw = nn.Conv2d(prev, prev, (f, 5), padding=(0, 2), groups=prev, bias=False)
        self.cls_pw = nn.Conv2d(prev, widths[5], 1, bias=False)
        self.cls_bn = nn.BatchNorm2d(widths[5])
        self.cls_relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Conv2d(widths[5], n_classes, 1)
        self.flatten = nn.Flatten()

    def forward(self, x):                                       # (B, 1, T, F)
        x = x.transpose(2, 3)                                   # (B, 1, F, T)
        x = self.head(x)                                        # (B, 16c, F/2, T)
        x = self.blocks(x)                                      # (B, 20c, F_last, T)
        x = self.cls_dw(x)                                      # (B, 20c, 1, T)
        x = self.cls_relu(self.cls_bn(self.cls_pw(x)))          # (B, 32c, 1, T)
        x = self.pool(x)                                        # (B, 32c, 1, 1)
        return self.flatten(self.fc(x))                         # (B, n_classes)


class BCResNet1(BCResNet):
    """BC-ResNet-1, the student. Paper: Kim, Chang, Lee, Sung 2021, "Broadcasted Residual Learning for
    Efficient Keyword Spotting", arXiv:2106.04140.

    Topology: tau = 1: head conv 5x5 (16 ch, frequency stride 2), BC-ResBlock stages of 2, 2, 4, 4 blocks
    with 8, 12, 16, 20 channels (temporal dilations 1, 2, 4, 8), depthwise 5x5 + 1x1 conv 32, average
    pooling, 1x1 conv classifier (details in BCResNet).
    Deviations: 10 MFCC x 49 frames instead of 40 mel x 101, so no stage strides in frequency (all stages
    on 5 bins); element-wise instead of channel-wise dropout (details in BCResNet).

    At the default input (1, 49, 10), 12 classes: 9,232 parameters (the paper: 9.2 K; the count does
    not depend on the input size), 645,812 MACs (conv/linear multiply-accumulates, counted with forward
    hooks; 2.48 M at the paper's 40 x 101 input, input_shape=(1, 101, 40))."""

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10)):
        super().__init__(n_classes, input_shape, tau=1)


class BCResNet3(BCResNet):
    """BC-ResNet-3, the teacher. Paper: Kim, Chang, Lee, Sung 2021, "Broadcasted Residual Learning for
    Efficient Keyword Spotting", arXiv:2106.04140.

    Topology: tau = 3: head conv 5x5 (48 ch, frequency stride 2), BC-ResBlock stages of 2, 2, 4, 4 blocks
    with 24, 36, 48, 60 channels (temporal dilations 1, 2, 4, 8), depthwise 5x5 + 1x1 conv 96, average
    pooling, 1x1 conv classifier (details in BCResNet).
    Deviations: as BCResNet1 (details in BCResNet).

    At the default input (1, 49, 10), 12 classes: 54,168 parameters (the paper: 54.2 K), 4.10 M MACs
    (conv/linear multiply-accumulates, counted with forward hooks; 14.5 M at input_shape=(1, 101, 40))."""

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10)):
        super().__init__(n_classes, input_shape, tau=3)
