"""DS-CNN keyword-spotting models (Zhang et al. 2017, "Hello Edge"); `ds-cnn-s` is the MLPerf Tiny
KWS reference topology: 49x10 MFCC -> conv 10x4 stride 2 -> 4 x (depthwise 3x3 + pointwise 1x1),
64 channels, BatchNorm + ReLU, average pool, FC. About 22.6 K parameters and 2.66 M MACs.

Channel counts are part of the config, so structured pruning rebuilds a smaller model from a
smaller config (channels are removed for real)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from torch import nn

from ..errors import PqlrError


@dataclass(frozen=True)
class DSCNNConfig:
    n_classes: int = 12
    input_shape: tuple[int, int] = (49, 10)       # (frames, features)
    channels: tuple[int, ...] = (64, 64, 64, 64, 64)  # first conv, then each pointwise conv
    first_kernel: tuple[int, int] = (10, 4)
    first_stride: tuple[int, int] = (2, 2)
    first_padding: tuple[int, int] = (5, 1)       # symmetric; same output size (25x5) as TF "same"
    dropout: float = 0.0

    def __post_init__(self):
        if self.n_classes < 2:
            raise PqlrError(f"n_classes must be >= 2, got {self.n_classes}")
        if len(self.channels) < 2 or min(self.channels) < 1:
            raise PqlrError(f"channels must list >= 2 positive counts, got {self.channels}")
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        for f in ("first_kernel", "first_stride", "first_padding"):
            object.__setattr__(self, f, tuple(getattr(self, f)))

    def to_dict(self) -> dict:
        return {"arch": "ds_cnn", **asdict(self)}


class DSBlock(nn.Module):
    """Depthwise 3x3 (+BN+ReLU) then pointwise 1x1 (+BN+ReLU). (B, c_in, H, W) -> (B, c_out, H, W)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.dw = nn.Conv2d(c_in, c_in, 3, padding=1, groups=c_in, bias=False)
        self.dw_bn = nn.BatchNorm2d(c_in)
        self.dw_relu = nn.ReLU()
        self.pw = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.pw_bn = nn.BatchNorm2d(c_out)
        self.pw_relu = nn.ReLU()

    def forward(self, x):
        x = self.dw_relu(self.dw_bn(self.dw(x)))
        return self.pw_relu(self.pw_bn(self.pw(x)))


class DSCNN(nn.Module):
    def __init__(self, cfg: DSCNNConfig):
        super().__init__()
        self.config = cfg
        c = cfg.channels
        self.conv = nn.Conv2d(1, c[0], cfg.first_kernel, stride=cfg.first_stride,
                              padding=cfg.first_padding, bias=False)
        self.bn = nn.BatchNorm2d(c[0])
        self.relu = nn.ReLU()
        self.blocks = nn.Sequential(*[DSBlock(c[i], c[i + 1]) for i in range(len(c) - 1)])
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc = nn.Linear(c[-1], cfg.n_classes)

    def forward(self, x):                      # (B, 1, 49, 10) features
        x = self.relu(self.bn(self.conv(x)))   # (B, C, 25, 5)
        x = self.blocks(x)
        x = self.flatten(self.pool(x))         # (B, C)
        return self.fc(self.dropout(x))        # (B, n_classes) logits


PRESETS = {
    "ds-cnn-s": dict(channels=(64,) * 5),                       # MLPerf Tiny reference
    "ds-cnn-m": dict(channels=(172,) * 5),                      # Hello Edge DS-CNN-M
    "ds-cnn-l": dict(channels=(276,) * 6, dropout=0.1),         # Hello Edge DS-CNN-L (5 DS layers)
}


def build(name: str, n_classes: int, input_shape=(49, 10), **overrides) -> DSCNN:
    cfg = DSCNNConfig(n_classes=n_classes, input_shape=tuple(input_shape), **{**PRESETS[name], **overrides})
    return DSCNN(cfg)

