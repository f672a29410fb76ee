"""A keyword-spotting transformer over MFCC frames (tokens = frames, or groups of `patch` frames).

Built only from ops the integer lowering knows: Linear, a learned positional add, LayerNorm,
Q.K^T / A.V matmuls, softmax, GELU, residual adds, mean-pool or a class token. Head counts and
FFN widths are per layer in the config, so structured pruning of heads and FFN neurons rebuilds
a smaller model from a smaller config."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from ..errors import PqlrError


@dataclass(frozen=True)
class TransformerConfig:
    n_classes: int = 12
    input_shape: tuple[int, int] = (49, 10)   # (frames, features)
    patch: int = 1                           # frames per token (the remainder frames are dropped)
    d_model: int = 144
    head_dim: int = 36
    heads: tuple[int, ...] = (4, 4)          # per layer
    ffn: tuple[int, ...] = (576, 576)        # per layer
    norm_first: bool = True                  # pre-LN (True) or post-LN blocks
    pool: str = "mean"                       # "mean" over tokens or "cls" token
    dropout: float = 0.1

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(self.input_shape))
        object.__setattr__(self, "heads", tuple(int(h) for h in self.heads))
        object.__setattr__(self, "ffn", tuple(int(f) for f in self.ffn))
        if len(self.heads) != len(self.ffn) or not self.heads:
            raise PqlrError(f"heads {self.heads} and ffn {self.ffn} must list one entry per layer")
        if min(self.heads) < 1 or min(self.ffn) < 1 or self.d_model < 1 or self.head_dim < 1:
            raise PqlrError("transformer sizes must be positive")
        if self.pool not in ("mean", "cls"):
            raise PqlrError(f"pool must be 'mean' or 'cls', got {self.pool!r}")
        if not 1 <= self.patch <= self.input_shape[0]:
            raise PqlrError(f"patch {self.patch} does not fit {self.input_shape[0]} frames")

    @property
    def layers(self) -> int:
        return len(self.heads)

    @property
    def tokens(self) -> int:
        return self.input_shape[0] // self.patch + (1 if self.pool == "cls" else 0)

    def to_dict(self) -> dict:
        return {"arch": "transformer", **asdict(self)}


class SelfAttention(nn.Module):
    """Multi-head self-attention from plain Linear/matmul/softmax. (B, T, D) -> (B, T, D)."""

    def __init__(self, d_model: int, heads: int, head_dim: int, dropout: float):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.q = nn.Linear(d_model, inner)
        self.k = nn.Linear(d_model, inner)
        self.v = nn.Linear(d_model, inner)
        self.o = nn.Linear(inner, d_model)
        self.softmax = nn.Softmax(dim=-1)
        self.drop = nn.Dropout(dropout)
        self.scale = 1.0 / math.sqrt(head_dim)

    def forward(self, x):
        B, T, _ = x.shape
        q = self.q(x).view(B, T, self.heads, self.head_dim).transpose(1, 2)   # (B, H, T, Dh)
        k = self.k(x).view(B, T, self.heads, self.head_dim).transpose(1, 2)
        v = self.v(x).view(B, T, self.heads, self.head_dim).transpose(1, 2)
        att = self.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale)  # (B, H, T, T)
        y = torch.matmul(self.drop(att), v)                                    # (B, H, T, Dh)
        y = y.transpose(1, 2).reshape(B, T, self.heads * self.head_dim)
        return self.o(y)


class FeedForward(nn.Module):
    def __init__(self, d_model: int, hidden: int, dropout: float):
        super().__init__()
        self.fc1 = nn.Linear(d_model, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):                      # (B, T, D) -> (B, T, D)
        return self.drop(self.fc2(self.act(self.fc1(x))))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig, i: int):
        super().__init__()
        self.norm_first = cfg.norm_first
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = SelfAttention(cfg.d_model, cfg.heads[i], cfg.head_dim, cfg.dropout)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.ffn = FeedForward(cfg.d_model, cfg.ffn[i], cfg.dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x):
        if self.norm_first:
            x = x + self.drop(self.attn(self.ln1(x)))
            return x + self.ffn(self.ln2(x))
        x = self.ln1(x + self.drop(self.attn(x)))
        return self.ln2(x + self.ffn(x))


class KWSTransformer(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.config = cfg
        frames, feats = cfg.input_shape
        self.n_patches = frames // cfg.patch
        self.embed = nn.Linear(feats * cfg.patch, cfg.d_model)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.d_model)) if cfg.pool == "cls" else None
        self.pos = nn.Parameter(torch.randn(1, cfg.tokens, cfg.d_model) * 0.02)
        self.blocks = nn.ModuleList([Block(cfg, i) for i in range(cfg.layers)])
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.n_classes)

    def forward(self, x):                                  # (B, 1, frames, feats)
        B = x.shape[0]
        p = self.config.patch
        x = x[:, 0, : self.n_patches * p, :].reshape(B, self.n_patches, -1)  # (B, T, p*feats)
        x = self.embed(x)                                  # (B, T, D)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(B, -1, -1), x], dim=1)
        x = x + self.pos
        for blk in self.blocks:
            x = blk(x)
        x = self.ln_f(x)
        x = x[:, 0] if self.cls is not None else x.mean(dim=1)  # (B, D)
        return self.head(x)                                # (B, n_classes)


PRESETS = {
    # the article's student "MicroBERT-2L" (~0.5 M parameters, ~26 M MACs over 49 tokens)
    "microbert-2l": dict(d_model=144, head_dim=36, heads=(4, 4), ffn=(576, 576)),
    # sized for <= ~5 M MACs per inference (2 frames per token): can meet 160 ms on a 160 MHz RV32IMAC
    "microbert-fast": dict(patch=2, d_model=64, head_dim=16, heads=(4, 4), ffn=(128, 128)),
    # the teacher: 6 layers; width 128 (1.2 M parameters, not the article's 26 M) so it trains in minutes on a CPU
    "tinybert-6l": dict(d_model=128, head_dim=32, heads=(4,) * 6, ffn=(512,) * 6),
}


def build(name: str, n_classes: int, input_shape=(49, 10), **overrides) -> KWSTransformer:
    cfg = TransformerConfig(n_classes=n_classes, input_shape=tuple(input_shape), **{**PRESETS[name], **overrides})
    return KWSTransformer(cfg)
