"""Synthetic keyword sets: classes, speaker-disjoint split, on-disk cache, same bytes for the same seed."""
import hashlib
import json
import os
import time

import numpy as np
import pytest

from pqlr.data import load_dataset
from pqlr.data import synth
from pqlr.errors import PqlrError


@pytest.mark.parametrize("name", ["kws_english", "kws_chinese"])
def test_synth_set(tmp_path, name):
    t0 = time.time()
    data = load_dataset(f"{name}:3", cache_dir=str(tmp_path), progress=False)
    first = time.time() - t0
    assert data.name == name and len(data.classes) == 12
    assert data.classes[0] == "hey_kimi" and data.classes[-2:] == ["_unknown_", "_silence_"]
    assert sum(data.info["sizes"].values()) == 12 * 3
    # speaker-disjoint by voice variant
    variant = lambda spk: spk.split("+")[1]
    tr, va, te = ({variant(s) for s in d.speakers} for d in (data.train, data.val, data.test))
    assert not (tr & te) and not (tr & va) and not (va & te)
    # clips are real audio: speech classes louder than silence, nothing stuck at zero
    audio = np.concatenate([data.train.audio, data.val.audio, data.test.audio]).astype(np.float64)
    labels = np.array(data.train.labels + data.val.labels + data.test.labels)
    rms = np.sqrt((audio ** 2).mean(axis=1))
    assert rms[labels < 11].min() > 100 and np.all(rms > 0)
    # the wake word says what it should
    if name == "kws_chinese":
        assert data.info["texts"]["hey_kimi"] == "嘿 Kimi"
        said = json.load(open(os.path.join(data.info["source"], "meta.json"), encoding="utf-8"))["clips"][0]["said"]
        assert said.startswith("hei1 Kimi")
    # cached: second load reads the folder, fast and identical
    t0 = time.time()
    again = load_dataset(name, per_class=3, cache_dir=str(tmp_path), progress=False)
    assert time.time() - t0 < max(0.5, first / 3)
    assert np.array_equal(again.train.audio, data.train.audio) and again.test.labels == data.test.labels
    assert os.listdir(tmp_path) == [os.path.basename(data.info["source"])]     # no temp folder left behind


def test_same_seed_same_bytes(tmp_path):
    a = load_dataset("kws_english", per_class=2, seed=5, cache_dir=str(tmp_path / "a"), progress=False)
    # the first generation in this process already ran espeak-ng; the child process keeps it fresh
    b = load_dataset("kws_english", per_class=2, seed=5, cache_dir=str(tmp_path / "b"), progress=False)
    c = load_dataset("kws_english", per_class=2, seed=6, cache_dir=str(tmp_path / "a"), progress=False)
    assert a.info["sha256"] == b.info["sha256"] != c.info["sha256"]
    files = lambda d: open(os.path.join(d.info["source"], "audio.npy"), "rb").read()
    assert hashlib.sha256(files(a)).digest() == hashlib.sha256(files(b)).digest()


def test_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("PQLR_CACHE", str(tmp_path / "p"))
    assert synth.cache_root() == str(tmp_path / "p")
    monkeypatch.delenv("PQLR_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert synth.cache_root() == str(tmp_path / "x" / "pqlr")
    assert synth.cache_root("/given") == "/given"


def test_plan_is_varied():
    clips = synth.plan("kws_english", 40, 0)
    keyword = [c for c in clips if c["label"] == 0]
    assert len({c["variant"] for c in keyword}) > 10 and len({c["voice"] for c in keyword}) > 3
    assert len({c["rate"] for c in keyword}) > 10 and len({c["pitch"] for c in keyword}) > 10
    unknown = [c for c in clips if c["label"] == 10]
    assert len({c["text"] for c in unknown}) > 10 and all(c["said"] is None for c in clips if c["label"] == 11)
    assert synth.plan("kws_english", 40, 0) == clips


def test_bad_synth_args(tmp_path):
    with pytest.raises(PqlrError, match="per_class must be positive"):
        load_dataset("kws_english", per_class=0, cache_dir=str(tmp_path), progress=False)
    with pytest.raises(PqlrError, match="do not apply"):
        load_dataset("kws_chinese", words=["a"], cache_dir=str(tmp_path), progress=False)
