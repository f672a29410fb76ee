"""Training-time waveform augmentation: speed, time shift, gain, and background noise at a random SNR.

All randomness comes from the caller's torch.Generator, so a seeded generator gives identical output.
Noise comes from the recordings in `noise_dir` (e.g. Speech Commands `_background_noise_`) or, without
one, is generated: white, pink (1/f) or brown (1/f^2) Gaussian noise.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import PqlrError
from .audio import read_audio, resample

AUDIO_EXTS = (".wav", ".flac", ".ogg")
NOISE_RMS_FLOOR = 0.01   # signal RMS assumed for (near-)silent clips, so silence still gets noise (-40 dBFS)


@dataclass(frozen=True)
class AugmentConfig:
    time_shift_ms: float = 100.0               # uniform shift in [-t, t]
    noise_prob: float = 0.8                    # chance a clip gets background noise
    snr_db: tuple[float, float] = (5.0, 20.0)  # uniform SNR range, dB
    gain_db: tuple[float, float] = (-6.0, 6.0) # uniform gain range, dB
    speed: tuple[float, float] = (0.9, 1.1)    # uniform speed factor (pitch moves with it)
    noise_dir: str | None = None               # folder of noise recordings; None = generated noise

    def __post_init__(self):
        if self.time_shift_ms < 0:
            raise PqlrError(f"AugmentConfig.time_shift_ms must be >= 0, got {self.time_shift_ms}")
        if not 0.0 <= self.noise_prob <= 1.0:
            raise PqlrError(f"AugmentConfig.noise_prob must be in [0, 1], got {self.noise_prob}")
        for name in ("snr_db", "gain_db", "speed"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
                raise PqlrError(f"AugmentConfig.{name} must be (low, high) with low <= high, got {lo_hi}")
            object.__setattr__(self, name, (float(lo_hi[0]), float(lo_hi[1])))
        if self.speed[0] <= 0:
            raise PqlrError(f"AugmentConfig.speed must be > 0, got {self.speed}")
        if self.noise_dir is not None and not os.path.isdir(self.noise_dir):
            raise PqlrError(f"noise_dir {self.noise_dir}: no such folder")


def load_noise_dir(path: str, sample_rate: int, min_samples: int) -> list[np.ndarray]:
    """All recordings in `path` as float32 at `sample_rate` (resampled if needed), each >= min_samples
    (short ones tiled)."""
    names = sorted(f for f in os.listdir(path) if f.lower().endswith(AUDIO_EXTS))
    if not names:
        raise PqlrError(f"noise_dir {path}: no audio files ({', '.join(AUDIO_EXTS)})")
    out = []
    for name in names:
        x, rate = read_audio(os.path.join(path, name))
        x = resample(x, rate, sample_rate) if rate != sample_rate else x
        if len(x) < min_samples:
            x = np.tile(x, -(-min_samples // len(x)))
        out.append(x.astype(np.float32))
    return out


def colored_noise(shape: tuple[int, int], alpha: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(B, T) unit-RMS Gaussian noise with power spectrum ~ 1/f^alpha (alpha per row: 0 white, 1 pink, 2 brown)."""
    b, t = shape
    white = torch.randn(b, t, generator=generator)
    spec = torch.fft.rfft(white, dim=1)                                   # (B, T//2+1)
    f = torch.arange(spec.shape[1], dtype=torch.float32).clamp(min=1.0)    # bin index, DC treated as bin 1
    spec = spec * f[None, :] ** (-alpha[:, None] / 2.0)
    noise = torch.fft.irfft(spec, n=t, dim=1)
    return noise / noise.square().mean(dim=1, keepdim=True).sqrt().clamp(min=1e-12)


@lru_cache(maxsize=4)
def _generated_bank(sample_rate: int) -> torch.Tensor:
    """(3, 10 s) unit-RMS white, pink and brown noise, made once per rate with a fixed seed."""
    g = torch.Generator().manual_seed(0)
    return colored_noise((3, 10 * sample_rate), torch.tensor([0.0, 1.0, 2.0]), g)


class Augment:
    """Augment(cfg, sample_rate)(wave (B, T) float in [-1, 1], generator) -> (B, T) float, clipped to [-1, 1]."""

    def __init__(self, cfg: AugmentConfig = AugmentConfig(), sample_rate: int = 16000):
        self.cfg = cfg
        self.sample_rate = int(sample_rate)
        if cfg.noise_dir is not None:
            bank = [torch.from_numpy(x) for x in load_noise_dir(cfg.noise_dir, self.sample_rate, self.sample_rate)]
        else:
            bank = list(_generated_bank(self.sample_rate))
        self._bank = torch.cat(bank)                                           # all recordings end to end
        self._starts = torch.tensor([0] + [len(x) for x in bank]).cumsum(0)[:-1]
        self._lengths = torch.tensor([len(x) for x in bank])

    def _uniform(self, b: int, lo_hi: tuple[float, float], g: torch.Generator) -> torch.Tensor:
        lo, hi = lo_hi
        return lo + (hi - lo) * torch.rand(b, generator=g)

    def _noise_batch(self, b: int, t: int, g: torch.Generator) -> torch.Tensor:
        """(B, T) unit-RMS noise: a random T-sample segment of a random bank recording (wrapping around)."""
        which = torch.randint(0, len(self._lengths), (b,), generator=g)
        length = self._lengths[which]
        offset = (torch.rand(b, generator=g) * length).long()
        pos = (offset[:, None] + torch.arange(t)[None, :]) % length[:, None]   # (B, T), wraps short recordings
        seg = self._bank[self._starts[which][:, None] + pos]
        return seg / seg.square().mean(dim=1, keepdim=True).sqrt().clamp(min=1e-6)

    def __call__(self, wave: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if wave.dim() != 2:
            raise PqlrError(f"Augment wants (B, T) waves, got shape {tuple(wave.shape)}")
        cfg, g = self.cfg, generator
        x = wave.float()
        b, t = x.shape
        # speed + shift as one linear-interpolation resampling map (zeros outside the clip):
        # output n reads input c + (n - c - shift) * speed, c = the clip centre
        speed = self._uniform(b, cfg.speed, g)                                            # (B,)
        max_shift = cfg.time_shift_ms * self.sample_rate / 1000.0
        shift = self._uniform(b, (-max_shift, max_shift), g).round()                      # samples
        c = (t - 1) / 2.0
        n = torch.arange(t, dtype=torch.float32)
        src = c + (n[None, :] - c - shift[:, None]) * speed[:, None]                      # (B, T) input index
        i0 = src.floor()
        frac = src - i0
        i0 = i0.long()
        padded = F.pad(x, (1, 2))                                                         # zeros outside
        i0 = i0.clamp(-1, t) + 1                                                          # index into padded
        x = torch.lerp(padded.gather(1, i0), padded.gather(1, i0 + 1), frac)
        # gain
        gain = 10.0 ** (self._uniform(b, cfg.gain_db, g) / 20.0)
        x = x * gain[:, None]
        # noise at a random SNR, on a noise_prob share of the clips
        use = torch.rand(b, generator=g) < cfg.noise_prob
        snr = self._uniform(b, cfg.snr_db, g)
        noise = self._noise_batch(b, t, g)
        rms = x.square().mean(dim=1).sqrt().clamp(min=NOISE_RMS_FLOOR)
        scale = rms * 10.0 ** (-snr / 20.0) * use
        x = x + noise * scale[:, None]
        return x.clamp(-1.0, 1.0)


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """signal + noise scaled so that 10 log10(P_signal / P_noise) = snr_db (float64 math)."""
    ps = max(float(np.mean(np.square(signal, dtype=np.float64))), NOISE_RMS_FLOOR ** 2)
    pn = max(float(np.mean(np.square(noise, dtype=np.float64))), 1e-20)
    return signal + noise * math.sqrt(ps / pn * 10.0 ** (-snr_db / 10.0))
