"""The MLPerf Tiny image-classification ResNet-8 (CIFAR-10), in plain PyTorch.

Written from: Colby Banbury et al., "MLPerf Tiny Benchmark", NeurIPS Datasets and Benchmarks 2021,
arXiv:2106.07597 (image classification: ResNet-8 on CIFAR-10, the EEMBC "resnet_v1_eembc" Keras
reference), a reduced ResNet v1 of Kaiming He, Xiangyu Zhang, Shaoqing Ren, Jian Sun, "Deep Residual
Learning for Image Recognition", CVPR 2016, arXiv:1512.03385.

Classes (constructor `Class(n_classes=10, input_shape=(3, 32, 32))`, input (B, 3, H, W)):
  ResNet8      the student, the reference: stacks of 16, 32, 64 filters
  ResNet8Wide  the teacher, the same shape with 2x filters (32, 64, 128)
Imports only torch.
"""
from torch import nn


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple:
    """TensorFlow padding="same" along one axis: (pad_before, pad_after, output_size). TensorFlow puts
    the odd pixel after, so a 3x3 stride-2 conv on an even size pads (0, 1)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


def conv_same(c_in: int, c_out: int, kernel: int, stride: int, hw: tuple):
    """A conv (with bias, as Keras' default) with TensorFlow's "same" padding on an (H, W) input:
    symmetric padding inside the conv, or an explicit nn.ZeroPad2d when TensorFlow pads asymmetrically.
    Returns (module, (H_out, W_out))."""
    top, bottom, h = tf_same_padding(hw[0], kernel, stride)
    left, right, w = tf_same_padding(hw[1], kernel, stride)
    if top == bottom and left == right:
        return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(top, left)), (h, w)
    return nn.Sequential(nn.ZeroPad2d((left, right, top, bottom)),
                         nn.Conv2d(c_in, c_out, kernel, stride=stride)), (h, w)


class ResidualStack(nn.Module):
    """One ResNet v1 stack. (B, c_in, H, W) -> (B, c_out, H/s, W/s).

    y = conv 3x3 (stride s) -> BN -> ReLU -> conv 3x3 -> BN
    shortcut: identity (stack 1) or conv 1x1 stride s, no BN (stacks 2 and 3, as the reference)
    out = ReLU(shortcut + y)"""

    def __init__(self, c_in: int, c_out: int, stride: int, hw: tuple):
        super().__init__()
        self.conv1, hw_out = conv_same(c_in, c_out, 3, stride, hw)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2, _ = conv_same(c_out, c_out, 3, 1, hw_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        if stride != 1 or c_in != c_out:
            self.shortcut, _ = conv_same(c_in, c_out, 1, stride, hw)
        else:
            self.shortcut = nn.Identity()
        self.relu = nn.ReLU()
        self.hw_out = hw_out

    def forward(self, x):                                   # (B, c_in, H, W)
        y = self.relu1(self.bn1(self.conv1(x)))             # (B, c_out, H/s, W/s)
        y = self.bn2(self.conv2(y))                         # (B, c_out, H/s, W/s)
        return self.relu(self.shortcut(x) + y)              # (B, c_out, H/s, W/s)


class ResNet8Base(nn.Module):
    """ResNet-8 of the MLPerf Tiny image-classification benchmark (Banbury et al. 2021, arXiv:2106.07597;
    ResNet v1, He et al. 2016, arXiv:1512.03385). Base class; use ResNet8 (student) or ResNet8Wide
    (teacher).

    Topology as implemented (input (B, 3, 32, 32)):
      conv 3x3 `f` filters, stride 1, "same", BN, ReLU                                 -> (B, f, 32, 32)
      stack 1: f filters, stride 1, identity shortcut                                  -> (B, f, 32, 32)
      stack 2: 2f filters, stride 2, conv 1x1 stride-2 shortcut                        -> (B, 2f, 16, 16)
      stack 3: 4f filters, stride 2, conv 1x1 stride-2 shortcut                        -> (B, 4f, 8, 8)
      average pooling with pool size min(H, W) of the last map (8: global at 32x32)    -> (B, 4f, 1, 1)
      flatten, dense to n_classes (logits; softmax left to the loss).
    All convs have a bias (Keras' default); "same" padding is TensorFlow's, so the stride-2 3x3 convs
    pad (0, 1) through an explicit nn.ZeroPad2d.

    Deviations from the reference: none in the topology. Parameter counts include BatchNorm's weight
    and bias; Keras additionally lists the moving mean and variance as non-trainable parameters.
    """

    def __init__(self, n_classes: int = 10, input_shape: tuple = (3, 32, 32), filters: int = 16):
        super().__init__()
        c_in, height, width = (int(v) for v in input_shape)
        self.stem, hw = conv_same(c_in, filters, 3, 1, (height, width))
        self.stem_bn = nn.BatchNorm2d(filters)
        self.stem_relu = nn.ReLU()
        self.stack1 = ResidualStack(filters, filters, 1, hw)
        self.stack2 = ResidualStack(filters, 2 * filters, 2, self.stack1.hw_out)
        self.stack3 = ResidualStack(2 * filters, 4 * filters, 2, self.stack2.hw_out)
        h, w = self.stack3.hw_out
        pool = min(h, w)
        self.pool = nn.AvgPool2d(pool)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * filters * (h // pool) * (w // pool), n_classes)

    def forward(self, x):                                       # (B, 3, 32, 32)
        x = self.stem_relu(self.stem_bn(self.stem(x)))          # (B, f, 32, 32)
        x = self.stack1(x)                                      # (B, f, 32, 32)
        x = self.stack2(x)                                      # (B, 2f, 16, 16)
        x = self.stack3(x)                                      # (B, 4f, 8, 8)
        x = self.flatten(self.pool(x))                          # (B, 4f)
        return self.fc(x)                                       # (B, n_classes)


class ResNet8(ResNet8Base):
    """The MLPerf Tiny ResNet-8, the student. Papers: Banbury et al. 2021, "MLPerf Tiny Benchmark",
    arXiv:2106.07597 (its Keras reference); He, Zhang, Ren, Sun 2016, "Deep Residual Learning for Image
    Recognition", arXiv:1512.03385.

    Topology: conv 3x3 16 + BN + ReLU; stacks of 16, 32, 64 filters (two 3x3 convs + BN each; stride 2
    and a 1x1 conv shortcut in stacks 2 and 3); average pooling 8x8; flatten; dense (details in
    ResNet8Base).
    Deviations: none from the Keras reference (TensorFlow "same" padding reproduced with ZeroPad2d).

    At the default input (3, 32, 32), 10 classes: 78,186 parameters (77,706 conv/dense weights and
    biases + 480 BatchNorm weights and biases; the reference's ~78 K), 12,501,632 MACs (conv/linear
    multiply-accumulates, counted with forward hooks; the reference's ~12.5 M)."""

    def __init__(self, n_classes: int = 10, input_shape: tuple = (3, 32, 32)):
        super().__init__(n_classes, input_shape, filters=16)


class ResNet8Wide(ResNet8Base):
    """ResNet-8 with 2x filters, the teacher. Papers: Banbury et al. 2021, "MLPerf Tiny Benchmark",
    arXiv:2106.07597; He, Zhang, Ren, Sun 2016, "Deep Residual Learning for Image Recognition",
    arXiv:1512.03385.

    Topology: as ResNet8 with 32, 64, 128 filters.
    Deviations: only the width (2x the reference's).

    At the default input (3, 32, 32), 10 classes: 308,938 parameters, 49.1 M MACs (conv/linear
    multiply-accumulates, counted with forward hooks)."""

    def __init__(self, n_classes: int = 10, input_shape: tuple = (3, 32, 32)):
        super().__init__(n_classes, input_shape, filters=32)
