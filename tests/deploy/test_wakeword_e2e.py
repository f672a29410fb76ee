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
(c_features + run_graph + the task's smoothing) hop for hop; the task fits its declared stack.
bench/wakeword_stream.py runs the same build over every test clip (hit rate, false accepts per hour)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from kws_stream import FRAMES, HOP, K, M, build_task, replay, run_task, wake_threshold, window_of  # noqa: E402
from kws_trained import FEATURES, WAKE, labels, trained_kws  # noqa: E402
from pqlr.train import DEFAULT_CACHE  # noqa: E402

MARGIN_P = 0.95                                      # float softmax of the true class, to pick a clip


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    return trained_kws(tmp_path_factory.mktemp("wakeword"))


@pytest.fixture(scope="module")
def threshold(kws) -> int:
    thr, val_hit = wake_threshold(kws)
    assert val_hit >= 0.9, (thr, val_hit)            # it passes most of the wake word's own validation clips
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


@pytest.fixture(scope="module")
def replayed(kws, stream, threshold):
    return replay(kws, stream[0], threshold)


@pytest.mark.parametrize("sanitize", [False, True], ids=["O2", "asan"])
def test_task_wakes_on_hey_kimi_only(kws, threshold, stream, replayed, tmp_path, sanitize):
    pcm, segments, picked = stream
    res = run_task(build_task(kws.package, threshold, sanitize), pcm, tmp_path)
    expected, hops, sums = replayed
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
