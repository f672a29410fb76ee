"""Training-time augmentation: on the waveform speed, time shift, a random channel (microphone)
response, gain, and background noise at a random SNR; in the front end VTLP (per-utterance
vocal-tract-length warping of the mel filterbank, Jaitly & Hinton 2013) and SpecAugment masks
(Park et al. 2019) on the log-mel bands and frames.

All randomness comes from the caller's torch.Generator, so a seeded generator gives identical output.
Noise comes from the recordings in `noise_dir` (e.g. Speech Commands `_background_noise_`) or, without
one, is generated: white, pink (1/f) or brown (1/f^2) Gaussian noise. The front-end augmentations only
change training: with them off (the defaults for VTLP and masks) `Augment.features` is `Frontend` exactly.
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
from .features import Frontend, hz_to_mel, mel_to_hz

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
    eq_prob: float = 1.0                       # chance a clip gets a random channel (microphone) response:
    eq_tilt_db: float = 4.0                    #   spectral tilt, uniform in +-this many dB per octave around 1 kHz,
    eq_bands: int = 3                          #   times this many bell curves (Gaussian in log-frequency, 0.3-1 octave),
    eq_band_db: float = 10.0                   #   each of gain uniform in +-this many dB,
    eq_highpass_hz: tuple[float, float] = (20.0, 300.0)  # times a 2nd-order high-pass, cutoff log-uniform here
    vtlp: tuple[float, float] = (1.0, 1.0)     # uniform frequency-warp factor per clip; (1, 1) = off
    freq_masks: int = 0                        # SpecAugment: mel-band masks per clip (before the DCT)
    freq_mask_width: int = 8                   # each 0..width bands wide (uniform)
    time_masks: int = 0                        # SpecAugment: frame masks per clip
    time_mask_width: int = 8                   # each 0..width frames wide (uniform)

    def __post_init__(self):
        if self.time_shift_ms < 0:
            raise PqlrError(f"AugmentConfig.time_shift_ms must be >= 0, got {self.time_shift_ms}")
        if not 0.0 <= self.noise_prob <= 1.0:
            raise PqlrError(f"AugmentConfig.noise_prob must be in [0, 1], got {self.noise_prob}")
        for name in ("snr_db", "gain_db", "speed", "vtlp", "eq_highpass_hz"):
            lo_hi = getattr(self, name)
            if len(lo_hi) != 2 or lo_hi[0] > lo_hi[1]:
                raise PqlrError(f"AugmentConfig.{name} must be (low, high) with low <= high, got {lo_hi}")
            object.__setattr__(self, name, (float(lo_hi[0]), float(lo_hi[1])))
        if self.speed[0] <= 0:
            raise PqlrError(f"AugmentConfig.speed must be > 0, got {self.speed}")
        if not 0.0 <= self.eq_prob <= 1.0:
            raise PqlrError(f"AugmentConfig.eq_prob must be in [0, 1], got {self.eq_prob}")
        if self.eq_tilt_db < 0 or self.eq_band_db < 0:
            raise PqlrError(f"AugmentConfig.eq_tilt_db and eq_band_db must be >= 0, got {self.eq_tilt_db}, "
                            f"{self.eq_band_db}")
        if isinstance(self.eq_bands, bool) or not isinstance(self.eq_bands, int) or self.eq_bands < 0:
            raise PqlrError(f"AugmentConfig.eq_bands must be an integer >= 0, got {self.eq_bands!r}")
        if self.eq_highpass_hz[0] <= 0:
            raise PqlrError(f"AugmentConfig.eq_highpass_hz must be > 0 Hz, got {self.eq_highpass_hz}")
        if not 0.5 <= self.vtlp[0] <= self.vtlp[1] <= 2.0:
            raise PqlrError(f"AugmentConfig.vtlp must lie in [0.5, 2.0], got {self.vtlp}")
        for name in ("freq_masks", "freq_mask_width", "time_masks", "time_mask_width"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise PqlrError(f"AugmentConfig.{name} must be an integer >= 0, got {v!r}")
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


def channel_gain_db(freqs: torch.Tensor, tilt: torch.Tensor, centres: torch.Tensor, widths: torch.Tensor,
                    gains: torch.Tensor, highpass: torch.Tensor) -> torch.Tensor:
    """(B, K) dB response of random channels at freqs (K,) Hz: tilt (B,) dB/octave around 1 kHz,
    bells (B, n) at centres (octaves re 1 kHz) with widths (octaves, std) and gains (dB), and a
    2nd-order Butterworth high-pass at highpass (B,) Hz (|H|^2 = f^4 / (f^4 + fc^4))."""
    octave = torch.log2(freqs.clamp(min=20.0) / 1000.0)[None, :]                         # (1, K)
    db = tilt[:, None] * octave
    bells = gains[:, :, None] * torch.exp(-0.5 * ((octave[:, None, :] - centres[:, :, None]) / widths[:, :, None]) ** 2)
    db = db + bells.sum(dim=1)
    f4, c4 = freqs[None, :] ** 4, highpass[:, None] ** 4
    return db + 10.0 * torch.log10((f4 / (f4 + c4)).clamp(min=1e-10))


def vtlp_warp(freqs: torch.Tensor, alpha: torch.Tensor, boundary_hz: float, nyquist_hz: float) -> torch.Tensor:
    """VTLP frequency warp (Jaitly & Hinton 2013), float64: freqs (K,) Hz, alpha (B,) -> (B, K) Hz.

    f -> alpha f up to boundary_hz * min(alpha, 1) / alpha, then the straight line that maps the
    Nyquist frequency onto itself; alpha = 1 is the identity."""
    a = alpha.double()[:, None]
    f = freqs.double()[None, :]
    knee = boundary_hz * torch.clamp(a, max=1.0) / a                                    # (B, 1) Hz
    upper = nyquist_hz - (nyquist_hz - boundary_hz * torch.clamp(a, max=1.0)) / (nyquist_hz - knee) * (nyquist_hz - f)
    return torch.where(f <= knee, a * f, upper)


def warped_mel_filterbank(cfg, alpha: torch.Tensor) -> torch.Tensor:
    """(B, n_bins, n_mels) float64: `mel_filterbank(cfg).T` evaluated at the VTLP-warped bin
    frequencies of each warp factor in alpha (B,), boundary at cfg.f_max."""
    edges = torch.from_numpy(mel_to_hz(np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2)))
    freqs = torch.arange(cfg.n_bins, dtype=torch.float64) * cfg.sample_rate / cfg.n_fft     # Hz
    f = vtlp_warp(freqs, alpha, cfg.f_max, cfg.sample_rate / 2.0)[:, :, None]              # (B, K, 1)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]                                        # (M,)
    rising = (f - lo) / (mid - lo)
    falling = (hi - f) / (hi - mid)
    return torch.clamp(torch.minimum(rising, falling), min=0.0)


def band_masks(b: int, n: int, count: int, width: int, g: torch.Generator) -> torch.Tensor:
    """(B, n) bool: `count` masks per row, each w ~ U{0..width} consecutive positions at a uniform start."""
    w = torch.randint(0, width + 1, (b, count), generator=g)
    w = torch.clamp(w, max=n)
    start = (torch.rand(b, count, generator=g) * (n - w + 1)).long()                        # 0..n-w
    pos = torch.arange(n)[None, None, :]
    return ((pos >= start[..., None]) & (pos < (start + w)[..., None])).any(dim=1)


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
        if cfg.eq_prob > 0:
            x = self._channel(x, g)
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

    def _channel(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """x (B, T) through a random channel response (on an eq_prob share of the clips), in the FFT domain."""
        cfg, (b, t) = self.cfg, x.shape
        use = torch.rand(b, generator=g) < cfg.eq_prob
        tilt = self._uniform(b, (-cfg.eq_tilt_db, cfg.eq_tilt_db), g)
        n = cfg.eq_bands
        centres = math.log2(100 / 1000) + (math.log2(4000 / 100)) * torch.rand(b, n, generator=g)   # 100 Hz-4 kHz
        widths = 0.3 + 0.7 * torch.rand(b, n, generator=g)
        gains = cfg.eq_band_db * (2.0 * torch.rand(b, n, generator=g) - 1.0)
        lo, hi = (math.log(v) for v in cfg.eq_highpass_hz)
        highpass = torch.exp(self._uniform(b, (lo, hi), g))
        freqs = torch.arange(t // 2 + 1, dtype=torch.float32) * self.sample_rate / t
        db = channel_gain_db(freqs, tilt, centres, widths, gains, highpass) * use[:, None]
        return torch.fft.irfft(torch.fft.rfft(x, dim=1) * 10.0 ** (db / 20.0), n=t, dim=1)

    @property
    def feature_level(self) -> bool:
        """True when VTLP or SpecAugment masks are on (features then need `features`, not a Frontend)."""
        c = self.cfg
        return c.vtlp != (1.0, 1.0) or (c.freq_masks > 0 and c.freq_mask_width > 0) or \
            (c.time_masks > 0 and c.time_mask_width > 0)

    @torch.no_grad()
    def features(self, front: Frontend, wave: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """front(wave) (B, 1, frames, feats) with VTLP warping and SpecAugment masks from the config.

        The same steps as Frontend.forward; masked log-mel values become the clip's mean log-mel.
        With both off this is `front(wave)` and draws nothing from the generator."""
        if not self.feature_level:
            return front(wave)
        cfg, fc, g = self.cfg, front.cfg, generator
        if wave.dim() != 2 or wave.shape[1] != fc.clip_samples:
            raise PqlrError(f"Augment.features wants (B, {fc.clip_samples}) samples, got {tuple(wave.shape)}")
        b = wave.shape[0]
        frames = wave.float().unfold(1, fc.win_length, fc.hop_length)[:, : fc.n_frames] * front.window
        spec = torch.fft.rfft(frames, n=fc.n_fft, dim=-1)                        # (B, T, n_bins)
        power = spec.real.square() + spec.imag.square()
        if cfg.vtlp != (1.0, 1.0):
            alpha = self._uniform(b, cfg.vtlp, g)                                   # (B,)
            mel = power @ warped_mel_filterbank(fc, alpha).float()                  # (B, T, n_mels)
        else:
            mel = power @ front.mel
        logmel = torch.log(mel + fc.log_floor)
        fill = logmel.mean(dim=(1, 2), keepdim=True)                                # (B, 1, 1)
        if cfg.freq_masks and cfg.freq_mask_width:
            m = band_masks(b, fc.n_mels, cfg.freq_masks, cfg.freq_mask_width, g)    # (B, n_mels)
            logmel = torch.where(m[:, None, :], fill, logmel)
        if cfg.time_masks and cfg.time_mask_width:
            m = band_masks(b, fc.n_frames, cfg.time_masks, cfg.time_mask_width, g)  # (B, T)
            logmel = torch.where(m[:, :, None], fill, logmel)
        out = logmel @ front.dct
        return out.unsqueeze(1)


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """signal + noise scaled so that 10 log10(P_signal / P_noise) = snr_db (float64 math)."""
    ps = max(float(np.mean(np.square(signal, dtype=np.float64))), NOISE_RMS_FLOOR ** 2)
    pn = max(float(np.mean(np.square(noise, dtype=np.float64))), 1e-20)
    return signal + noise * math.sqrt(ps / pn * 10.0 ** (-snr_db / 10.0))
