"""The "Hello Edge" keyword-spotting CNN with frequency max pooling, in plain PyTorch.

Written from the papers: Yundong Zhang, Naveen Suda, Liangzhen Lai, Vikas Chandra, "Hello Edge: Keyword
Spotting on Microcontrollers", 2017, arXiv:1711.07128 (its CNN-S / CNN-L sizes), and the CNN baseline
it evaluates, cnn-trad-fpool3 from Tara N. Sainath, Carolina Parada, "Convolutional Neural Networks for
Small-footprint Keyword Spotting", Interspeech 2015 (two convolutions, max pooling in frequency, a
low-rank linear layer, a dense layer, softmax).

Classes (constructor `Class(n_classes=12, input_shape=(1, 49, 10))`, input (B, 1, frames, coefficients)):
  HelloEdgeCNN   the student, Hello Edge CNN-S sizes (28 and 30 filters, linear 16, dense 128)
  HelloEdgeCNNL  the teacher, Hello Edge CNN-L sizes (60 and 76 filters, linear 58, dense 128)
Imports only torch.
"""
from torch import nn


class HelloEdgeCNNBase(nn.Module):
    """CNN for keyword spotting (Zhang et al. 2017, "Hello Edge: Keyword Spotting on Microcontrollers",
    arXiv:1711.07128; structure of cnn-trad-fpool3, Sainath & Parada 2015). Base class; use
    HelloEdgeCNN (student) or HelloEdgeCNNL (teacher).

    Topology as implemented (input (B, 1, T, F) = (B, 1, 49 frames, 10 MFCC); kernels are time x freq):
      zero padding 1 | 2 in frequency ("same" in frequency, valid in time, TensorFlow's split)
      conv1: filters1 x (10 x 4), stride 1, BN, ReLU                          -> (B, f1, 40, 10)
      max pooling 1 x 2 (frequency only; time is kept)                        -> (B, f1, 40, 5)
      conv2: filters2 x (10 x 4), stride 2 in time (Hello Edge's), valid, BN, ReLU  -> (B, f2, 16, 2)
      flatten, dropout, low-rank linear layer (no activation), dense 128 + ReLU, dropout,
      classifier to n_classes (logits; softmax left to the loss).

    Deviations from the papers:
      - Hello Edge's CNN replaces pooling with a time stride; cnn-trad-fpool3 pools 3 in frequency on
        40 filterbank channels. On 10 MFCC coefficients this model pools 2 in frequency after a
        frequency-"same" first conv (so no coefficient is dropped) and keeps Hello Edge's time stride 2
        in conv2.
      - BatchNorm after each convolution (neither paper lists it; it can be folded into the conv for
        deployment).
      - dropout p = 0.2 (a training-only choice).
    """

    KERNEL = (10, 4)                           # (time, frequency)

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10), filters: tuple = (28, 30),
                 linear: int = 16, dense: int = 128, dropout: float = 0.2):
        super().__init__()
        c_in, frames, freq = (int(v) for v in input_shape)
        kt, kf = self.KERNEL
        left = (kf - 1) // 2
        self.pad = nn.ZeroPad2d((left, kf - 1 - left, 0, 0))     # "same" in frequency only
        self.conv1 = nn.Conv2d(c_in, filters[0], (kt, kf))
        self.bn1 = nn.BatchNorm2d(filters[0])
        self.relu1 = nn.ReLU()
        self.pool = nn.MaxPool2d((1, 2))                          # frequency pooling
        t1, f1 = frames - kt + 1, freq // 2
        self.conv2 = nn.Conv2d(filters[0], filters[1], (kt, kf), stride=(2, 1))
        self.bn2 = nn.BatchNorm2d(filters[1])
        self.relu2 = nn.ReLU()
        t2, f2 = (t1 - kt) // 2 + 1, f1 - kf + 1
        if t2 < 1 or f2 < 1:
            raise ValueError(f"input_shape {tuple(input_shape)} is too small for two {kt}x{kf} convolutions")
        self.flatten = nn.Flatten()
        self.drop1 = nn.Dropout(dropout)
        self.linear = nn.Linear(filters[1] * t2 * f2, linear)     # low-rank linear layer, no activation
        self.dense = nn.Linear(linear, dense)
        self.relu3 = nn.ReLU()
        self.drop2 = nn.Dropout(dropout)
        self.fc = nn.Linear(dense, n_classes)

    def forward(self, x):                                       # (B, 1, T, F)
        x = self.relu1(self.bn1(self.conv1(self.pad(x))))       # (B, f1, T-9, F)
        x = self.pool(x)                                        # (B, f1, T-9, F/2)
        x = self.relu2(self.bn2(self.conv2(x)))                 # (B, f2, T2, F/2-3)
        x = self.linear(self.drop1(self.flatten(x)))            # (B, linear)
        x = self.drop2(self.relu3(self.dense(x)))               # (B, dense)
        return self.fc(x)                                       # (B, n_classes)


class HelloEdgeCNN(HelloEdgeCNNBase):
    """Hello Edge CNN (CNN-S sizes), the student. Papers: Zhang, Suda, Lai, Chandra 2017, "Hello Edge:
    Keyword Spotting on Microcontrollers", arXiv:1711.07128; cnn-trad-fpool3 of Sainath & Parada 2015,
    "Convolutional Neural Networks for Small-footprint Keyword Spotting" (Interspeech, no arXiv id).

    Topology: conv 28 x (10x4) ("same" in frequency) + BN + ReLU, max pool 1x2 in frequency, conv
    30 x (10x4) stride 2 in time + BN + ReLU, low-rank linear 16, dense 128 + ReLU, classifier.
    Deviations: pool 2 (not 3) in frequency on 10 MFCC, BatchNorm added, Hello Edge's time stride kept
    (details in HelloEdgeCNNBase).

    At the default input (1, 49, 10), 12 classes: 53,994 parameters (Hello Edge's CNN-S, valid convs and
    no pooling, counted the same way at this input: 69,238), 1,542,144 MACs (conv/linear
    multiply-accumulates, counted with forward hooks): inside Hello Edge's small-model budget (about
    80 KB of memory, 6 M operations per inference)."""

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10)):
        super().__init__(n_classes, input_shape, filters=(28, 30), linear=16, dense=128)


class HelloEdgeCNNL(HelloEdgeCNNBase):
    """Hello Edge CNN (CNN-L sizes), the teacher. Papers: Zhang, Suda, Lai, Chandra 2017, "Hello Edge:
    Keyword Spotting on Microcontrollers", arXiv:1711.07128; cnn-trad-fpool3 of Sainath & Parada 2015.

    Topology: conv 60 x (10x4) + BN + ReLU, max pool 1x2 in frequency, conv 76 x (10x4) stride 2 in
    time + BN + ReLU, low-rank linear 58, dense 128 + ReLU, classifier.
    Deviations: as HelloEdgeCNN (details in HelloEdgeCNNBase).

    At the default input (1, 49, 10), 12 classes: 335,422 parameters, 6.95 M MACs (conv/linear
    multiply-accumulates, counted with forward hooks)."""

    def __init__(self, n_classes: int = 12, input_shape: tuple = (1, 49, 10)):
        super().__init__(n_classes, input_shape, filters=(60, 76), linear=58, dense=128)
