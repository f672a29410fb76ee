"""Model zoo: parameter/MAC counts against the MLPerf Tiny reference, checkpoints, bad names."""
import pytest
import torch

from pqlr.errors import PqlrError
from pqlr.capture import capture
from pqlr.capture.stats import graph_stats
from pqlr.models import MODEL_NAMES, build_model, load_model, resolve_model, save_model


def model_stats(model):
    return graph_stats(capture(model, (1, 49, 10)))


def test_ds_cnn_s_matches_mlperf_tiny_reference():
    s = model_stats(build_model("ds-cnn-s", 12))
    assert abs(s["params"] - 22_600) / 22_600 < 0.03       # incl. BatchNorm
    assert abs(s["macs"] - 2_660_000) / 2_660_000 < 0.03
    shapes = {l["name"]: l["output_shape"] for l in s["layers"]}
    assert shapes["conv"] == [64, 25, 5]                    # conv 10x4 stride 2 on 49x10
    assert shapes["fc"] == [12]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_runs_and_is_deterministic(name):
    a = build_model(name, 7, seed=3).eval()
    b = build_model(name, 7, seed=3).eval()
    x = torch.randn(2, 1, 49, 10)
    ya, yb = a(x), b(x)
    assert ya.shape == (2, 7)
    assert torch.equal(ya, yb)


def test_transformer_sizes():
    assert 0.45e6 < model_stats(build_model("microbert-2l", 12))["params"] < 0.55e6   # article's student
    assert model_stats(build_model("microbert-fast", 12))["macs"] <= 5e6
    t = model_stats(build_model("tinybert-6l", 12))
    assert sum(1 for l in t["layers"] if l["op"] == "matmul") == 2 * 6          # Q.K^T and A.V per block


def test_checkpoint_round_trip(tmp_path):
    m = build_model("microbert-fast", 5, seed=1).eval()
    save_model(tmp_path / "m.safetensors", m, {"classes": list("abcde")})
    m2, meta = load_model(tmp_path / "m.safetensors")
    x = torch.randn(3, 1, 49, 10)
    assert torch.equal(m(x), m2.eval()(x))
    assert meta["classes"] == list("abcde")
    assert (tmp_path / "m.json").is_file()


def test_corrupt_checkpoint_and_unknown_name(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(PqlrError, match="bad.safetensors"):
        load_model(bad)
    with pytest.raises(PqlrError, match="unknown model 'resnet9000'"):
        build_model("resnet9000", 10)


def test_user_model_from_file(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text("import torch\nclass Net(torch.nn.Module):\n"
                 "    def __init__(self, n_classes, input_shape):\n        super().__init__()\n"
                 "        self.fc = torch.nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], n_classes)\n"
                 "    def forward(self, x):\n        return self.fc(x.flatten(1))\n")
    m = resolve_model(f"{f}:Net", 4)
    assert m(torch.zeros(1, 1, 49, 10)).shape == (1, 4)
    with pytest.raises(PqlrError, match="defines no 'Nope'"):
        resolve_model(f"{f}:Nope", 4)
