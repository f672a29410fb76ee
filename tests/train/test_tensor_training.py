"""Training and evaluation on tensor data: real digits (npz) learn above chance, the anomaly task end to
end (a structured synthetic set and the real-recording set of examples/data/make_anomaly.py), the
rank-based ROC AUC against a brute-force pair count, refusals, and `pqlr train/eval` on npz data."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pqlr.cli import main
from pqlr.data import TensorData, TensorSplit, load_dataset
from pqlr.errors import PqlrError
from pqlr.train import DEFAULT_CACHE, TrainConfig, anomaly_scores, evaluate, predict_logits, roc_auc, train

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / "data" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> str:
    """The real sklearn digits as npz: x (N, 1, 16, 16)."""
    return script("make_digits").make(str(tmp_path_factory.mktemp("digits")), size=16, channels=1, images=False)


def mlp(n_in: int, n_out: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, 32), nn.ReLU(), nn.Linear(32, n_out))


class AE(nn.Module):
    """A small autoencoder over (B, D) inputs, standardised by fixed train statistics inside."""

    def __init__(self, x: torch.Tensor, hidden: int = 32, code: int = 4, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        d = x[0].numel()
        self.register_buffer("mean", x.reshape(len(x), -1).mean(0))
        self.register_buffer("std", x.reshape(len(x), -1).std(0).clamp_min(1e-3))
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, code),
                                 nn.Linear(code, hidden), nn.ReLU(), nn.Linear(hidden, d))

    def forward(self, x):
        z = (x.reshape(len(x), -1) - self.mean) / self.std
        return (self.net(z) * self.std + self.mean).reshape(x.shape)


# ------------------------------------------------------------------------------------- ROC AUC

def brute_auc(scores, labels) -> float:
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(6))
def test_roc_auc_matches_pair_count(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 60))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.integers(0, 6, n) + labels * rng.integers(0, 3, n)          # many ties
    assert roc_auc(scores, labels) == pytest.approx(brute_auc(scores.tolist(), labels.tolist()), abs=1e-12)


def test_roc_auc_edges_and_refusals():
    assert roc_auc([0.1, 0.2, 0.9, 0.8], [0, 0, 1, 1]) == 1.0
    assert roc_auc([0.9, 0.8, 0.1], [0, 0, 1]) == 0.0
    assert roc_auc([0.5] * 4, [0, 1, 0, 1]) == 0.5
    with pytest.raises(PqlrError, match="have 3 normal, 0 anomalous"):
        roc_auc([1, 2, 3], [0, 0, 0])
    with pytest.raises(PqlrError, match="labels must be 0"):
        roc_auc([1, 2, 3], [0, 1, 2])


# ------------------------------------------------------------------------------ classification

def test_digits_npz_trains_above_chance(digits, capsys):
    data = load_dataset(f"npz:{digits}")
    assert data.input_shape == (1, 16, 16) and len(data.test) == 359 and data.task == "classify"
    model = mlp(256, 10)
    res = train(model, data, TrainConfig(epochs=2, batch_size=32, lr=3e-3), progress=True)
    err = capsys.readouterr().err
    assert err.count("waveform augmentation skipped") == 1 and "val_acc" in err
    ev = evaluate(model, data.test)
    assert ev.metric == "accuracy" and ev.score == ev.accuracy and ev.accuracy > 0.6, ev   # chance: 0.1
    assert res.history[-1]["val_metric"] == "accuracy" and res.accuracy > 0.6
    conf = np.array(ev.confusion)
    assert conf.shape == (10, 10) and conf.sum() == 359
    x, y = DEFAULT_CACHE.get(data.test, None)
    assert x is data.test.x and y is data.test.labels                      # tensors as they are
    logits = predict_logits(model, data.test)
    assert logits.shape == (359, 10) and float((logits.argmax(1) == y).float().mean()) == ev.accuracy


def test_zoo_model_on_one_channel_tensors_and_same_seed_same_weights(digits):
    from pqlr.models import build_model
    data = load_dataset(f"npz:{digits}", per_class=20)
    a = build_model("ds-cnn-s", 10, input_shape=(16, 16), channels=(8, 8), seed=0)
    b = build_model("ds-cnn-s", 10, input_shape=(16, 16), channels=(8, 8), seed=0)
    cfg = TrainConfig(epochs=1, batch_size=16)                               # augment=True: skipped
    train(a, data, cfg, progress=False)
    train(b, data, cfg, progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert evaluate(a, data.val).n == len(data.val)


# ------------------------------------------------------------------------------------- anomaly

def subspace_set(seed: int = 0) -> TensorData:
    """Normal: 24-D points on a random 3-D linear subspace (+ small noise); anomalous: the same plus a
    random off-subspace direction. Train holds normal points only."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((3, 24))

    def normal(n):
        return rng.standard_normal((n, 3)) @ basis + 0.05 * rng.standard_normal((n, 24))

    def anomalous(n):
        return normal(n) + 1.5 * rng.standard_normal((n, 24))

    def split(nn_, na):
        x = np.concatenate([normal(nn_), anomalous(na)]).astype(np.float32)
        return TensorSplit(torch.from_numpy(x), torch.tensor([0] * nn_ + [1] * na), task="anomaly")

    return TensorData("subspace", ["normal", "anomalous"], split(400, 0), split(40, 40), split(60, 60),
                      {}, task="anomaly")


def test_anomaly_task_end_to_end_on_a_structured_set():
    data = subspace_set()
    model = AE(data.train.x, hidden=32, code=3)
    cfg = TrainConfig(epochs=10, batch_size=32, lr=3e-3, task="anomaly")
    res = train(model, data, cfg, progress=False)
    assert res.history[-1]["val_metric"] == "roc_auc" and res.history[-1]["train_acc"] is None
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    ev = evaluate(model, data.test)                                          # task from the split
    assert ev.metric == "roc_auc" and ev.accuracy == ev.score > 0.9 and ev.confusion == []
    scores = anomaly_scores(model, data.test)
    assert np.allclose(scores.numpy(), ev.scores) and ev.loss == pytest.approx(float(scores.mean()), rel=1e-5)
    assert roc_auc(scores.numpy(), data.test.labels.numpy()) == pytest.approx(ev.score)


def test_anomaly_takes_a_custom_loss_and_refuses_bad_setups():
    data = subspace_set(1)
    seen = []

    def l1(outputs, labels, inputs):
        seen.append((tuple(outputs.shape[1:]), tuple(inputs.shape[1:]), int(labels.sum())))
        return (outputs - inputs).abs().mean()

    train(AE(data.train.x), data, TrainConfig(epochs=1, batch_size=64, task="anomaly"), loss_fn=l1, progress=False)
    assert seen and set(seen) == {((24,), (24,), 0)}
    with pytest.raises(PqlrError, match="anomaly set but TrainConfig.task is classify"):
        train(AE(data.train.x), data, TrainConfig(epochs=1), progress=False)
    dirty = TensorData("dirty", data.classes, data.test, data.val, data.test, {}, task="anomaly")
    with pytest.raises(PqlrError, match="holds 60 anomalous sample"):
        train(AE(data.train.x), dirty, TrainConfig(epochs=1, task="anomaly"), progress=False)
    with pytest.raises(PqlrError, match="must reconstruct its input"):
        train(mlp(24, 2), data, TrainConfig(epochs=1, task="anomaly"), progress=False)
    with pytest.raises(PqlrError, match="have 40 normal, 0 anomalous"):
        evaluate(AE(data.train.x), data.train.subset(range(40)))


@pytest.mark.skipif(not (SHARED / "background_noise").is_dir(), reason="real sample data missing")
def test_make_anomaly_real_recordings_learnable(tmp_path):
    path = script("make_anomaly").make(str(tmp_path / "ad.npz"), SHARED)
    data = load_dataset(f"npz:{path}")                                         # task from the archive
    assert data.task == "anomaly" and data.input_shape == (640,) and data.train.labels.sum() == 0
    assert int(data.test.labels.sum()) == 240 and int(data.val.labels.sum()) == 90
    model = AE(data.train.x, hidden=64, code=8)
    res = train(model, data, TrainConfig(epochs=3, batch_size=64, lr=1e-3, task="anomaly"), progress=False)
    ev = evaluate(model, data.test)
    assert ev.metric == "roc_auc" and ev.score > 0.75, (ev.score, res.history)
    assert res.accuracy > 0.75


# ------------------------------------------------------------------------------------------ CLI

USER_MODELS = '''
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, n_classes, input_shape):
        super().__init__()
        n = 1
        for v in input_shape:
            n *= v
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(n, 32), nn.ReLU(), nn.Linear(32, n_classes))

    def forward(self, x):
        return self.body(x)

class AE(nn.Module):
    def __init__(self, n_classes, input_shape):
        super().__init__()
        d = input_shape[0]
        self.body = nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, 3), nn.Linear(3, 16), nn.ReLU(),
                                  nn.Linear(16, d))

    def forward(self, x):
        return self.body(x)
'''


def test_cli_train_and_eval_on_npz(digits, tmp_path, capsys):
    (tmp_path / "m.py").write_text(USER_MODELS)
    run = tmp_path / "run"
    assert main(["train", "--model", f"{tmp_path / 'm.py'}:Net", "--dataset", f"npz:{digits}", "--epochs", "2",
                 "--batch-size", "32", "--out", str(run), "--json", str(tmp_path / "t.json"), "--no-progress"]) == 0
    metrics = json.loads((tmp_path / "t.json").read_text())
    assert metrics["metric"] == "accuracy" and metrics["accuracy"] > 0.6 and metrics["task"] == "classify"
    assert "test accuracy" in capsys.readouterr().out
    assert main(["eval", "--model", str(run / "model.safetensors"), "--dataset", f"npz:{digits}",
                 "--json", str(tmp_path / "e.json"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["accuracy"] == metrics["accuracy"]
    assert "(359 samples): accuracy" in capsys.readouterr().out

    np.savez(tmp_path / "ad.npz", **{k: getattr(subspace_set(2), s).x.numpy() if k[0] == "x" else
                                     getattr(subspace_set(2), s).labels.numpy()
                                     for k, s in (("x", "train"), ("y", "train"), ("x_val", "val"),
                                                  ("y_val", "val"), ("x_test", "test"), ("y_test", "test"))})
    assert main(["train", "--model", f"{tmp_path / 'm.py'}:AE", "--dataset", f"npz:{tmp_path / 'ad.npz'}",
                 "--task", "anomaly", "--epochs", "2", "--out", str(tmp_path / "ae"), "--no-progress"]) == 0
    assert "test roc_auc" in capsys.readouterr().out
    assert main(["eval", "--model", str(tmp_path / "ae" / "model.safetensors"), "--dataset",
                 f"npz:{tmp_path / 'ad.npz'}", "--no-progress"]) == 0        # task from the checkpoint
    assert "(120 samples): roc_auc" in capsys.readouterr().out


def test_cli_bad_tensor_input_is_one_line_exit_2(digits, tmp_path, capsys):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    for argv, needle in [
        (["--dataset", f"npz:{tmp_path / 'bad.npz'}"], "bad.npz: not an .npz archive"),
        (["--dataset", f"npz:{digits}", "--task", "anomaly"], "task anomaly wants 2 classes"),
        (["--dataset", f"images:{tmp_path / 'none'}"], "no such folder"),
        (["--dataset", f"npz:{digits}", "--input-shape", "3x16x16"], "but the model wants (3, 16, 16)"),
    ]:
        rc = main(["train", "--model", "ds-cnn-s", *argv, "--out", str(tmp_path / "r"), "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and needle in err and err.count("\n") == 1, err
