"""load_dataset on the real sample data (FSDD, Speech Commands mini) and on every kind of bad input."""
import os
import shutil

import numpy as np
import pytest

from pqlr.data import KwsData, load_dataset
from pqlr.errors import PqlrError

from .conftest import FSDD, SC_MINI, write_tone

pytestmark = pytest.mark.usefixtures("need_real_data")


def _check_clips(data: KwsData):
    for split in (data.train, data.val, data.test):
        assert len(split) > 0 and split.audio.dtype == np.int16 and split.audio.shape[1] == 16000
        assert min(split.labels) >= 0 and max(split.labels) < len(data.classes)
        wave, label = split[0]
        assert wave.shape == (16000,) and isinstance(label, int)


def test_fsdd_conventional_split():
    data = load_dataset(f"fsdd:{FSDD}", per_class=12, progress=False)
    _check_clips(data)
    assert data.name == "fsdd" and len(data.classes) == 10
    assert sum(data.info["sizes"].values()) == 120
    index = lambda p: int(p.rsplit("_", 1)[1][:-4])
    assert all(index(p) <= 4 for p in data.test.paths)
    assert all(5 <= index(p) <= 9 for p in data.val.paths)
    assert all(index(p) >= 10 for p in data.train.paths)
    assert all(data.classes[lab] == ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                                     "nine"][int(p[0])] for p, lab in zip(data.train.paths, data.train.labels))
    # same seed, same selection; the parent folder works too
    again = load_dataset(f"fsdd:{os.path.dirname(FSDD)}", per_class=12, progress=False)
    assert again.train.paths == data.train.paths and np.array_equal(again.train.audio, data.train.audio)


def test_fsdd_holdout_speaker():
    data = load_dataset(f"fsdd:{FSDD}", holdout_speaker="theo", per_class=15, seed=1, progress=False)
    _check_clips(data)
    assert set(data.test.speakers) == {"theo"}
    assert "theo" not in set(data.train.speakers) | set(data.val.speakers)
    assert data.info["speakers"]["test"] == ["theo"]
    with pytest.raises(PqlrError, match=r"unknown speaker 'nobody' \(speakers: george, jackson"):
        load_dataset(f"fsdd:{FSDD}", holdout_speaker="nobody", progress=False)


def test_speech_commands_all_words():
    data = load_dataset(f"speech_commands:{SC_MINI}", progress=False)
    _check_clips(data)
    assert len(data.classes) == 30 and data.classes == sorted(data.classes)
    assert sum(data.info["sizes"].values()) == 300
    # the official lists are split by speaker hash, so the splits share no speaker
    assert not any("speaker-disjoint" in n for n in data.info["notes"])
    tr, va, te = (set(d.speakers) for d in (data.train, data.val, data.test))
    assert not (tr & va) and not (tr & te) and not (va & te)
    assert data.train.paths[0].count("/") == 1 and "_nohash_" in data.train.paths[0]


def test_speech_commands_words():
    words = ["yes", "no", "up", "down"]
    data = load_dataset(f"folder:{SC_MINI}", words=words, progress=False)
    _check_clips(data)
    assert data.classes == ["_silence_", "_unknown_"] + words
    for split in (data.train, data.val, data.test):
        counts = split.counts(6)
        assert counts[0] > 0 and counts[1] > 0 and counts[0] == counts[1]
        for p, lab in zip(split.paths, split.labels):
            if lab >= 2:
                assert p.startswith(words[lab - 2] + "/")
            elif lab == 1:
                assert p.split("/")[0] not in words
    sil = data.train.audio[np.array(data.train.labels) == 0]
    assert sil.std() > 0                                        # cut from noise, not digital zeros
    with pytest.raises(PqlrError, match=r"word\(s\) \['maybe'\] not in"):
        load_dataset(f"speech_commands:{SC_MINI}", words=["yes", "maybe"], progress=False)


def test_speech_commands_lists_and_noise(tmp_path):
    """Official lists are honoured when they give every split; `_background_noise_` feeds _silence_."""
    root = tmp_path / "sc"
    for word in ("yes", "no", "cat"):
        for spk in ("aa11", "bb22", "cc33"):
            write_tone(root / word / f"{spk}_nohash_0.wav", seconds=1.2, freq=300 + 100 * len(word))
    write_tone(root / "_background_noise_" / "hum.wav", seconds=3.0, freq=50.0)
    (root / "validation_list.txt").write_text("yes/bb22_nohash_0.wav\nno/bb22_nohash_0.wav\ngone/x_nohash_0.wav\n")
    (root / "testing_list.txt").write_text("yes/cc33_nohash_0.wav\ncat/cc33_nohash_0.wav\n")
    data = load_dataset(f"speech_commands:{root}", words=["yes", "no"], progress=False)
    assert data.classes == ["_silence_", "_unknown_", "yes", "no"]
    assert "_background_noise_" not in data.classes and data.info["noise_dir"].endswith("_background_noise_")
    assert sorted(data.val.paths[:2]) == ["no/bb22_nohash_0.wav", "yes/bb22_nohash_0.wav"]
    assert set(data.test.paths[:2]) == {"yes/cc33_nohash_0.wav", "cat/cc33_nohash_0.wav"}
    assert not any("speaker-disjoint" in n for n in data.info["notes"])
    # without lists: a seeded speaker-disjoint split, said in info
    os.remove(root / "validation_list.txt")
    data = load_dataset(f"speech_commands:{root}", progress=False)
    assert any("speaker-disjoint" in n for n in data.info["notes"])
    assert [len(set(d.speakers)) for d in (data.train, data.val, data.test)] == [1, 1, 1]
    assert len(set(data.train.speakers) | set(data.val.speakers) | set(data.test.speakers)) == 3


def test_bad_specs(tmp_path):
    with pytest.raises(PqlrError, match="unknown dataset spec 'mnist:x'"):
        load_dataset("mnist:x", progress=False)
    with pytest.raises(PqlrError, match="needs a folder"):
        load_dataset("fsdd", progress=False)
    with pytest.raises(PqlrError, match="no such folder"):
        load_dataset(f"speech_commands:{tmp_path / 'nope'}", progress=False)
    with pytest.raises(PqlrError, match="no such folder"):
        load_dataset(f"fsdd:{tmp_path / 'nope'}", progress=False)
    with pytest.raises(PqlrError, match="clips per class"):
        load_dataset("kws_english:abc", progress=False)


def test_bad_folders(tmp_path):
    root = tmp_path / "sc"
    for spk in "acd":
        write_tone(root / "yes" / f"{spk}_nohash_0.wav")
    (root / "no").mkdir()
    with pytest.raises(PqlrError, match=r"class folder .*no has no .wav files"):
        load_dataset(f"speech_commands:{root}", progress=False)
    write_tone(root / "no" / "b_nohash_0.wav", rate=8000)
    with pytest.raises(PqlrError, match=r"b_nohash_0.wav: sample rate 8000 Hz, expected 16000"):
        load_dataset(f"speech_commands:{root}", progress=False)
    (root / "no" / "b_nohash_0.wav").write_bytes(b"RIFF but not really a wav")
    with pytest.raises(PqlrError, match=r"b_nohash_0.wav: not a readable audio file"):
        load_dataset(f"speech_commands:{root}", progress=False)
    fs = tmp_path / "fsdd"
    write_tone(fs / "3_anna_0.wav", rate=8000)
    write_tone(fs / "three-anna.wav", rate=8000)
    with pytest.raises(PqlrError, match=r"three-anna.wav: name is not"):
        load_dataset(f"fsdd:{fs}", progress=False)
    os.remove(fs / "three-anna.wav")
    write_tone(fs / "4_anna_0.wav", rate=16000)
    with pytest.raises(PqlrError, match=r"4_anna_0.wav: sample rate 16000 Hz, expected 8000"):
        load_dataset(f"fsdd:{fs}", progress=False)
    shutil.rmtree(fs)
    fs.mkdir()
    with pytest.raises(PqlrError, match="no .wav recordings"):
        load_dataset(f"fsdd:{fs}", progress=False)
