"""`pqlr info`, `pqlr prune` and `pqlr ops` on a user's model file: counts of every op, the coupled
groups and what a cut removes, the supported-op list; bad input is one line and exit 2."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from pqlr.cli import main
from pqlr.models import load_model

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "models"


def test_info_counts_conv1d_models(tmp_path, capsys):
    out = tmp_path / "i.json"
    assert main(["info", "--model", f"{EXAMPLES / 'matchboxnet.py'}:MatchboxNet3x1x64", "--json", str(out)]) == 0
    info = json.loads(out.read_text())
    assert info["macs"] > 3_000_000 and info["input_shape"] == [1, 49, 10]    # Conv1d MACs counted
    assert sum(l["macs"] for l in info["layers"] if l["type"] == "Conv1d") > 0.9 * info["macs"]
    assert "elem ops" in capsys.readouterr().out


SEQUENCE_MODELS = """
import torch
from torch import nn


class CRNN(nn.Module):                      # no n_classes / input_shape in the constructor
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3, padding=1)
        self.gru = nn.GRU(16 * 10, 32, num_layers=2, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        b, c, t, f = x.shape
        x = x.permute(0, 2, 1, 3).reshape(b, t, c * f)     # shape arithmetic in forward
        y, _ = self.gru(x)
        return self.fc(y[:, -1])


class Attn(nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.mha = nn.MultiheadAttention(16, 4, batch_first=True)
        self.fc = nn.Linear(16, n_classes)

    def forward(self, x):
        y, _ = self.mha(x, x, x)
        return self.fc(y.mean(1))


class Flat(nn.Module):
    def forward(self, x):
        return x.reshape(x.size(0), x.shape[1] * x.shape[2] // 2, 2).mean(2)
"""


def _info(tmp_path, argv) -> dict:
    out = tmp_path / "i.json"
    assert main(["info", *argv, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_info_counts_recurrent_and_attention_layers_of_models_that_do_not_deploy(tmp_path, capsys):
    f = tmp_path / "seq.py"
    f.write_text(SEQUENCE_MODELS)
    info = _info(tmp_path, ["--model", f"{f}:CRNN", "--input-shape", "1x49x10"])
    assert not info["deployable"] and "gru" in info["why_not"] and "GRU" in info["why_not"]
    gru = next(l for l in info["layers"] if l["type"] == "GRU")
    # 49 steps x (layer 1: 2 directions x 3 gates x 32 x (160 + 32); layer 2: 2 x 3 x 32 x (64 + 32))
    assert gru["macs"] == 49 * (2 * 3 * 32 * (160 + 32) + 2 * 3 * 32 * (64 + 32))
    assert next(l for l in info["layers"] if l["type"] == "Conv2d")["macs"] == 16 * 49 * 10 * 9
    assert info["params"] == sum(l["params"] for l in info["layers"])
    assert "not deployable as it is" in capsys.readouterr().out
    info = _info(tmp_path, ["--model", f"{f}:Attn", "--input-shape", "20x16", "--classes", "4"])
    mha = next(l for l in info["layers"] if l["type"] == "MultiheadAttention")
    assert mha["macs"] == 4 * 20 * 16 * 16 + 2 * 20 * 20 * 16           # q, k, v, out; scores and sum


def test_info_captures_shape_arithmetic(tmp_path):
    f = tmp_path / "seq.py"
    f.write_text(SEQUENCE_MODELS)
    info = _info(tmp_path, ["--model", f"{f}:Flat", "--input-shape", "4x6"])
    assert info["deployable"] and info["layers"][-1]["output_shape"] == [12]


def test_user_model_errors_are_one_line(tmp_path, capsys):
    f = tmp_path / "broken.py"
    f.write_text("import torch\nclass M(torch.nn.Module):\n    def __init__(self)\n        pass\n")
    assert main(["info", "--model", f"{f}:M"]) == 2
    err = capsys.readouterr().err.strip()
    assert "broken.py: importing it failed (line 3): SyntaxError" in err and len(err.splitlines()) == 1
    f.write_text("class M:\n    def __init__(self, n_classes):\n        raise ValueError('no such width')\n")
    assert main(["info", "--model", f"{f}:M"]) == 2
    err = capsys.readouterr().err.strip()
    assert "M(n_classes=12) failed: ValueError: no such width" in err and len(err.splitlines()) == 1
    f.write_text("import torch\nclass M(torch.nn.Module):\n    def forward(self, x):\n        return self(x)\n")
    assert main(["info", "--model", f"{f}:M", "--input-shape", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert "the model fails on one sample of shape (4,): RecursionError" in err and len(err.splitlines()) == 1


def test_prune_explains_groups_and_saves_the_cut(tmp_path, capsys):
    ck = tmp_path / "p.safetensors"
    assert main(["prune", "--model", f"{EXAMPLES / 'resnet8.py'}:ResNet8", "--input-shape", "3x32x32",
                 "--classes", "10", "--explain", "--sparse", "0.5", "--output", str(ck)]) == 0
    text = capsys.readouterr().out
    assert "group " in text and "output channels" in text and "parameters 78," in text
    model, meta = load_model(ck)
    assert meta["sparse"] == 0.5 and sum(p.numel() for p in model.parameters()) < 78_000


def test_ops_lists_the_table(capsys):
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    assert "conv" in out and "docs/ops.md" in out


@pytest.mark.parametrize("argv, needle", [
    (["prune", "--model", "ds-cnn-s", "--output", "x.safetensors"], "--output needs --sparse"),
    (["prune", "--model", "ds-cnn-s", "--input-shape", "3xx"], "give one sample's shape"),
    (["info", "--model", "ds-cnn-s", "--input-shape", "3x32x32"], "zoo models take (1, frames, features)"),
])
def test_bad_input_is_one_line(argv, needle, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1
