"""The real wake word through the FreeRTOS task, end to end on the host.

A DS-CNN-S trained on kws_english, PTQ int8 and packaged by PQLR (tests/integration/kws_trained.py);
its generated C + runtime + fixed-point frontend + freertos/kws_task.c + the pthread FreeRTOS stand-in,
built with gcc -Wall -Wextra -Werror (and once with ASan/UBSan). A producer task streams 8 s of PCM
through the task's queue, one 20 ms hop per item:

    2 s noise | "Hey Kimi" (1 s) | 2 s noise | another keyword (1 s) | 2 s noise

Every clip comes from the TEST split (speaker-disjoint: voice variants never heard in training); the
noise is the test split's own `_silence_` clips. The clips are picked, not random: the first ones the
FLOAT model classifies correctly with softmax >= 0.95 (and, for the other keyword and the noise, a wake
probability < 1%) -- so this shows that the deployed integer pipeline keeps a clear decision, not that
every utterance is caught. The detection threshold is not tuned on the stream: it is the 99th
percentile of the int8 wake output over the VALIDATION clips that are not the wake word.

Asserted: exactly one detection, while the "Hey Kimi" clip is in the task's 1 s window; none for the
other keyword or the noise; the detections equal a Python replay of the same integer pipeline
(c_features + run_graph + the task's smoothing) hop for hop; the task fits its declared stack."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from kws_trained import FEATURES, WAKE, labels, trained_kws  # noqa: E402
from pqlr.compress.measure import input_int8  # noqa: E402
from pqlr.deploy.frontend import FRONTEND_SOURCES, c_features  # noqa: E402
from pqlr.deploy.host import model_sources  # noqa: E402
from pqlr.ir.interp import run_graph  # noqa: E402
from pqlr.runtime.build import compile_c  # noqa: E402
from pqlr.train import DEFAULT_CACHE  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STANDIN = ROOT / "tests" / "freertos_standin"
HARNESS = STANDIN / "fixture" / "kws_harness.c"      # producer task + callback log (model-independent)
SR, HOP, FRAMES = FEATURES.sample_rate, FEATURES.hop_length, FEATURES.n_frames
K, M = 4, 3                                          # one inference per 4 hops, mean of the last 3
REFRACTORY = FEATURES.clip_samples // HOP            # one window
MARGIN_P = 0.95                                      # float softmax of the true class, to pick a clip


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    return trained_kws(tmp_path_factory.mktemp("wakeword"))


@pytest.fixture(scope="module")
def threshold(kws) -> int:
    """99th percentile of the int8 wake output over the non-wake validation clips (1% false accepts
    per window); it must sit below most of the wake word's own validation outputs."""
    val = kws.data.val
    feats, _ = DEFAULT_CACHE.get(val, FEATURES)
    y = labels(val)
    wake = kws.graph.meta["wake_class"]
    out = run_graph(kws.graph, input_int8(kws.graph, feats)).reshape(len(y), -1)[:, wake].astype(np.int64)
    thr = int(np.ceil(np.percentile(out[y != wake], 99)))
    assert np.mean(out[y == wake] >= thr) >= 0.9, (thr, np.percentile(out[y == wake], [5, 50]))
    return thr


@pytest.fixture(scope="module")
def stream(kws):
    """-> (int16 PCM, {segment: (first sample, end sample)}, chosen test indices)."""
    test = kws.data.test
    y, classes = labels(test), kws.data.classes
    feats, _ = DEFAULT_CACHE.get(test, FEATURES)
    with torch.no_grad():
        p = torch.softmax(kws.model(feats), 1).numpy()
    wake, silence = classes.index(WAKE), classes.index("_silence_")
    keywords = [i for i, c in enumerate(classes) if c != WAKE and not c.startswith("_")]
    sure = p[np.arange(len(y)), y] >= MARGIN_P
    hey = int(np.flatnonzero(sure & (y == wake))[0])
    other = int(np.flatnonzero(sure & np.isin(y, keywords) & (p[:, wake] < 0.01))[0])
    noise = np.flatnonzero(sure & (y == silence) & (p[:, wake] < 0.01))[:6]
    assert len(noise) == 6
    order = [noise[0], noise[1], hey, noise[2], noise[3], other, noise[4], noise[5]]
    pcm = np.concatenate([test.audio[i] for i in order])
    n = FEATURES.clip_samples
    segments = {"hey": (2 * n, 3 * n), "other": (5 * n, 6 * n)}
    return pcm, segments, {"hey": hey, "other": other, "other_class": classes[y[other]], "noise": noise.tolist()}


def window_of(hop: int) -> tuple[int, int]:
    """Samples [first, end) of the window the task classified when `hop` hops had arrived: the
    frontend's newest frame ends (HOP*2 - win) samples before the newest hop's end."""
    end = hop * HOP - (2 * HOP - FEATURES.win_length)
    return end - FEATURES.clip_samples, end


def replay(kws, pcm: np.ndarray, threshold: int) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Python replay of kws_task.c: inference at hops FRAMES + K + jK on the window it covers, the
    moving sum of M wake outputs, the threshold and the refractory period. -> (detect hops, hops, sums)."""
    hops = np.arange(FRAMES + 1 + K - 1, len(pcm) // HOP + 1, K)
    clips = np.stack([pcm[(h - FRAMES - 1) * HOP:(h - FRAMES - 1) * HOP + FEATURES.clip_samples] for h in hops])
    x = c_features(clips, FEATURES, kws.quant.scale, kws.quant.zero_point)[..., None]
    wake = run_graph(kws.graph, x).reshape(len(hops), -1)[:, kws.graph.meta["wake_class"]].astype(np.int64)
    sums = np.convolve(wake, np.ones(M, dtype=np.int64))[M - 1:len(wake)]       # sums[i]: inferences i..i+M-1
    out, last = [], None
    for i, s in enumerate(sums):
        h = int(hops[i + M - 1])
        if s >= threshold * M and (last is None or h - last >= REFRACTORY):
            out.append(h)
            last = h
    return out, hops[M - 1:], sums


def build(kws, threshold: int, sanitize: bool) -> Path:
    pkg = kws.package
    defines = [f"-DKWS_INFER_EVERY_HOPS={K}", f"-DKWS_SMOOTH_COUNT={M}", f"-DKWS_THRESHOLD={threshold}",
               f"-DKWS_REFRACTORY_HOPS={REFRACTORY}", "-pthread"]
    if sanitize:   # sanitizer frames are several times larger than real ones: give the check room
        defines.append("-DKWS_TASK_STACK_MARGIN_BYTES=262144")
    sources = [*model_sources(pkg), *(pkg / "src" / s for s in FRONTEND_SOURCES), pkg / "freertos" / "kws_task.c",
               STANDIN / "freertos_standin.c", HARNESS]
    return compile_c(sources, sanitize=sanitize, include_dirs=[pkg / "src", pkg / "freertos", STANDIN],
                     extra_flags=defines, name="kws_wakeword" + ("_asan" if sanitize else ""))


def run(exe: Path, pcm: np.ndarray, tmp: Path) -> dict:
    raw = tmp / "stream.raw"
    raw.write_bytes(pcm.astype("<i2").tobytes())
    proc = subprocess.run([str(exe), str(raw)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    return dict(detect=[(int(h), int(s)) for h, s in re.findall(r"^detect (\d+) (-?\d+)$", out, re.M)],
                stats=[int(v) for v in re.search(r"^stats (\d+) (\d+) (\d+) (\d+)$", out, re.M).groups()],
                stack=[int(v) for v in re.search(r"^stack (\d+) (\d+)$", out, re.M).groups()])


@pytest.mark.parametrize("sanitize", [False, True], ids=["O2", "asan"])
def test_task_wakes_on_hey_kimi_only(kws, threshold, stream, tmp_path, sanitize):
    pcm, segments, picked = stream
    exe = build(kws, threshold, sanitize)
    res = run(exe, pcm, tmp_path)
    expected, hops, sums = replay(kws, pcm, threshold)
    n_hops = len(pcm) // HOP
    print(f"\nthreshold {threshold} (x{M}), clips {picked}, detections {res['detect']}, stack {res['stack']}")
    assert res["stats"][0] == n_hops and res["stats"][3] == 0                # every hop processed, no errors
    assert res["stats"][1] == len(range(FRAMES + K, n_hops + 1, K))           # one inference per K hops
    assert [h for h, _ in res["detect"]] == expected                          # the integer pipeline, hop for hop
    assert len(res["detect"]) == 1, res["detect"]
    hop, score = res["detect"][0]
    first, end = window_of(hop)
    hey0, hey1 = segments["hey"]
    assert first < hey1 and end > hey0, (hop, first, end, segments)          # fired while "Hey Kimi" was heard
    assert score == sums[list(hops).index(hop)] >= threshold * M
    o0, o1 = segments["other"]                                                # the other keyword never came close
    near_other = [s for h, s in zip(hops, sums) if window_of(int(h))[1] > o0 and window_of(int(h))[0] < o1]
    assert near_other and max(near_other) < threshold * M
    if not sanitize:
        used, declared = res["stack"]
        assert 0 < used <= declared
