"""An anomaly-detection set from real recordings, offline, for `--dataset npz:FILE --task anomaly`.

What it is (every number below is the default):
  Sources, all real recordings in ../shared/data (never copied into the project):
    normal    background_noise/running_tap.wav and exercise_bike.wav (16 kHz, about 61 s each): two
              steady machine-like sounds
    speech    fsdd/recordings: Free Spoken Digit Dataset, digits spoken by 6 people (8 kHz, resampled
              to 16 kHz with pqlr.data.resample); 2 speakers (seeded choice) for val, the other 4 for test
    other     background_noise/doing_the_dishes.wav and dude_miaowing.wav (dishes, a person miaowing)
  Features, the MLPerf Tiny anomaly-detection front end (DCASE 2020 task 2 baseline layout) computed
  with PQLR's own log-mel (pqlr.data.Frontend, FeatureConfig(kind="logmel")): 16 kHz, 64 ms frames
  (1024 samples, periodic Hann, 1024-point FFT), 32 ms hop (512), power spectrum, 128 HTK mel bands
  0-8000 Hz, natural log of (mel power + 1e-6); no normalisation. One sample = 5 consecutive frames
  flattened frame-major: x[i] = [frame t (128 bins), frame t+1, ..., frame t+4], 640 float32 values.
  Splits are disjoint in time: each normal recording gives its first 70% to train, the next 10% to
  val and the last 20% to test; the "other" recordings give their first third to val, the rest to test.
    x, y            train: every 5-frame window (stride 1) of the normal train portions; all label 0
    x_val, y_val    normal windows (stride 2) of the val portions (label 0), and anomalous windows
                    (label 1) of the val portions
    x_test, y_test  the same from the test portions
  An anomalous window: a random 1 s segment of a normal recording's val/test portion with a foreign
  sound added at an SNR drawn uniformly from -12..-3 dB (power of the foreign sound over its own
  length vs power of the 1 s machine segment); 2/3 of them an FSDD digit (the recording fitted into
  1 s with pqlr.data.fit_clip), 1/3 the loudest of 8 random 1 s segments of dishes or miaowing; the
  window kept is the 5 frames where the added sound has the most energy. The SNR keeps the sounds
  audible but under the machine, so the set is not trivially separable: a standardising
  640-128-8-128-640 autoencoder (5 epochs) reaches ROC AUC 1.00 at 0..6 dB, about 0.96 at -12..-3 dB
  and 0.86 at -18..-6 dB; the distance to the mean training window gets 0.54 at -12..-3 dB.
  Also stored: classes ["normal", "anomalous"], task "anomaly", source_val / source_test (str per
  sample: "running_tap", "exercise_bike+speech", "running_tap+dishes", ...).

Use: python examples/data/make_anomaly.py --out /tmp/machine_ad.npz
     pqlr train --model my_ae.py:AE --dataset npz:/tmp/machine_ad.npz --task anomaly ...
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

SR, WIN, HOP, N_MELS, FRAMES = 16000, 1024, 512, 128, 5
NORMAL = ("running_tap", "exercise_bike")
OTHER = ("doing_the_dishes", "dude_miaowing")
OTHER_NAME = {"doing_the_dishes": "dishes", "dude_miaowing": "miaowing"}
PORTIONS = {"train": (0.0, 0.7), "val": (0.7, 0.8), "test": (0.8, 1.0)}       # of each normal recording
OTHER_PORTIONS = {"val": (0.0, 1 / 3), "test": (1 / 3, 1.0)}
N_ANOMALOUS = {"val": 90, "test": 240}
DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def feature_config(samples: int):
    from pqlr.data import FeatureConfig
    return FeatureConfig(kind="logmel", sample_rate=SR, clip_samples=samples, win_length=WIN, hop_length=HOP,
                         n_fft=WIN, n_mels=N_MELS, f_min=0.0, f_max=SR / 2)


@torch.no_grad()
def logmel(waves: np.ndarray) -> np.ndarray:
    """(B, samples) float32 in [-1, 1] -> (B, frames, 128) natural-log mel power."""
    from pqlr.data import Frontend
    return Frontend(feature_config(waves.shape[1]))(torch.from_numpy(np.ascontiguousarray(waves)))[:, 0].numpy()


def windows(frames: np.ndarray, stride: int = 1) -> np.ndarray:
    """(T, 128) -> (W, 640): 5 consecutive frames, frame-major, every `stride` frames."""
    t = frames.shape[0] - FRAMES + 1
    return np.concatenate([frames[k:k + t] for k in range(FRAMES)], axis=1)[::stride]


def frame_energy(wave: np.ndarray) -> np.ndarray:
    """(samples,) -> (frames,) energy of each analysis frame (same framing as the front end)."""
    n = 1 + (len(wave) - WIN) // HOP
    e = np.concatenate([[0.0], np.cumsum(wave.astype(np.float64) ** 2)])
    starts = np.arange(n) * HOP
    return e[starts + WIN] - e[starts]


def portion(x: np.ndarray, lo_hi: tuple[float, float]) -> np.ndarray:
    return x[int(lo_hi[0] * len(x)):int(lo_hi[1] * len(x))]


def read(path: Path, rate: int) -> np.ndarray:
    from pqlr.data import read_audio, resample
    x, r = read_audio(path, expect_rate=rate)
    return x if r == SR else resample(x, r, SR)


def fsdd_speakers(root: Path, seed: int) -> dict[str, list[Path]]:
    """-> {"val": files of 2 speakers, "test": files of the other 4} (seeded choice of speakers)."""
    files = sorted(root.glob("*.wav"))
    if not files:
        raise SystemExit(f"make_anomaly: no FSDD recordings in {root}")
    speakers = sorted({f.name.split("_")[1] for f in files})
    order = [speakers[i] for i in np.random.default_rng([seed, 1]).permutation(len(speakers))]
    val = set(order[:2])
    return {"val": [f for f in files if f.name.split("_")[1] in val],
            "test": [f for f in files if f.name.split("_")[1] not in val]}


def anomalous(split: str, normal: dict, other: dict, speech: list[Path], n: int, snr: tuple[float, float],
              rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """n anomalous 640-value windows of `split` -> (x (n, 640) float32, source names)."""
    from pqlr.data import fit_clip
    mixes, added, sources = [], [], []
    for i in range(n):
        name = NORMAL[i % len(NORMAL)]
        base = portion(normal[name], PORTIONS[split])
        s = int(rng.integers(0, len(base) - SR + 1))
        seg = base[s:s + SR].astype(np.float64)
        if i % 3 < 2:                                            # a spoken digit
            f = speech[int(rng.integers(len(speech)))]
            raw = read(f, 8000).astype(np.float64)
            p_fg = float(np.mean(raw ** 2))
            fg = fit_clip(raw, SR)
            kind = "speech"
        else:                                                    # dishes or miaowing
            oname = OTHER[(i // 3) % len(OTHER)]
            src = portion(other[oname], OTHER_PORTIONS[split])
            cands = [int(rng.integers(0, len(src) - SR + 1)) for _ in range(8)]
            o = max(cands, key=lambda c: float(np.sum(src[c:c + SR].astype(np.float64) ** 2)))
            fg = src[o:o + SR].astype(np.float64)
            p_fg = float(np.mean(fg ** 2))
            kind = OTHER_NAME[oname]
        gain = np.sqrt(np.mean(seg ** 2) / max(p_fg, 1e-12) * 10.0 ** (rng.uniform(*snr) / 10.0))
        mixes.append(np.clip(seg + gain * fg, -1.0, 1.0).astype(np.float32))
        added.append(gain * fg)
        sources.append(f"{name}+{kind}")
    feats = logmel(np.stack(mixes))                               # (n, frames, 128)
    out = np.empty((n, FRAMES * N_MELS), dtype=np.float32)
    for i in range(n):
        e = np.convolve(frame_energy(added[i]), np.ones(FRAMES), mode="valid")   # energy of each 5-frame window
        out[i] = windows(feats[i])[int(np.argmax(e))]
    return out, sources


def make(out: str, data_dir: str | Path = DEFAULT_DATA, seed: int = 0,
         snr: tuple[float, float] = (-12.0, -3.0)) -> str:
    """Write the set to `out` (.npz); -> its path."""
    data_dir = Path(data_dir)
    noise_dir, fsdd_dir = data_dir / "background_noise", data_dir / "fsdd" / "recordings"
    for need in (noise_dir, fsdd_dir):
        if not need.is_dir():
            raise SystemExit(f"make_anomaly: {need} missing (see ../shared/data/README.md; --data DIR)")
    rng = np.random.default_rng(seed)
    normal = {n: read(noise_dir / f"{n}.wav", SR) for n in NORMAL}
    other = {n: read(noise_dir / f"{n}.wav", SR) for n in OTHER}
    speech = fsdd_speakers(fsdd_dir, seed)
    arrays, sources = {}, {}
    for split in ("train", "val", "test"):
        xs, src = [], []
        for name in NORMAL:
            w = windows(logmel(portion(normal[name], PORTIONS[split])[None])[0], 1 if split == "train" else 2)
            xs.append(w)
            src += [name] * len(w)
        if split != "train":
            xa, sa = anomalous(split, normal, other, speech[split], N_ANOMALOUS[split], snr, rng)
            xs.append(xa)
            src += sa
        x = np.concatenate(xs).astype(np.float32)
        y = np.array([0 if "+" not in s else 1 for s in src], dtype=np.int64)
        arrays[split], sources[split] = (x, y), np.array(src)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    np.savez_compressed(out, x=arrays["train"][0], y=arrays["train"][1],
                        x_val=arrays["val"][0], y_val=arrays["val"][1],
                        x_test=arrays["test"][0], y_test=arrays["test"][1],
                        classes=np.array(["normal", "anomalous"]), task=np.array("anomaly"),
                        source_val=sources["val"], source_test=sources["test"])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, metavar="FILE", help="the .npz to write")
    p.add_argument("--data", default=str(DEFAULT_DATA), metavar="DIR",
                   help="the shared real data (default ../shared/data)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--snr", default="-12,-3", metavar="LO,HI",
                   help="SNR range of the added sounds in dB (default -12,-3; write it as --snr=-12,-3)")
    a = p.parse_args(argv)
    lo, hi = (float(v) for v in a.snr.split(","))
    path = make(a.out, a.data, a.seed, (lo, hi))
    with np.load(path, allow_pickle=False) as z:
        sizes = ", ".join(f"{k} {z[k].shape}" for k in ("x", "x_val", "x_test"))
        print(f"wrote {path}: {sizes}; anomalous val {int(z['y_val'].sum())}, test {int(z['y_test'].sum())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
