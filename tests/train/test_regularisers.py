"""Training regularisers: mixup (seeded plan, config checks) and the weight EMA (math, result, resume),
plus the front-end augmentation (VTLP, SpecAugment) inside the training loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pqlr.data import AudioDataset, AugmentConfig, KwsData
from pqlr.errors import PqlrError
from pqlr.models import build_model
from pqlr.train import TrainConfig, train
from pqlr.train.checkpoint import load_checkpoint
from pqlr.train.ema import WeightEma
from pqlr.train.loop import mixup_plan

FREQS = (300.0, 900.0, 2200.0)   # Hz: one tone per class


def tones(n: int, seed: int) -> AudioDataset:
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000.0
    audio = [(0.3 * np.sin(2 * np.pi * FREQS[i % 3] * rng.uniform(0.93, 1.07) * t) * 32767).astype(np.int16)
             for i in range(n)]
    return AudioDataset(np.stack(audio), [i % 3 for i in range(n)], [f"s{i % 4}" for i in range(n)],
                        [f"c{i}" for i in range(n)])


@pytest.fixture(scope="module")
def data():
    return KwsData("toy", ["low", "mid", "high"], tones(32, 0), tones(12, 1), tones(12, 2), {})


def small_cnn(seed: int = 0):
    return build_model("ds-cnn-s", 3, seed=seed, channels=(8, 8, 8))


def same_state(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("kw", [dict(mixup=-0.1), dict(mixup=11.0), dict(ema_decay=1.0), dict(ema_decay=-0.5)])
def test_config_rejects_bad_regulariser_values(kw):
    with pytest.raises(PqlrError):
        TrainConfig(**kw)


def test_mixup_plan_is_seeded_per_step():
    cfg = TrainConfig(mixup=0.4, seed=1)
    lam, perm = mixup_plan(cfg, 2, 5, 0, 16)
    lam2, perm2 = mixup_plan(cfg, 2, 5, 0, 16)
    assert 0.0 <= lam <= 1.0 and lam == lam2 and torch.equal(perm, perm2)
    assert sorted(perm.tolist()) == list(range(16))
    assert mixup_plan(cfg, 2, 6, 0, 16)[0] != lam and mixup_plan(TrainConfig(mixup=0.4, seed=2), 2, 5, 0, 16)[0] != lam


def test_ema_math_warmup_and_integer_buffers():
    model = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    ema = WeightEma(model, decay=0.9)
    w0 = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model[1].num_batches_tracked.fill_(7)
    ema.update(model)                                   # update 0: d = min(0.9, 1/10) = 0.1
    assert torch.allclose(ema.module[0].weight, 0.1 * w0 + 0.9 * (w0 + 1.0))
    assert int(ema.module[1].num_batches_tracked) == 7
    ema.update(model)                                   # update 1: d = 2/11
    assert torch.allclose(ema.module[0].weight, (2 / 11) * (0.1 * w0 + 0.9 * (w0 + 1.0)) + (9 / 11) * (w0 + 1.0))
    other = torch.nn.Sequential(torch.nn.Linear(2, 1), torch.nn.BatchNorm1d(1))
    ema.copy_to(other)
    assert torch.equal(other[0].weight, ema.module[0].weight)


def test_ema_result_differs_from_plain_and_resume_matches(data, tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=8, augment=True, ema_decay=0.9, mixup=0.3, warmup_epochs=0.5)
    plain = small_cnn()
    train(plain, data, TrainConfig(epochs=2, batch_size=8, augment=True, mixup=0.3, warmup_epochs=0.5),
          progress=False)
    full = small_cnn()
    train(full, data, cfg, checkpoint_dir=str(tmp_path / "a"), progress=False)
    assert not same_state(plain, full)
    states = load_checkpoint(tmp_path / "a")[1]
    assert set(states["ema"]) == {"module", "updates"} and states["ema"]["updates"] == 2 * 4

    def stop(rec):
        if rec["epoch"] == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        train(small_cnn(), data, cfg, checkpoint_dir=str(tmp_path / "b"), on_epoch=stop, progress=False)
    resumed = small_cnn(seed=5)
    train(resumed, data, cfg, checkpoint_dir=str(tmp_path / "b"), resume=True, progress=False)
    assert same_state(full, resumed)


def test_front_end_augmentation_trains_deterministically(data):
    acfg = AugmentConfig(vtlp=(0.9, 1.1), freq_masks=2, time_masks=2)
    cfg = TrainConfig(epochs=1, batch_size=8)
    a, b, c = small_cnn(), small_cnn(), small_cnn()
    train(a, data, cfg, augment_config=acfg, progress=False)
    train(b, data, cfg, augment_config=acfg, progress=False)
    train(c, data, cfg, augment_config=AugmentConfig(), progress=False)
    assert same_state(a, b) and not same_state(a, c)


def test_cli_flags_reach_the_run_and_bad_ones_exit_2(tmp_path, capsys):
    import json

    import soundfile as sf

    from pqlr.cli import main
    from pqlr.io import load_state
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000.0
    for word, f in (("low", 300.0), ("high", 2200.0)):
        (tmp_path / "w" / word).mkdir(parents=True)
        for j in range(6):
            w = 0.3 * np.sin(2 * np.pi * f * t) + 0.03 * rng.standard_normal(t.size)
            sf.write(tmp_path / "w" / word / f"s{j}_nohash_0.wav", (w * 32767).astype(np.int16), 16000)
    base = ["train", "--model", "ds-cnn-s", "--dataset", f"speech_commands:{tmp_path / 'w'}", "--epochs", "1",
            "--batch-size", "4", "--no-progress", "--out", str(tmp_path / "r")]
    assert main(base + ["--vtlp", "0.9,1.1", "--freq-masks", "1", "--time-masks", "1", "--eq-prob", "0.5",
                        "--mixup", "0.2", "--ema-decay", "0.9"]) == 0
    meta = load_state(tmp_path / "r" / "model.safetensors")[1]
    assert meta["augment"]["vtlp"] == [0.9, 1.1] and meta["augment"]["eq_prob"] == 0.5
    assert meta["train"]["mixup"] == 0.2 and meta["train"]["ema_decay"] == 0.9
    json.dumps(meta)
    capsys.readouterr()
    for bad in (["--vtlp", "0.9"], ["--vtlp", "1.2,0.8"], ["--eq-prob", "2"], ["--mixup", "-1"]):
        assert main(base + bad) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0]
