"""Synthetic keyword sets `kws_english` / `kws_chinese`, spoken by espeak-ng (PyPI espeakng-loader, via ctypes).

Each set: 10 keywords (class 0 is the wake word `hey_kimi`: "Hey Kimi" / "嘿 Kimi"), `_unknown_` (other
words, near-misses included) and `_silence_` (generated noise). Every clip draws a voice (base language
voice + variant such as m3, f2, Andy), speed, pitch, pitch range, gain, position in the 1 s window, and
white/pink/brown background noise at a random SNR. The split is speaker-disjoint by variant: a test
variant's timbre is never heard in training. Chinese is fed to the `cmn-latn-pinyin` voice as tone-number
pinyin made by pypinyin ("hei1 Kimi"), since the plain `cmn` voice misreads characters.

Generated once, cached under $PQLR_CACHE or $XDG_CACHE_HOME/pqlr (default ~/.cache/pqlr) in a folder keyed
by (name, per_class, seed, GENERATOR_VERSION), written to a temp folder then renamed. espeak-ng keeps
state between utterances, so the raw speech is made by `espeak_worker.py` in a fresh process, in a fixed
order: the same seed gives the same bytes whatever the calling process did before.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
from tqdm import tqdm

from ..errors import PqlrError
from .audio import AudioDataset, fit_clip, resample, to_int16
from .augment import colored_noise, mix_at_snr
from .datasets import KwsData, _split_info

GENERATOR_VERSION = 1
DEFAULT_PER_CLASS = 400            # 12 classes x 400 = 4800 clips, about 20 s to make
SAMPLE_RATE, CLIP = 16000, 16000
SILENCE, UNKNOWN = "_silence_", "_unknown_"

VARIANTS = ("m1 m2 m3 m4 m5 m6 m7 m8 f1 f2 f3 f4 f5 Andy Annie aunty boris david edward iven linda max "
            "michel norbert robert steph zac belinda benjamin caleb anika john").split()

# (class name, text); texts in Chinese sets are hanzi (and Latin words), turned into pinyin at synthesis
SETS = {
    "kws_english": {
        "voices": ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc"),
        "keywords": [("hey_kimi", "Hey Kimi"), ("turn_on", "turn on"), ("turn_off", "turn off"),
                     ("volume_up", "volume up"), ("volume_down", "volume down"), ("next", "next"),
                     ("previous", "previous"), ("play", "play"), ("pause", "pause"), ("stop", "stop")],
        "unknown": ("hey Jimmy; hey Kiki; Kimi; hey; hello; okay; kitchen; weather; coffee; seven; yes; no; "
                    "left; right; music; morning; tomorrow; window; happy; lemon; kimchi; Tommy; "
                    "turn around; volume; upstairs; down town; neck; play ground; stock; cause; "
                    "protect; open the door; good night; how are you; thank you; banana; computer; "
                    "listen; water; garden").split("; "),
    },
    "kws_chinese": {
        "voices": ("cmn-latn-pinyin",),
        "keywords": [("hey_kimi", "嘿 Kimi"), ("da_kai", "打开"), ("guan_bi", "关闭"), ("bo_fang", "播放"),
                     ("zan_ting", "暂停"), ("shang_yi_shou", "上一首"), ("xia_yi_shou", "下一首"),
                     ("da_sheng_dian", "大声点"), ("xiao_sheng_dian", "小声点"), ("kai_deng", "开灯")],
        "unknown": ("嘿; Kimi; 嘿 Kiki; 黑米; 你好; 谢谢; 天气; 明天; 音乐; 电视; 空调; 窗户; 厨房; 早上好; "
                    "晚安; 吃饭; 喝水; 手机; 电脑; 朋友; 学校; 北京; 上海; 今天; 打电话; 开门; 关门; "
                    "下雨; 太阳; 月亮; 苹果; 咖啡; 时间; 工作; 停车; 放假; 大家; 小猫; 一首歌; 点灯").split("; "),
    },
}


def class_names(name: str) -> list[str]:
    return [k for k, _ in SETS[name]["keywords"]] + [UNKNOWN, SILENCE]


def cache_root(cache_dir: str | None = None) -> str:
    if cache_dir:
        return cache_dir
    if os.environ.get("PQLR_CACHE"):
        return os.environ["PQLR_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pqlr")


# ---------------------------------------------------------------- decide: the plan of every clip

def _split_variants(seed: int) -> dict[str, str]:
    """variant -> split: seeded shuffle; 5 test, 4 val, the rest train."""
    order = [VARIANTS[i] for i in np.random.default_rng([seed, 7]).permutation(len(VARIANTS))]
    return {v: ("test" if i < 5 else "val" if i < 9 else "train") for i, v in enumerate(order)}


def _pinyin(text: str) -> str:
    from pypinyin import Style, lazy_pinyin

    return " ".join(p.strip() for p in lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True) if p.strip())


def plan(name: str, per_class: int, seed: int) -> list[dict]:
    """One dict per clip (fixed order): label, text said, voice, variant, espeak params, mixing params."""
    spec = SETS[name]
    keywords, unknown, voices = spec["keywords"], spec["unknown"], spec["voices"]
    chinese = name == "kws_chinese"
    clips = []
    for label in range(len(keywords) + 2):
        for j in range(per_class):
            r = np.random.default_rng([seed, label, j])
            if label < len(keywords):
                text = keywords[label][1]
            elif label == len(keywords):
                text = unknown[int(r.integers(len(unknown)))]
            else:
                text = None                                                # silence
            clips.append({
                "label": label,
                "text": text,
                "said": (_pinyin(text) if chinese else text) + str(r.choice(["", "!", "?", "."])) if text else None,
                "voice": str(voices[int(r.integers(len(voices)))]),
                "variant": str(VARIANTS[int(r.integers(len(VARIANTS)))]),
                "rate": int(r.integers(120, 211)),                         # words per minute (espeak default 175)
                "pitch": int(r.integers(20, 81)),                          # 0..100 (default 50)
                "range": int(r.integers(20, 91)),                          # pitch range 0..100
                "gain_db": float(r.uniform(-18.0, 0.0)),                   # speech peak re full scale
                "offset": float(r.uniform(0.0, 1.0)),                      # position in the window (0 left, 1 right)
                "noise_alpha": int(r.integers(0, 3)),                      # 0 white, 1 pink, 2 brown
                "snr_db": float(r.uniform(5.0, 40.0)),
                "silence_db": float(r.uniform(-70.0, -20.0)),              # noise RMS for silence clips, dBFS
                "rand_seed": int(r.integers(1, 2 ** 31 - 1)),              # espeak-ng's own noise source
            })
    return clips


# ---------------------------------------------------------------- do: espeak-ng in a child process

def _speak(jobs: list[tuple]) -> tuple[int, list[np.ndarray]]:
    """Synthesize (voice+variant, said, wpm, pitch, range, rand_seed) jobs in a fresh process
    (espeak_worker.py: clean espeak-ng state, so the same jobs give the same bytes) -> (Hz, int16 waves)."""
    worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "espeak_worker.py")
    proc = subprocess.run([sys.executable, worker], input=json.dumps(jobs).encode("utf-8"), capture_output=True)
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PqlrError(f"speech synthesis failed: {msg[-1] if msg else f'exit code {proc.returncode}'}")
    buf = memoryview(proc.stdout)
    rate = struct.unpack_from("<I", buf, 0)[0]
    pos, waves = 4, []
    for _ in jobs:
        n = struct.unpack_from("<I", buf, pos)[0]
        waves.append(np.frombuffer(buf, dtype="<i2", count=n, offset=pos + 4).astype(np.int16))
        pos += 4 + 2 * n
    return int(rate), waves


def _trim(x: np.ndarray, rel_db: float = -40.0) -> np.ndarray:
    """Drop leading/trailing samples quieter than rel_db below the peak (espeak pads with silence)."""
    a = np.abs(x.astype(np.float64))
    loud = np.nonzero(a >= a.max() * 10.0 ** (rel_db / 20.0))[0]
    return x[loud[0]:loud[-1] + 1] if len(loud) else x


def _render(clip: dict, speech: np.ndarray | None, rate: int, noise: np.ndarray) -> np.ndarray:
    """One 1 s int16 clip: trimmed, resampled speech at its gain and position, plus noise at its SNR.
    noise: (CLIP,) unit-RMS float64."""
    if speech is None:                                                     # _silence_
        return to_int16(noise * 10.0 ** (clip["silence_db"] / 20.0))
    x = resample(_trim(speech).astype(np.float32) / 32768.0, rate, SAMPLE_RATE, zeros=10).astype(np.float64)
    x = x / max(np.abs(x).max(), 1e-9) * 10.0 ** (clip["gain_db"] / 20.0)
    if len(x) < CLIP:
        start = int(round(clip["offset"] * (CLIP - len(x))))
        placed = np.zeros(CLIP)
        placed[start:start + len(x)] = x
    else:
        placed = fit_clip(x, CLIP)
    return to_int16(mix_at_snr(placed, noise, clip["snr_db"]))


def _noise_bank(seed: int) -> list[np.ndarray]:
    """Three 20 s unit-RMS noises (white, pink, brown) from which clips cut their background."""
    import torch


    g = torch.Generator().manual_seed(int(seed) + 1)
    return [row.astype(np.float64) for row in colored_noise((3, 20 * CLIP), torch.tensor([0.0, 1.0, 2.0]), g).numpy()]


def generate(name: str, per_class: int, seed: int, progress: bool = True) -> tuple[np.ndarray, list[dict]]:
    """Make the whole set in memory: (N, CLIP) int16 audio and the plan (one dict per clip)."""
    clips = plan(name, per_class, seed)
    spoken = [c for c in clips if c["said"]]
    jobs = [(f"{c['voice']}+{c['variant']}", c["said"], c["rate"], c["pitch"], c["range"], c["rand_seed"]) for c in spoken]
    rate, waves = _speak(jobs)
    speech = iter(waves)
    bank = _noise_bank(seed)
    audio = np.zeros((len(clips), CLIP), dtype=np.int16)
    for i, c in enumerate(tqdm(clips, desc=f"{name} (synth)", disable=not progress, unit="clip")):
        src = bank[c["noise_alpha"]]
        start = int(np.random.default_rng([seed, 99, i]).integers(0, len(src) - CLIP + 1))
        noise = src[start:start + CLIP]
        noise = noise / np.sqrt(np.mean(noise ** 2))
        audio[i] = _render(c, next(speech) if c["said"] else None, rate, noise)
    return audio, clips


def load_synth(name: str, *, per_class: int | None = None, seed: int = 0, cache_dir: str | None = None,
               progress: bool = True) -> "KwsData":
    """Load (generating and caching on first use) a synthetic keyword set."""

    if name not in SETS:
        raise PqlrError(f"unknown synthetic set {name!r} (have: {', '.join(SETS)})")
    per_class = int(per_class or DEFAULT_PER_CLASS)
    folder = os.path.join(cache_root(cache_dir), f"{name}-n{per_class}-s{seed}-v{GENERATOR_VERSION}")
    if not os.path.isfile(os.path.join(folder, "meta.json")):
        _write_cache(folder, name, per_class, seed, progress)
    try:
        with open(os.path.join(folder, "meta.json"), encoding="utf-8") as f:
            meta = json.load(f)
        audio = np.load(os.path.join(folder, "audio.npy"), allow_pickle=False)
    except (OSError, ValueError) as e:
        raise PqlrError(f"{folder}: broken cache ({e}); delete the folder to regenerate") from None
    variant_split = _split_variants(seed)
    clips = meta["clips"]
    split = [variant_split[c["variant"]] for c in clips]
    parts = {}
    for s in ("train", "val", "test"):
        idx = [i for i, x in enumerate(split) if x == s]
        parts[s] = AudioDataset(audio[idx], [clips[i]["label"] for i in idx],
                                [f"{clips[i]['voice']}+{clips[i]['variant']}" for i in idx],
                                [f"{name}/{i:05d}" for i in idx])
    info = {"source": folder, "seed": seed, "per_class": per_class, "generator_version": GENERATOR_VERSION,
            "sha256": meta["sha256"], "noise_dir": None, "texts": meta["texts"],
            "variants": {s: sorted(v for v, x in variant_split.items() if x == s) for s in ("train", "val", "test")},
            "notes": [f"espeak-ng synthetic speech, speaker-disjoint by voice variant (seed {seed})",
                      "background: generated white/pink/brown noise at 5-40 dB SNR"]}
    data = KwsData(name, meta["classes"], parts["train"], parts["val"], parts["test"], info)
    _split_info(data)
    return data


def _write_cache(folder: str, name: str, per_class: int, seed: int, progress: bool) -> None:
    """Generate and store atomically: build in a temp folder beside `folder`, then rename it into place."""
    t0 = time.time()
    audio, clips = generate(name, per_class, seed, progress)
    parent = os.path.dirname(folder) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.", dir=parent)
    os.chmod(tmp, 0o755)                                                   # mkdtemp makes it private
    try:
        np.save(os.path.join(tmp, "audio.npy"), audio)
        meta = {"generated_by": "PQLR, do not edit", "name": name, "per_class": per_class, "seed": seed,
                "generator_version": GENERATOR_VERSION, "classes": class_names(name),
                "texts": {k: t for k, t in SETS[name]["keywords"]},
                "sha256": hashlib.sha256(audio.tobytes()).hexdigest(), "seconds": round(time.time() - t0, 2),
                "clips": clips}
        with open(os.path.join(tmp, "meta.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False, indent=1)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not os.path.isfile(os.path.join(folder, "meta.json")):  # not a concurrent writer's finished copy
                raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
