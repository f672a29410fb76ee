"""Waveform augmentation: shapes, seeded determinism, identity when switched off, noise folders, SNR mixing."""
import numpy as np
import pytest
import torch

from pqlr.data import Augment, AugmentConfig
from pqlr.data.augment import colored_noise, mix_at_snr
from pqlr.errors import PqlrError

from .conftest import write_tone


def _batch():
    t = torch.arange(16000) / 16000
    return torch.stack([0.5 * torch.sin(2 * torch.pi * 440 * t), torch.zeros(16000), 0.1 * torch.sin(2 * torch.pi * 90 * t)])


def test_shape_range_and_determinism():
    aug = Augment(AugmentConfig())
    x = _batch()
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    c = aug(x, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.abs().max() <= 1.0
    assert a[1].abs().max() > 0          # silence gets noise too (noise_prob 0.8 hits row 1 at this seed)


def test_identity_when_off():
    cfg = AugmentConfig(time_shift_ms=0.0, noise_prob=0.0, gain_db=(0.0, 0.0), speed=(1.0, 1.0))
    x = _batch()
    torch.testing.assert_close(Augment(cfg)(x, torch.Generator().manual_seed(0)), x, rtol=0, atol=1e-6)


def test_shift_moves_the_signal():
    cfg = AugmentConfig(time_shift_ms=100.0, noise_prob=0.0, gain_db=(0.0, 0.0), speed=(1.0, 1.0))
    x = torch.zeros(8, 16000)
    x[:, 8000] = 1.0
    y = Augment(cfg)(x, torch.Generator().manual_seed(1))
    pos = y.argmax(dim=1)
    assert torch.all((pos - 8000).abs() <= 1600) and len(set(pos.tolist())) > 1
    assert torch.allclose(y.sum(dim=1), torch.ones(8))                   # integer shifts move, not smear


def test_speed_changes_pitch():
    cfg = AugmentConfig(time_shift_ms=0.0, noise_prob=0.0, gain_db=(0.0, 0.0), speed=(1.1, 1.1))
    t = torch.arange(16000) / 16000
    y = Augment(cfg)(0.5 * torch.sin(2 * torch.pi * 400 * t)[None], torch.Generator().manual_seed(0))[0]
    spec = np.abs(np.fft.rfft(y[4000:12000].numpy() * np.hanning(8000)))
    assert abs(np.argmax(spec) * 2 - 440) <= 4


def test_noise_dir_and_snr(tmp_path):
    write_tone(tmp_path / "noise" / "hum.wav", rate=8000, seconds=0.3, freq=200.0)   # resampled and tiled
    cfg = AugmentConfig(time_shift_ms=0.0, noise_prob=1.0, snr_db=(10.0, 10.0), gain_db=(0.0, 0.0),
                        speed=(1.0, 1.0), noise_dir=str(tmp_path / "noise"))
    x = _batch()
    y = Augment(cfg)(x, torch.Generator().manual_seed(0))
    added = (y - x)[0]
    snr = 10 * torch.log10(x[0].square().mean() / added.square().mean())
    assert abs(float(snr) - 10.0) < 0.1
    (tmp_path / "empty").mkdir()
    with pytest.raises(PqlrError, match="no audio files"):
        Augment(AugmentConfig(noise_dir=str(tmp_path / "empty")))


def test_config_rejects():
    for bad in (dict(noise_prob=1.5), dict(snr_db=(20.0, 5.0)), dict(speed=(0.0, 1.0)), dict(time_shift_ms=-1.0),
                dict(noise_dir="/nonexistent/noise")):
        with pytest.raises(PqlrError):
            AugmentConfig(**bad)


def test_colored_noise_slopes():
    g = torch.Generator().manual_seed(0)
    n = colored_noise((3, 16000), torch.tensor([0.0, 1.0, 2.0]), g)
    assert torch.allclose(n.square().mean(dim=1), torch.ones(3), atol=1e-4)
    low = [float(torch.fft.rfft(r).abs()[1:400].square().mean() / torch.fft.rfft(r).abs()[4000:].square().mean()) for r in n]
    assert low[0] < 2 and low[0] < low[1] < low[2]                         # white flat, brown steepest


def test_mix_at_snr():
    s = np.sin(np.arange(1000) / 5.0)
    n = np.random.default_rng(0).standard_normal(1000)
    out = mix_at_snr(s, n, 6.0)
    assert 10 * np.log10(np.mean(s ** 2) / np.mean((out - s) ** 2)) == pytest.approx(6.0)
