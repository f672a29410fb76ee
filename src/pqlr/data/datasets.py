"""Keyword-spotting datasets: `load_dataset(spec)` for Speech Commands folders, FSDD and the synthetic sets.

Specs: `speech_commands:PATH` (alias `folder:PATH`), `fsdd:PATH`, `kws_english[:N]`, `kws_chinese[:N]`
(N = clips per class). Every loader returns a KwsData whose three AudioDatasets hold 1 s int16 clips at
16 kHz; `info` says how the splits were made. `npz:PATH` and `images:PATH` give a TensorData instead
(pqlr.data.tensors: arrays / image folders, no audio front end).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ..errors import PqlrError
from .audio import AudioDataset, fit_clip, read_audio, resample, to_int16
from .augment import colored_noise, load_noise_dir
from .features import FeatureConfig

SAMPLE_RATE = 16000
CLIP = 16000
SILENCE, UNKNOWN = "_silence_", "_unknown_"
NOISE_FOLDER = "_background_noise_"


@dataclass
class KwsData:
    name: str                    # "fsdd", "speech_commands", "kws_chinese", ...
    classes: list[str]           # label i -> classes[i]
    train: AudioDataset
    val: AudioDataset
    test: AudioDataset
    info: dict = field(default_factory=dict)   # counts/speakers per split, source, notes

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(1, frames, features) of the default front end, FeatureConfig() (clips go through it)."""
        return (1, *FeatureConfig().shape)

    @property
    def task(self) -> str:
        return "classify"

    def summary(self) -> str:
        lines = [f"{self.name}: {self.n_classes} classes, "
                 + ", ".join(f"{s} {len(getattr(self, s))}" for s in ("train", "val", "test"))]
        lines.append("classes: " + " ".join(self.classes))
        for note in self.info.get("notes", []):
            lines.append(f"note: {note}")
        return "\n".join(lines)


def _split_info(data: KwsData) -> None:
    """Fill counts and speakers per split into data.info."""
    for split in ("train", "val", "test"):
        ds = getattr(data, split)
        data.info.setdefault("counts", {})[split] = ds.counts(len(data.classes))
        data.info.setdefault("speakers", {})[split] = sorted(set(ds.speakers))
        data.info.setdefault("sizes", {})[split] = len(ds)


def _speaker_split(speakers: list[str], seed: int, frac_val: float = 0.1, frac_test: float = 0.1):
    """Deterministic speaker-disjoint split: seeded shuffle of the sorted speakers -> (train, val, test) sets."""
    names = sorted(set(speakers))
    if len(names) < 3:
        raise PqlrError(f"need >= 3 speakers for a speaker-disjoint split, have {len(names)}: {names} "
                        f"(add validation_list.txt / testing_list.txt, or more speakers)")
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    n_test = max(1, round(frac_test * len(names)))
    n_val = max(1, round(frac_val * len(names)))
    return set(order[n_test + n_val:]), set(order[n_test:n_test + n_val]), set(order[:n_test])


def _load_clips(paths, rate: int | None, progress: bool, desc: str) -> np.ndarray:
    """Read files -> (N, CLIP) int16 at 16 kHz; `rate` is the rate every file must have."""
    out = np.zeros((len(paths), CLIP), dtype=np.int16)
    for i, p in enumerate(tqdm(paths, desc=desc, disable=not progress, unit="file")):
        x, r = read_audio(p, expect_rate=rate)
        if r != SAMPLE_RATE:
            x = resample(x, r, SAMPLE_RATE)
        out[i] = to_int16(fit_clip(x, CLIP))
    return out


# ---------------------------------------------------------------- Speech Commands layout

def _read_list(root: str, name: str) -> set[str]:
    p = os.path.join(root, name)
    if not os.path.isfile(p):
        return set()
    with open(p, encoding="utf-8") as f:
        return {line.strip().replace("\\", "/") for line in f if line.strip()}


def _silence_clips(noise: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """n silence clips: random 1 s windows of noise recordings at -45..-10 dB of their peak, as int16."""
    out = np.zeros((n, CLIP), dtype=np.int16)
    for i in range(n):
        rec = noise[int(rng.integers(len(noise)))]
        s = int(rng.integers(0, len(rec) - CLIP + 1))
        seg = rec[s:s + CLIP].astype(np.float64)
        seg = seg / max(np.abs(seg).max(), 1e-9) * 10.0 ** (rng.uniform(-45.0, -10.0) / 20.0)
        out[i] = to_int16(seg)
    return out


def _generated_noise(seed: int) -> list[np.ndarray]:
    """Stand-in noise recordings (white, pink, brown; 10 s each) when a folder has no `_background_noise_`."""
    import torch

    g = torch.Generator().manual_seed(seed)
    noise = colored_noise((3, 10 * CLIP), torch.tensor([0.0, 1.0, 2.0]), g).numpy()
    return [row / np.abs(row).max() for row in noise]


def load_speech_commands(root: str, *, words=None, seed=0, per_class=None, progress=True) -> KwsData:
    """Google Speech Commands layout: a folder per class, validation_list.txt / testing_list.txt."""
    if not os.path.isdir(root):
        raise PqlrError(f"speech_commands: {root}: no such folder")
    folders = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith((".", "_")))
    if not folders:
        raise PqlrError(f"speech_commands: {root}: no class folders")
    files = {}
    for d in folders:
        names = sorted(f for f in os.listdir(os.path.join(root, d)) if f.lower().endswith(".wav"))
        if not names:
            raise PqlrError(f"speech_commands: class folder {os.path.join(root, d)} has no .wav files")
        files[d] = names
    notes = []
    if words:
        missing = [w for w in words if w not in files]
        if missing:
            raise PqlrError(f"speech_commands: word(s) {missing} not in {root} (have: {', '.join(folders)})")
        classes = [SILENCE, UNKNOWN] + list(words)
    else:
        classes = list(folders)
    rng = np.random.default_rng(seed)
    entries = []                                     # (rel path, folder, speaker)
    for d in folders:
        names = files[d]
        if per_class is not None and len(names) > per_class:
            names = sorted(names[i] for i in rng.permutation(len(names))[:per_class])
        entries += [(f"{d}/{n}", d, n.split("_nohash_")[0]) for n in names]
    val_list, test_list = _read_list(root, "validation_list.txt"), _read_list(root, "testing_list.txt")
    split_of = {rel: ("test" if rel in test_list else "val" if rel in val_list else "train") for rel, _, _ in entries}
    if not any(s == "val" for s in split_of.values()) or not any(s == "test" for s in split_of.values()):
        tr, va, te = _speaker_split([spk for _, _, spk in entries], seed)
        split_of = {rel: ("test" if spk in te else "val" if spk in va else "train") for rel, _, spk in entries}
        notes.append(f"validation/testing lists gave an empty split: used a seeded speaker-disjoint split "
                     f"({len(tr)}/{len(va)}/{len(te)} speakers, seed {seed})")
    label_of = {c: i for i, c in enumerate(classes)}
    labels = [label_of.get(d, label_of.get(UNKNOWN, -1)) for _, d, _ in entries]
    splits = {}
    noise_dir = os.path.join(root, NOISE_FOLDER)
    noise = None
    if words:
        if os.path.isdir(noise_dir):
            noise = load_noise_dir(noise_dir, SAMPLE_RATE, min_samples=CLIP)
        else:
            noise = _generated_noise(seed)
            notes.append(f"no {NOISE_FOLDER}/ folder: {SILENCE} clips cut from generated white/pink/brown noise")
    chosen = {}                                       # split -> entry indices kept
    for k, split in enumerate(("train", "val", "test")):
        idx = [i for i, (rel, _, _) in enumerate(entries) if split_of[rel] == split]
        if words:   # keep `_unknown_` (and make `_silence_`) about as large as an average keyword class
            known = [i for i in idx if labels[i] >= 2]
            unknown = [i for i in idx if labels[i] == 1]
            n_extra = max(1, int(np.ceil(len(known) / len(words))))
            pick = np.random.default_rng([seed, k]).permutation(len(unknown))[:n_extra]
            idx = known + sorted(unknown[j] for j in pick)
        chosen[split] = idx
    # read only the files kept (with words, most of the unknown ones are not)
    keep = sorted(set().union(*chosen.values()))
    row = {i: r for r, i in enumerate(keep)}
    audio = _load_clips([os.path.join(root, entries[i][0]) for i in keep], SAMPLE_RATE, progress, "speech_commands")
    for k, split in enumerate(("train", "val", "test")):
        idx = chosen[split]
        ds = AudioDataset(audio[[row[i] for i in idx]], [labels[i] for i in idx], [entries[i][2] for i in idx],
                          [entries[i][0] for i in idx])
        if words:
            n_extra = max(1, int(np.ceil(sum(lab >= 2 for lab in ds.labels) / len(words))))
            sil = _silence_clips(noise, n_extra, np.random.default_rng([seed, k, 1]))
            ds = AudioDataset(np.concatenate([ds.audio, sil]), ds.labels + [0] * n_extra,
                              ds.speakers + [SILENCE] * n_extra,
                              ds.paths + [f"{SILENCE}/{split}_{j}" for j in range(n_extra)])
        splits[split] = ds
    info = {"source": os.path.abspath(root), "notes": notes, "seed": seed,
            "noise_dir": noise_dir if os.path.isdir(noise_dir) else None}
    if words:
        notes.append(f"{UNKNOWN} and {SILENCE} capped at about one keyword class per split")
    data = KwsData("speech_commands", classes, splits["train"], splits["val"], splits["test"], info)
    _split_info(data)
    return data


# ---------------------------------------------------------------- FSDD

_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$")


def load_fsdd(root: str, *, holdout_speaker=None, seed=0, per_class=None, progress=True) -> KwsData:
    """Free Spoken Digit Dataset: `{digit}_{speaker}_{index}.wav`, 8 kHz, resampled to 16 kHz.

    Without holdout: the conventional split, index 0-4 test, 5-9 validation, the rest train.
    With holdout_speaker: test = all of that speaker; val = a seeded 10% of the other speakers' clips.
    """
    if os.path.isdir(os.path.join(root, "recordings")):
        root = os.path.join(root, "recordings")
    if not os.path.isdir(root):
        raise PqlrError(f"fsdd: {root}: no such folder")
    entries = []                                             # (file, digit, speaker, index)
    for f in sorted(os.listdir(root)):
        if not f.lower().endswith(".wav"):
            continue
        m = _FSDD_NAME.match(f)
        if not m:
            raise PqlrError(f"fsdd: {os.path.join(root, f)}: name is not {{digit}}_{{speaker}}_{{index}}.wav")
        entries.append((f, int(m.group(1)), m.group(2), int(m.group(3))))
    if not entries:
        raise PqlrError(f"fsdd: {root}: no .wav recordings")
    speakers = sorted({e[2] for e in entries})
    if holdout_speaker is not None and holdout_speaker not in speakers:
        raise PqlrError(f"fsdd: unknown speaker {holdout_speaker!r} (speakers: {', '.join(speakers)})")
    rng = np.random.default_rng(seed)
    if per_class is not None:
        keep = []
        for d in range(10):
            rows = [e for e in entries if e[1] == d]
            keep += [rows[i] for i in sorted(rng.permutation(len(rows))[:per_class])]
        entries = sorted(keep)
    if holdout_speaker is not None:
        rest = [i for i, e in enumerate(entries) if e[2] != holdout_speaker]
        val = set(rest[j] for j in np.random.default_rng(seed).permutation(len(rest))[: max(1, len(rest) // 10)])
        split = ["test" if e[2] == holdout_speaker else "val" if i in val else "train" for i, e in enumerate(entries)]
        note = f"speaker-disjoint test: {holdout_speaker}; val = seeded 10% of the other speakers' clips (seed {seed})"
    else:
        split = ["test" if e[3] <= 4 else "val" if e[3] <= 9 else "train" for e in entries]
        note = "conventional split: index 0-4 test, 5-9 validation, >= 10 train (all speakers in every split)"
    audio = _load_clips([os.path.join(root, e[0]) for e in entries], 8000, progress, "fsdd")
    parts = {}
    for s in ("train", "val", "test"):
        idx = [i for i, x in enumerate(split) if x == s]
        parts[s] = AudioDataset(audio[idx], [entries[i][1] for i in idx], [entries[i][2] for i in idx],
                                [entries[i][0] for i in idx])
    classes = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    info = {"source": os.path.abspath(root), "notes": [note, "8 kHz recordings resampled to 16 kHz, centre-padded/cropped to 1 s"],
            "seed": seed, "holdout_speaker": holdout_speaker, "noise_dir": None}
    data = KwsData("fsdd", classes, parts["train"], parts["val"], parts["test"], info)
    _split_info(data)
    return data
