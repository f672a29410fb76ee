"""Tests of pqlr.train: config checks, schedule, learning, determinism, resume == uninterrupted,
the feature cache, evaluation, plug-in losses, checkpoint state round trips, and DDP under torchrun."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from pqlr.data import AudioDataset, FeatureConfig, Frontend, KwsData
from pqlr.errors import PqlrError
from pqlr.io import load_state
from pqlr.models import build_model
from pqlr.train import FeatureCache, TrainConfig, evaluate, predict_logits, train
from pqlr.train.checkpoint import join_state, load_checkpoint, split_state
from pqlr.train.loop import lr_factor

FREQS = (300.0, 900.0, 2200.0)   # Hz: one tone per class


def toy_dataset(n: int, seed: int) -> AudioDataset:
    """n one-second clips: class i%3 is a noisy tone near FREQS[i%3]."""
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000.0
    audio, labels = [], []
    for i in range(n):
        c = i % len(FREQS)
        w = 0.3 * np.sin(2 * np.pi * FREQS[c] * rng.uniform(0.93, 1.07) * t + rng.uniform(0, 6.3))
        w = w + 0.03 * rng.standard_normal(t.size)
        audio.append((w * 32767).astype(np.int16))
        labels.append(c)
    return AudioDataset(np.stack(audio), labels, [f"spk{i % 4}" for i in range(n)], [f"clip{i}" for i in range(n)])


def toy_data(n_train: int = 48, seed: int = 0) -> KwsData:
    return KwsData("toy", ["low", "mid", "high"], toy_dataset(n_train, seed), toy_dataset(24, seed + 1),
                   toy_dataset(24, seed + 2), {})


def small_cnn(dropout: float = 0.0, seed: int = 0):
    return build_model("ds-cnn-s", 3, seed=seed, channels=(8, 8, 8), dropout=dropout)


def same_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture(scope="module")
def data():
    return toy_data()


@pytest.mark.parametrize("kw", [dict(epochs=-1), dict(batch_size=0), dict(lr=0.0), dict(optimizer="lion"),
                                dict(schedule="step"), dict(label_smoothing=1.0), dict(device="tpu"),
                                dict(grad_clip=0.0), dict(warmup_epochs=-1), dict(epochs=2.5)])
def test_config_rejects_bad_values(kw):
    with pytest.raises(PqlrError):
        TrainConfig(**kw)


def test_config_round_trip_and_unknown_keys():
    cfg = TrainConfig(epochs=3, lr=1e-3)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(PqlrError, match="unknown TrainConfig keys: epoch"):
        TrainConfig.from_dict({"epoch": 3})


def test_lr_schedule_warmup_then_cosine():
    cfg = TrainConfig(min_lr_ratio=0.01)
    total, warm = 100, 10
    f = [lr_factor(s, total, warm, cfg) for s in range(total)]
    assert f[:warm] == pytest.approx([(s + 1) / warm for s in range(warm)])
    assert f[warm] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[warm:], f[warm + 1:]))          # decays monotonically
    assert lr_factor(total, total, warm, cfg) == pytest.approx(0.01)
    assert lr_factor(50, total, warm, TrainConfig(schedule="constant")) == 1.0


def test_train_learns_toy_tones(data):
    model = small_cnn()
    res = train(model, data, TrainConfig(epochs=6, batch_size=8, lr=1e-2, augment=False), progress=False)
    assert res.epochs == 6 and len(res.history) == 6
    assert res.history[-1]["loss"] < res.history[0]["loss"]
    assert res.accuracy >= 0.9, res.history
    ev = evaluate(model, data.test)
    assert ev.accuracy >= 0.9 and ev.n == 24


def test_same_seed_same_weights_with_augmentation(data):
    cfg = TrainConfig(epochs=1, batch_size=8, augment=True, seed=3)
    a, b = small_cnn(dropout=0.2), small_cnn(dropout=0.2)
    train(a, data, cfg, progress=False)
    train(b, data, cfg, progress=False)
    assert same_state(a, b)
    c = small_cnn(dropout=0.2)
    train(c, data, TrainConfig(epochs=1, batch_size=8, augment=True, seed=4), progress=False)
    assert not same_state(a, c)


def test_workers_give_the_same_batches(data):
    cfg = TrainConfig(epochs=1, batch_size=8, augment=True)
    a, b = small_cnn(), small_cnn()
    train(a, data, cfg, progress=False)
    train(b, data, TrainConfig(epochs=1, batch_size=8, augment=True, num_workers=1), progress=False)
    assert same_state(a, b)


class Crash(Exception):
    pass


def test_resume_ends_with_the_same_weights(data, tmp_path):
    cfg = TrainConfig(epochs=3, batch_size=8, augment=True, warmup_epochs=0.5)
    full = small_cnn(dropout=0.3)
    ref = train(full, data, cfg, checkpoint_dir=str(tmp_path / "a"), progress=False)

    def crash_after_2(rec):
        if rec["epoch"] == 2:
            raise Crash

    part = small_cnn(dropout=0.3)
    with pytest.raises(Crash):
        train(part, data, cfg, checkpoint_dir=str(tmp_path / "b"), on_epoch=crash_after_2, progress=False)
    assert load_checkpoint(tmp_path / "b")[0] == 2
    resumed = small_cnn(dropout=0.3, seed=99)            # different init: everything must come from the checkpoint
    res = train(resumed, data, cfg, checkpoint_dir=str(tmp_path / "b"), resume=True, progress=False)
    assert same_state(full, resumed)
    assert res.epochs == 3 and res.accuracy == ref.accuracy
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["epoch-0003.json", "epoch-0003.safetensors"]
    with pytest.raises(PqlrError, match="different TrainConfig"):
        train(small_cnn(), data, TrainConfig(epochs=4, batch_size=8), checkpoint_dir=str(tmp_path / "b"),
              resume=True, progress=False)


def test_fresh_run_clears_old_checkpoints(data, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=16, augment=False)
    train(small_cnn(), data, cfg, checkpoint_dir=str(tmp_path), progress=False)
    train(small_cnn(), data, TrainConfig(epochs=1, batch_size=16, augment=False), checkpoint_dir=str(tmp_path),
          progress=False)
    assert load_checkpoint(tmp_path)[0] == 1


def test_checkpoint_state_round_trip():
    opt_like = {"state": {0: {"step": torch.tensor(3.0), "m": torch.arange(4.0)}},
                "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0], "name": None}]}
    tensors = {}
    skeleton = split_state(opt_like, tensors, "opt")
    assert json.loads(json.dumps(skeleton)) == skeleton                 # JSON-able
    back = join_state(json.loads(json.dumps(skeleton)), tensors)
    assert list(back["state"]) == [0] and torch.equal(back["state"][0]["m"], torch.arange(4.0))
    assert back["param_groups"][0]["betas"] == [0.9, 0.99] and back["param_groups"][0]["name"] is None


def test_feature_cache_computes_once_and_forgets_dead_datasets():
    cache = FeatureCache(max_entries=2)
    ds = toy_dataset(6, 5)
    x1, y1 = cache.get(ds, FeatureConfig())
    x2, _ = cache.get(ds, FeatureConfig())
    assert x2 is x1 and x1.shape == (6, 1, 49, 10) and y1.tolist() == [0, 1, 2, 0, 1, 2]
    assert torch.equal(x1, Frontend(FeatureConfig())(ds.waves()))
    x3, _ = cache.get(ds, FeatureConfig(kind="logmel"))
    assert x3.shape == (6, 1, 49, 40) and len(cache) == 2
    del ds
    assert len(cache) == 0
    for seed in range(3):
        cache.get(toy_dataset(2, seed), FeatureConfig())
    assert len(cache) <= 2


def test_evaluate_and_predict_agree(data):
    model = small_cnn()
    ev = evaluate(model, data.test)
    logits = predict_logits(model, data.test)
    assert logits.shape == (24, 3)
    conf = np.array(ev.confusion)
    assert conf.sum() == 24 and conf.sum(axis=1).tolist() == [8, 8, 8]
    assert ev.accuracy == pytest.approx(np.trace(conf) / 24)
    model.eval()
    with torch.no_grad():
        direct = model(Frontend(FeatureConfig())(data.test.waves()))
    assert torch.allclose(direct, logits, atol=1e-6)


def test_wrong_input_shape_is_refused(data):
    model = build_model("ds-cnn-s", 3, input_shape=(49, 40), channels=(8, 8))
    with pytest.raises(PqlrError, match=r"model expects input \(49, 40\)"):
        train(model, data, TrainConfig(epochs=1), progress=False)


def test_loss_fn_gets_inputs_and_extra_loss_shrinks_gammas(data):
    seen = []

    def ce(logits, labels, inputs):
        seen.append(tuple(inputs.shape[1:]))
        return torch.nn.functional.cross_entropy(logits, labels)

    def l1_gamma(model):
        return sum(m.weight.abs().sum() for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))

    def gamma_l1(model):
        return float(l1_gamma(model).detach())

    cfg = TrainConfig(epochs=2, batch_size=8, augment=False, optimizer="sgd", lr=0.05)
    plain, slim = small_cnn(), small_cnn()
    train(plain, data, cfg, loss_fn=ce, progress=False)
    assert seen and set(seen) == {(1, 49, 10)}
    train(slim, data, cfg, extra_loss=l1_gamma, progress=False)
    assert gamma_l1(slim) < 0.8 * gamma_l1(plain)


def test_empty_training_split_is_refused():
    empty = toy_dataset(1, 0)
    with pytest.raises(PqlrError, match="need >= 2"):
        train(small_cnn(), KwsData("t", ["a", "b", "c"], empty, empty, empty, {}), TrainConfig(), progress=False)


# ------------------------------------------------------------------------------- DDP, 2 CPU ranks

def write_tone_folder(root: Path, speakers: int = 6, per_speaker: int = 2) -> None:
    """A Speech Commands layout folder: <word>/<speaker>_nohash_<n>.wav, one tone per word."""
    import soundfile as sf
    for c, word in enumerate(("low", "mid", "high")):
        ds = toy_dataset(speakers * per_speaker * 3, seed=c)
        clips = [ds.audio[i] for i in range(len(ds)) if ds.labels[i] == c]
        (root / word).mkdir(parents=True, exist_ok=True)
        for j, clip in enumerate(clips):
            sf.write(root / word / f"s{j % speakers}_nohash_{j // speakers}.wav", clip, 16000, subtype="PCM_16")


SPY = textwrap.dedent("""
    import os, sys
    import pqlr.train
    from pqlr.io import save_state
    real = pqlr.train.train
    def spy(model, *a, **k):
        res = real(model, *a, **k)
        save_state(os.path.join(sys.argv[1], "rank%s.safetensors" % os.environ["RANK"]), model.state_dict())
        return res
    pqlr.train.train = spy
    from pqlr.cli import main
    sys.exit(main(sys.argv[2:]))
""")


def test_ddp_two_cpu_ranks_agree(tmp_path):
    write_tone_folder(tmp_path / "words")
    (tmp_path / "spy.py").write_text(SPY)
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc-per-node", "2", str(tmp_path / "spy.py"), str(tmp_path),
           "train", "--model", "ds-cnn-s", "--dataset", f"speech_commands:{tmp_path / 'words'}", "--epochs", "1",
           "--batch-size", "4", "--out", str(tmp_path / "run"), "--json", str(tmp_path / "m.json"), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, _ = load_state(tmp_path / "rank0.safetensors")
    r1, _ = load_state(tmp_path / "rank1.safetensors")
    assert r0.keys() == r1.keys() and all(torch.equal(r0[k], r1[k]) for k in r0)
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["epochs"] == 1 and 0.0 <= metrics["accuracy"] <= 1.0
    saved, meta = load_state(tmp_path / "run" / "model.safetensors")
    assert all(torch.equal(saved[k], r0[k]) for k in saved)
    assert meta["classes"] == ["high", "low", "mid"]
    assert proc.stdout.count("trained ds-cnn-s") == 1                  # only rank 0 prints
