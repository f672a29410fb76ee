"""The FreeRTOS KWS task of a PQLR package on the host: build it with the pthread FreeRTOS stand-in
and the stream harness (tests/freertos_standin/fixture/kws_harness.c), stream int16 PCM through its
queue, and replay the same integer pipeline in Python (c_features + run_graph + the task's smoothing)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np

from kws_trained import FEATURES, labels
from pqlr.deploy.inputs import input_int8
from pqlr.deploy.frontend import FRONTEND_SOURCES, c_features
from pqlr.deploy.host import model_sources
from pqlr.ir.interp import run_graph
from pqlr.runtime.build import compile_c
from pqlr.train import DEFAULT_CACHE

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "freertos_standin"
HARNESS = STANDIN / "fixture" / "kws_harness.c"      # producer task + callback log (model-independent)
HOP, FRAMES = FEATURES.hop_length, FEATURES.n_frames
K, M = 4, 3                                          # one inference per 4 hops (80 ms), sum of the last 3
REFRACTORY = FEATURES.clip_samples // HOP            # one window (50 hops)
MAX_LOGGED = 64                                      # the harness prints at most this many detections


def window_of(hop: int) -> tuple[int, int]:
    """Samples [first, end) of the window the task classified when `hop` hops had arrived: the
    frontend's newest frame ends (2 * hop - win) samples before the newest hop's end."""
    end = hop * HOP - (2 * HOP - FEATURES.win_length)
    return end - FEATURES.clip_samples, end


def build_task(package: Path, threshold: int, sanitize: bool = False) -> Path:
    """gcc -Wall -Wextra -Werror (-O2, or ASan/UBSan) of model + runtime + frontend + kws_task + stand-in."""
    defines = [f"-DKWS_INFER_EVERY_HOPS={K}", f"-DKWS_SMOOTH_COUNT={M}", f"-DKWS_THRESHOLD={int(threshold)}",
               f"-DKWS_REFRACTORY_HOPS={REFRACTORY}", "-pthread"]
    if sanitize:   # sanitizer frames are several times larger than real ones: give the stack check room
        defines.append("-DKWS_TASK_STACK_MARGIN_BYTES=262144")
    sources = [*model_sources(package), *(package / "src" / s for s in FRONTEND_SOURCES),
               package / "freertos" / "kws_task.c", STANDIN / "freertos_standin.c", HARNESS]
    return compile_c(sources, sanitize=sanitize, include_dirs=[package / "src", package / "freertos", STANDIN],
                     extra_flags=defines, name="kws_wakeword" + ("_asan" if sanitize else ""))


def run_task(exe: Path, pcm: np.ndarray, tmp: Path, timeout: float = 300) -> dict:
    """-> detect [(hop, score)], stats (hops, inferences, detections, errors), stack (used, declared) bytes."""
    raw = Path(tmp) / "stream.raw"
    raw.write_bytes(np.asarray(pcm).astype("<i2").tobytes())
    proc = subprocess.run([str(exe), str(raw)], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{exe.name} exited {proc.returncode}: {proc.stderr[-3000:]}")
    out = proc.stdout
    return dict(detect=[(int(h), int(s)) for h, s in re.findall(r"^detect (\d+) (-?\d+)$", out, re.M)],
                stats=[int(v) for v in re.search(r"^stats (\d+) (\d+) (\d+) (\d+)$", out, re.M).groups()],
                stack=[int(v) for v in re.search(r"^stack (\d+) (\d+)$", out, re.M).groups()])


def replay(kws, pcm: np.ndarray, threshold: int) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Python replay of kws_task.c: inference at hops FRAMES + K + jK on the window it covers, the moving
    sum of M wake outputs, threshold * M, the refractory period. -> (detection hops, hops, sums), where
    sums[i] is the moving sum the task holds after the inference at hops[i]."""
    hops = np.arange(FRAMES + 1 + K - 1, len(pcm) // HOP + 1, K)
    clips = np.stack([pcm[(h - FRAMES - 1) * HOP:(h - FRAMES - 1) * HOP + FEATURES.clip_samples] for h in hops])
    x = c_features(clips, FEATURES, kws.quant.scale, kws.quant.zero_point)[..., None]
    wake = run_graph(kws.graph, x).reshape(len(hops), -1)[:, kws.graph.meta["wake_class"]].astype(np.int64)
    sums = np.convolve(wake, np.ones(M, dtype=np.int64))[M - 1:len(wake)]
    out, last = [], None
    for i, s in enumerate(sums):
        h = int(hops[i + M - 1])
        if s >= threshold * M and (last is None or h - last >= REFRACTORY):
            out.append(h)
            last = h
    return out, hops[M - 1:], sums


def wake_threshold(kws, percentile: float = 99.0) -> tuple[int, float]:
    """Decide the detection threshold on the VALIDATION split, never on the stream under test: the
    `percentile` of the int8 wake output over the clips that are not the wake word (1% false accepts
    per window at 99). -> (threshold, fraction of the wake word's own validation clips reaching it)."""
    val = kws.data.val
    feats, _ = DEFAULT_CACHE.get(val, FEATURES)
    y, wake = labels(val), kws.graph.meta["wake_class"]
    out = run_graph(kws.graph, input_int8(kws.graph, feats)).reshape(len(y), -1)[:, wake].astype(np.int64)
    thr = int(np.ceil(np.percentile(out[y != wake], percentile)))
    return thr, float(np.mean(out[y == wake] >= thr))
