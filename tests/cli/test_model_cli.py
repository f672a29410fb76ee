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
