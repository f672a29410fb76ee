"""Tests of `pqlr train`, `pqlr eval` and `pqlr info` on a small tone dataset written as a Speech
Commands folder: files written, metrics consistent between train and eval, bad input -> exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from pqlr.cli import main
from pqlr.io import load_state
from pqlr.capture import capture
from pqlr.capture.stats import graph_stats
from pqlr.models import build_model

FREQS = {"high": 2200.0, "low": 300.0, "mid": 900.0}   # Hz, one tone per word


@pytest.fixture(scope="module")
def words(tmp_path_factory) -> Path:
    """<word>/s<k>_nohash_<n>.wav: 6 speakers x 2 clips per word, 16 kHz int16 noisy tones."""
    root = tmp_path_factory.mktemp("words")
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000.0
    for word, f in FREQS.items():
        (root / word).mkdir()
        for j in range(12):
            w = 0.3 * np.sin(2 * np.pi * f * rng.uniform(0.93, 1.07) * t + rng.uniform(0, 6.3))
            w += 0.03 * rng.standard_normal(t.size)
            sf.write(root / word / f"s{j % 6}_nohash_{j // 6}.wav", (w * 32767).astype(np.int16), 16000,
                     subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def trained(words, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    rc = main(["train", "--model", "ds-cnn-s", "--dataset", f"speech_commands:{words}", "--epochs", "3",
               "--batch-size", "8", "--lr", "0.01", "--no-augment", "--out", str(out / "r"),
               "--json", str(out / "m.json"), "--no-progress"])
    assert rc == 0
    return out


def test_train_writes_model_and_metrics(trained):
    metrics = json.loads((trained / "m.json").read_text())
    for key in ("accuracy", "val_accuracy", "loss", "epochs", "seconds"):
        assert key in metrics
    assert metrics["epochs"] == 3 and 0.0 <= metrics["accuracy"] <= 1.0 and metrics["seconds"] > 0
    tensors, meta = load_state(trained / "r" / "model.safetensors")
    assert meta["classes"] == ["high", "low", "mid"] and meta["model"]["arch"] == "ds_cnn"
    assert meta["features"]["n_mfcc"] == 10 and meta["train"]["epochs"] == 3
    assert meta["metrics"]["accuracy"] == metrics["accuracy"] and len(meta["history"]) == 3
    assert (trained / "r" / "checkpoints" / "epoch-0003.safetensors").is_file()


def test_eval_reproduces_the_test_accuracy(trained, words, tmp_path, capsys):
    out = tmp_path / "e.json"
    assert main(["eval", "--model", str(trained / "r" / "model.safetensors"), "--dataset",
                 f"speech_commands:{words}", "--json", str(out), "--no-progress"]) == 0
    ev, tr = json.loads(out.read_text()), json.loads((trained / "m.json").read_text())
    assert ev["accuracy"] == tr["accuracy"] and ev["n"] == tr["n_test"]
    assert np.array(ev["confusion"]).sum() == ev["n"]
    assert "accuracy" in capsys.readouterr().out


def test_resume_of_a_finished_run_trains_nothing_more(trained, words, tmp_path):
    before, _ = load_state(trained / "r" / "model.safetensors")
    assert main(["train", "--model", "ds-cnn-s", "--dataset", f"speech_commands:{words}", "--epochs", "3",
                 "--batch-size", "8", "--lr", "0.01", "--no-augment", "--out", str(trained / "r"), "--resume",
                 "--json", str(tmp_path / "m.json"), "--no-progress"]) == 0
    after, _ = load_state(trained / "r" / "model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_fine_tune_from_checkpoint_and_user_model(trained, words, tmp_path):
    assert main(["train", "--model", str(trained / "r" / "model.safetensors"), "--dataset", f"speech_commands:{words}",
                 "--epochs", "1", "--no-augment", "--out", str(tmp_path / "ft"), "--no-progress"]) == 0
    user = tmp_path / "mine.py"
    user.write_text("import torch\n"
                    "class Net(torch.nn.Module):\n"
                    "    def __init__(self, n_classes, input_shape):\n"
                    "        super().__init__()\n"
                    "        self.fc = torch.nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], n_classes)\n"
                    "    def forward(self, x):\n"
                    "        return self.fc(x.flatten(1))\n")
    assert main(["train", "--model", f"{user}:Net", "--dataset", f"speech_commands:{words}", "--epochs", "1",
                 "--no-augment", "--out", str(tmp_path / "u"), "--no-progress"]) == 0
    assert main(["eval", "--model", str(tmp_path / "u" / "model.safetensors"), "--dataset",
                 f"speech_commands:{words}", "--no-progress"]) == 0


def test_info_json_matches_model_stats(tmp_path, capsys):
    out = tmp_path / "i.json"
    assert main(["info", "--model", "ds-cnn-s", "--json", str(out)]) == 0
    info = json.loads(out.read_text())
    ref = graph_stats(capture(build_model("ds-cnn-s", 12, seed=0), (1, 49, 10)))
    assert info["params"] == ref["params"] == 23180 and info["macs"] == ref["macs"]
    assert [l["name"] for l in info["layers"]] == [l["name"] for l in ref["layers"]]
    table = capsys.readouterr().out
    assert "blocks.0.dw" in table and "23,180" in table


@pytest.mark.parametrize("argv, needle", [
    (["train", "--model", "nope", "--dataset", "WORDS", "--out", "OUT"], "unknown model 'nope'"),
    (["train", "--model", "ds-cnn-s", "--dataset", "fsdd:/no/such/dir", "--out", "OUT"], "no such folder"),
    (["train", "--model", "ds-cnn-s", "--dataset", "WORDS", "--epochs", "-1", "--out", "OUT"], "epochs"),
    (["train", "--model", "ds-cnn-s", "--dataset", "WORDS", "--lr", "0", "--out", "OUT"], "lr must be > 0"),
    (["train", "--model", "ds-cnn-s", "--dataset", "WORDS", "--optimizer", "lion", "--out", "OUT"], "lion"),
    (["eval", "--model", "ds-cnn-s", "--dataset", "WORDS"], "give a checkpoint"),
    (["eval", "--model", "/no/such.safetensors", "--dataset", "WORDS"], "no such checkpoint"),
    (["info", "--model", "ds-cnn-s", "--input-shape", "49by10"], "give one sample's shape"),
    (["info", "--model", "ds-cnn-s", "--classes", "1"], "--classes"),
])
def test_bad_input_is_one_line_and_exit_2(argv, needle, words, tmp_path, capsys):
    argv = [f"speech_commands:{words}" if a == "WORDS" else str(tmp_path / "o") if a == "OUT" else a for a in argv]
    assert main(argv + (["--no-progress"] if argv[0] != "info" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_eval_refuses_other_classes(trained, words, tmp_path, capsys):
    other = tmp_path / "two"
    for w in ("high", "low"):
        (other / w).mkdir(parents=True)
        for f in sorted((words / w).iterdir()):
            (other / w / f.name).write_bytes(f.read_bytes())
    assert main(["eval", "--model", str(trained / "r" / "model.safetensors"), "--dataset", f"speech_commands:{other}",
                 "--no-progress"]) == 2
    assert "was trained on classes" in capsys.readouterr().err


def test_missing_required_flag_is_argparse_exit_2():
    with pytest.raises(SystemExit) as e:
        main(["train", "--model", "ds-cnn-s"])
    assert e.value.code == 2
