"""Audio basics: reading files, band-limited resampling, fitting clips to a window, the in-memory dataset."""
from __future__ import annotations

import math
import os
from functools import lru_cache

import numpy as np
import torch

from ..errors import PqlrError


def read_audio(path, expect_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file -> (float32 mono samples in [-1, 1], sample rate in Hz).

    PqlrError (naming the file) when it is missing, not audio, empty, or its rate != expect_rate.
    """
    import soundfile as sf

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PqlrError(f"{path}: no such audio file")
    try:
        x, rate = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError/TypeError for non-audio
        raise PqlrError(f"{path}: not a readable audio file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if expect_rate is not None and rate != expect_rate:
        raise PqlrError(f"{path}: sample rate {rate} Hz, expected {expect_rate} Hz")
    if x.shape[0] == 0:
        raise PqlrError(f"{path}: audio file has no samples")
    mono = x.mean(axis=1) if x.shape[1] > 1 else x[:, 0]
    return np.ascontiguousarray(mono, dtype=np.float32), int(rate)


@lru_cache(maxsize=16)
def _polyphase_table(up: int, down: int, zeros: int) -> tuple[np.ndarray, int]:
    """Windowed-sinc filter taps per output phase: (up, taps) float64, and the left half-width.

    Output n sits at input time t = n * down / up. Phase p = (n * down) mod up gives the fractional
    offset frac = p / up; taps k = -half+1..half read x[floor(t) + k] with weight h(frac - k) where
    h(u) = fc sinc(fc u) * Kaiser(u / width) and fc = min(1, up / down) (cutoff, in input Nyquists).
    """
    fc = min(1.0, up / down) * 0.97            # a little below Nyquist: room for the transition band
    half = int(math.ceil(zeros / fc))          # input samples each side
    k = np.arange(-half + 1, half + 1, dtype=np.float64)[None, :]        # (1, taps)
    frac = np.arange(up, dtype=np.float64)[:, None] / up                  # (up, 1)
    u = frac - k                                                          # input-sample distance
    beta = 8.6                                 # Kaiser window shape (about 86 dB stop band)
    w = np.i0(beta * np.sqrt(np.clip(1.0 - (u / (half + 1)) ** 2, 0.0, 1.0))) / np.i0(beta)
    h = fc * np.sinc(fc * u) * w
    return h, half


def resample(x: np.ndarray, src: int, dst: int, zeros: int = 16) -> np.ndarray:
    """Band-limited resampling (windowed-sinc polyphase, numpy only): (N,) at src Hz -> (ceil(N*dst/src),).

    The rational ratio dst/src is reduced to up/down; output n sits at input time n*down/up and is a
    `2*half`-tap dot product with the filter phase (n*down mod up). Float64 inside, float32 out.
    """
    if src <= 0 or dst <= 0:
        raise PqlrError(f"sample rates must be positive, got {src} -> {dst}")
    x = np.asarray(x, dtype=np.float64)
    if src == dst:
        return x.astype(np.float32)
    g = math.gcd(int(src), int(dst))
    up, down = int(dst) // g, int(src) // g
    h, half = _polyphase_table(up, down, zeros)
    n_out = -(-len(x) * up // down)
    xp = np.concatenate([np.zeros(half), x, np.zeros(half + up + 1)])
    rows = np.lib.stride_tricks.sliding_window_view(xp, h.shape[1])   # rows[s] = xp[s : s + taps]
    out = np.empty(n_out, dtype=np.float64)
    # outputs r, r + up, r + 2 up, ... share one phase; their input index steps by `down`
    for r in range(min(up, n_out)):
        phase, base = (r * down) % up, (r * down) // up      # output r reads x[base - half + 1 .. base + half]
        count = len(range(r, n_out, up))
        out[r::up] = rows[base + 1: base + 1 + count * down: down] @ h[phase]
    return out.astype(np.float32)


def fit_clip(x: np.ndarray, n: int) -> np.ndarray:
    """Centre-pad with zeros, or crop to the loudest n-sample window (first one on ties)."""
    x = np.asarray(x)
    if len(x) == n:
        return x.copy()
    if len(x) < n:
        out = np.zeros(n, dtype=x.dtype)
        off = (n - len(x)) // 2
        out[off:off + len(x)] = x
        return out
    energy = np.concatenate([[0.0], np.cumsum(x.astype(np.float64) ** 2)])
    window = energy[n:] - energy[:-n]                       # energy of x[s:s+n], s = 0..len-n
    s = int(np.argmax(window))
    return x[s:s + n].copy()


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float in [-1, 1] -> int16 (round half up, clipped)."""
    return np.clip(np.floor(np.asarray(x, dtype=np.float64) * 32768.0 + 0.5), -32768, 32767).astype(np.int16)


class AudioDataset(torch.utils.data.Dataset):
    """Fixed-length labelled clips kept in memory as int16: item i -> (float32 wave (clip_samples,), label).

    audio: (N, clip_samples) int16; labels/speakers/paths: one entry per clip.
    """

    def __init__(self, audio: np.ndarray, labels, speakers, paths, sample_rate: int = 16000):
        audio = np.asarray(audio)
        if audio.dtype != np.int16 or audio.ndim != 2:
            raise PqlrError(f"AudioDataset wants (N, samples) int16 audio, got {audio.dtype} {audio.shape}")
        n = audio.shape[0]
        if not (len(labels) == len(speakers) == len(paths) == n):
            raise PqlrError(f"AudioDataset: {n} clips but {len(labels)} labels, {len(speakers)} speakers, "
                            f"{len(paths)} paths")
        self.audio = audio
        self.labels = [int(v) for v in labels]
        self.speakers = [str(s) for s in speakers]
        self.paths = [str(p) for p in paths]
        self.sample_rate = int(sample_rate)

    @property
    def clip_samples(self) -> int:
        return self.audio.shape[1]

    def __len__(self) -> int:
        return self.audio.shape[0]

    def __getitem__(self, i):
        wave = torch.from_numpy(self.audio[i].astype(np.float32) / 32768.0)
        return wave, self.labels[i]

    def waves(self) -> torch.Tensor:
        """All clips at once: (N, clip_samples) float32."""
        return torch.from_numpy(self.audio.astype(np.float32) / 32768.0)

    def counts(self, n_classes: int) -> list[int]:
        return np.bincount(np.asarray(self.labels, dtype=np.int64), minlength=n_classes).tolist()

    def subset(self, index) -> "AudioDataset":
        index = np.asarray(index, dtype=np.int64)
        return AudioDataset(self.audio[index], [self.labels[i] for i in index],
                            [self.speakers[i] for i in index], [self.paths[i] for i in index], self.sample_rate)

    def __repr__(self) -> str:
        return f"AudioDataset({len(self)} clips x {self.clip_samples} samples @ {self.sample_rate} Hz)"
