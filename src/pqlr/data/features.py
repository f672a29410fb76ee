"""KWS audio front end (MLPerf Tiny style): framing, Hann window, power spectrum, HTK mel, log, DCT-II.

The arithmetic is fixed and shared with the fixed-point C front end, which is written from the same
steps and the matrices exported here:
  1. frame t = wave[t*hop : t*hop + win], t = 0..n_frames-1 (no centering, no padding);
  2. times the periodic Hann window w[n] = 0.5 - 0.5 cos(2 pi n / win);
  3. zero-padded to n_fft, power spectrum |rfft|^2 (n_fft//2 + 1 bins);
  4. mel energies = power @ mel_filterbank(cfg).T (HTK mel, triangles of peak 1, no area norm);
  5. logmel = ln(mel + log_floor);
  6. mfcc = logmel @ dct_matrix(cfg).T (orthonormal DCT-II, first n_mfcc rows).
`features_numpy` is the float64 reference; `Frontend` is the same in torch (float32, batched).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import PqlrError


@dataclass(frozen=True)
class FeatureConfig:
    """Front-end settings; the defaults give the MLPerf Tiny KWS input, 49 frames x 10 MFCC."""

    kind: str = "mfcc"           # "mfcc" | "logmel"
    sample_rate: int = 16000     # Hz
    clip_samples: int = 16000    # 1 s window
    win_length: int = 480        # 30 ms
    hop_length: int = 320        # 20 ms
    n_fft: int = 512
    n_mels: int = 40
    n_mfcc: int = 10
    f_min: float = 20.0          # Hz
    f_max: float = 4000.0        # Hz
    log_floor: float = 1e-6

    def __post_init__(self):
        if self.kind not in ("mfcc", "logmel"):
            raise PqlrError(f"feature kind {self.kind!r} unknown (use 'mfcc' or 'logmel')")
        for name in ("sample_rate", "clip_samples", "win_length", "hop_length", "n_fft", "n_mels", "n_mfcc"):
            if int(getattr(self, name)) <= 0:
                raise PqlrError(f"FeatureConfig.{name} must be positive, got {getattr(self, name)}")
        if self.win_length > self.n_fft:
            raise PqlrError(f"win_length {self.win_length} exceeds n_fft {self.n_fft}")
        if self.win_length > self.clip_samples:
            raise PqlrError(f"win_length {self.win_length} exceeds clip_samples {self.clip_samples}")
        if self.n_mfcc > self.n_mels:
            raise PqlrError(f"n_mfcc {self.n_mfcc} exceeds n_mels {self.n_mels}")
        if not (0.0 <= self.f_min < self.f_max <= self.sample_rate / 2):
            raise PqlrError(f"need 0 <= f_min < f_max <= sample_rate/2, got f_min={self.f_min}, "
                            f"f_max={self.f_max}, sample_rate={self.sample_rate}")
        if not self.log_floor > 0:
            raise PqlrError(f"log_floor must be > 0, got {self.log_floor}")

    @property
    def n_frames(self) -> int:
        return 1 + (self.clip_samples - self.win_length) // self.hop_length

    @property
    def n_features(self) -> int:
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_frames, self.n_features)


def hann_window(cfg: FeatureConfig) -> np.ndarray:
    """Periodic Hann window, (win_length,) float64: w[n] = 0.5 - 0.5 cos(2 pi n / win)."""
    n = np.arange(cfg.win_length, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / cfg.win_length)


def hz_to_mel(f):
    """HTK mel scale: 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """(n_mels, n_fft//2 + 1) float64 triangles: n_mels + 2 edges equally spaced in HTK mel between
    f_min and f_max, peak 1.0, no area normalisation, evaluated at bin frequencies k * sr / n_fft."""
    edges = mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2))  # Hz
    freqs = np.arange(cfg.n_bins, dtype=np.float64) * cfg.sample_rate / cfg.n_fft                  # Hz
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lo) / (mid - lo)
    falling = (hi - freqs[None, :]) / (hi - mid)
    return np.maximum(0.0, np.minimum(rising, falling))


def dct_matrix(cfg: FeatureConfig) -> np.ndarray:
    """(n_mfcc, n_mels) float64: the first n_mfcc rows of the orthonormal DCT-II.
    D[k, n] = s_k cos(pi k (2n + 1) / (2 N)), s_0 = sqrt(1/N), s_k = sqrt(2/N)."""
    n_mels = cfg.n_mels
    k = np.arange(cfg.n_mfcc, dtype=np.float64)[:, None]
    n = np.arange(n_mels, dtype=np.float64)[None, :]
    d = np.cos(np.pi * k * (2.0 * n + 1.0) / (2.0 * n_mels)) * math.sqrt(2.0 / n_mels)
    d[0, :] = math.sqrt(1.0 / n_mels)
    return d


def features_numpy(wave: np.ndarray, cfg: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Float64 reference front end: wave (clip_samples,) or (B, clip_samples) in [-1, 1]
    -> (n_frames, n_features) or (B, n_frames, n_features)."""
    x = np.asarray(wave, dtype=np.float64)
    single = x.ndim == 1
    x = x[None] if single else x
    if x.ndim != 2 or x.shape[1] != cfg.clip_samples:
        raise PqlrError(f"front end wants (B, {cfg.clip_samples}) samples, got shape {tuple(np.shape(wave))}")
    starts = np.arange(cfg.n_frames) * cfg.hop_length
    idx = starts[:, None] + np.arange(cfg.win_length)[None, :]           # (T, win)
    frames = x[:, idx] * hann_window(cfg)                                # (B, T, win)
    spec = np.fft.rfft(frames, n=cfg.n_fft, axis=-1)                     # (B, T, n_bins)
    power = spec.real ** 2 + spec.imag ** 2
    mel = power @ mel_filterbank(cfg).T                                  # (B, T, n_mels)
    out = np.log(mel + cfg.log_floor)
    if cfg.kind == "mfcc":
        out = out @ dct_matrix(cfg).T                                    # (B, T, n_mfcc)
    return out[0] if single else out


class Frontend(torch.nn.Module):
    """Torch front end: wave (B, clip_samples) float in [-1, 1] -> (B, 1, n_frames, n_features).

    Same arithmetic as `features_numpy`, in float32; the matrices are buffers (not parameters).
    """

    def __init__(self, cfg: FeatureConfig = FeatureConfig()):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("window", torch.tensor(hann_window(cfg), dtype=torch.float32), persistent=False)
        self.register_buffer("mel", torch.tensor(mel_filterbank(cfg).T, dtype=torch.float32), persistent=False)
        dct = dct_matrix(cfg).T if cfg.kind == "mfcc" else np.eye(cfg.n_mels)
        self.register_buffer("dct", torch.tensor(dct, dtype=torch.float32), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        cfg = self.cfg
        if wave.dim() != 2 or wave.shape[1] != cfg.clip_samples:
            raise PqlrError(f"Frontend wants (B, {cfg.clip_samples}) samples, got {tuple(wave.shape)}")
        frames = wave.float().unfold(1, cfg.win_length, cfg.hop_length)   # (B, T, win)
        frames = frames[:, : cfg.n_frames] * self.window
        spec = torch.fft.rfft(frames, n=cfg.n_fft, dim=-1)                # (B, T, n_bins)
        power = spec.real.square() + spec.imag.square()
        logmel = torch.log(power @ self.mel + cfg.log_floor)              # (B, T, n_mels)
        out = logmel @ self.dct if cfg.kind == "mfcc" else logmel          # (B, T, F)
        return out.unsqueeze(1)                                            # (B, 1, T, F)

    def extra_repr(self) -> str:
        c = self.cfg
        return f"kind={c.kind}, out=(1, {c.n_frames}, {c.n_features}), sr={c.sample_rate}"
