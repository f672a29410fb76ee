"""Benchmark: the FreeRTOS KWS task on EVERY test clip of kws_english, streamed -- hit rate and false accepts.

The model, threshold and task build are those of tests/deploy/test_wakeword_e2e.py (DS-CNN-S, 3 epochs,
PTQ int8, C frontend, threshold = 99th percentile of the wake output over non-wake VALIDATION clips).
The stream: every non-silence test clip (1 s) in a seeded random order, each followed by one test-split
`_silence_` clip (1 s), cut into chunks the host harness runs one by one (it logs <= 64 detections).
A "Hey Kimi" clip is hit when a detection's 1 s window overlaps it; any other detection is a false accept.
Not part of the test suite (about 20 minutes of audio). Example:

    .venv/bin/python bench/wakeword_stream.py --json bench/results/wakeword_stream.json
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from kws_stream import MAX_LOGGED, build_task, run_task, wake_threshold, window_of  # noqa: E402
from kws_trained import FEATURES, WAKE, labels, trained_kws  # noqa: E402
from pqlr.io import write_json  # noqa: E402


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="order of the clips")
    ap.add_argument("--chunk", type=int, default=120, help="clips per harness run")
    ap.add_argument("--percentile", type=float, default=99.0, help="threshold percentile over non-wake val clips")
    ap.add_argument("--json", help="write the results here")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="pqlr-wakeword-") as tmp:
        kws = trained_kws(Path(tmp))
        thr, val_hit = wake_threshold(kws, args.percentile)
        exe = build_task(kws.package, thr)
        test, classes = kws.data.test, kws.data.classes
        y = labels(test)
        wake, silence = classes.index(WAKE), classes.index("_silence_")
        speech = np.random.default_rng(args.seed).permutation(np.flatnonzero(y != silence))
        gaps = np.flatnonzero(y == silence)
        n = FEATURES.clip_samples
        hits = false_accepts = seconds = 0
        per_class_fa = {c: 0 for c in classes}
        for c0 in range(0, len(speech), args.chunk):
            order = [i for j, s in enumerate(speech[c0:c0 + args.chunk]) for i in (s, gaps[(c0 + j) % len(gaps)])]
            pcm = np.concatenate([test.audio[i] for i in order])
            res = run_task(exe, pcm, Path(tmp), timeout=600)
            if res["stats"][2] != len(res["detect"]) or len(res["detect"]) >= MAX_LOGGED:
                raise SystemExit(f"chunk at {c0}: {res['stats'][2]} detections, more than the harness logs")
            seconds += len(pcm) / FEATURES.sample_rate
            heard = set()
            for hop, _ in res["detect"]:
                first, end = window_of(hop)
                clips = [k for k in range(max(first, 0) // n, (end - 1) // n + 1) if k < len(order)]
                wakes = [k for k in clips if y[order[k]] == wake]
                if wakes:
                    heard.update(wakes)
                else:
                    false_accepts += 1
                    loud = [k for k in clips if y[order[k]] != silence]
                    per_class_fa[classes[y[order[loud[0]]]] if loud else "_silence_"] += 1
            hits += len(heard)
        n_wake = int(np.sum(y[speech] == wake))
    result = {
        "model": "ds-cnn-s (3 epochs, PTQ int8), C frontend + FreeRTOS task (host, stand-in)",
        "threshold_int8": thr, "threshold_percentile": args.percentile, "val_wake_pass_rate": val_hit,
        "float_test_accuracy": kws.float_test_accuracy,
        "wake_clips": n_wake, "hits": hits, "hit_rate": hits / max(n_wake, 1),
        "non_wake_clips": int(len(speech) - n_wake), "false_accepts": false_accepts,
        "false_accepts_per_hour": false_accepts * 3600.0 / seconds, "false_accepts_by_class":
            {c: v for c, v in per_class_fa.items() if v}, "audio_seconds": round(seconds, 1),
        "wall_seconds": round(time.time() - t0, 1), "host": platform.platform(),
    }
    for k, v in result.items():
        print(f"{k}: {v}")
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
