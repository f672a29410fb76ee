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
    cfg = AugmentConfig(time_shift_ms=0.0, noise_prob=0.0, gain_db=(0.0, 0.0), speed=(1.0, 1.0), eq_prob=0.0)
    x = _batch()
    torch.testing.assert_close(Augment(cfg)(x, torch.Generator().manual_seed(0)), x, rtol=0, atol=1e-6)


def test_shift_moves_the_signal():
    cfg = AugmentConfig(time_shift_ms=100.0, noise_prob=0.0, gain_db=(0.0, 0.0), speed=(1.0, 1.0), eq_prob=0.0)
    x = torch.zeros(8, 16000)
    x[:, 8000] = 1.0
    y = Augment(cfg)(x, torch.Generator().manual_seed(1))
    pos = y.argmax(dim=1)
    assert torch.all((pos - 8000).abs() <= 1600) and len(set(pos.tolist())) > 1
    assert torch.allclose(y.sum(dim=1), torch.ones(8))                   # integer shifts move, not smear


def test_speed_changes_pitch():
    cfg = AugmentConfig(time_shift_ms=0.0, noise_prob=0.0, gain_db=(0.0, 0.0), speed=(1.1, 1.1), eq_prob=0.0)
    t = torch.arange(16000) / 16000
    y = Augment(cfg)(0.5 * torch.sin(2 * torch.pi * 400 * t)[None], torch.Generator().manual_seed(0))[0]
    spec = np.abs(np.fft.rfft(y[4000:12000].numpy() * np.hanning(8000)))
    assert abs(np.argmax(spec) * 2 - 440) <= 4


def test_noise_dir_and_snr(tmp_path):
    write_tone(tmp_path / "noise" / "hum.wav", rate=8000, seconds=0.3, freq=200.0)   # resampled and tiled
    cfg = AugmentConfig(time_shift_ms=0.0, noise_prob=1.0, snr_db=(10.0, 10.0), gain_db=(0.0, 0.0),
                        speed=(1.0, 1.0), eq_prob=0.0, noise_dir=str(tmp_path / "noise"))
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


# ---------------------------------------------------------------- front-end augmentation: VTLP, SpecAugment

from pqlr.data import FeatureConfig, Frontend, mel_filterbank                      # noqa: E402
from pqlr.data.augment import band_masks, vtlp_warp, warped_mel_filterbank        # noqa: E402

QUIET = dict(time_shift_ms=0.0, noise_prob=0.0, gain_db=(0.0, 0.0), speed=(1.0, 1.0), eq_prob=0.0)


def test_vtlp_factor_one_is_the_filterbank_exactly():
    fc = FeatureConfig()
    fb = warped_mel_filterbank(fc, torch.tensor([1.0, 1.0]))
    assert fb.shape == (2, fc.n_bins, fc.n_mels)
    assert np.array_equal(fb[0].numpy(), mel_filterbank(fc).T) and torch.equal(fb[0], fb[1])


def test_vtlp_warp_is_linear_below_the_knee_and_keeps_nyquist():
    f = torch.tensor([0.0, 1000.0, 3000.0, 8000.0], dtype=torch.float64)
    w = vtlp_warp(f, torch.tensor([0.9, 1.1]), boundary_hz=4000.0, nyquist_hz=8000.0)
    assert torch.allclose(w[:, :3], torch.tensor([[0.0, 900.0, 2700.0], [0.0, 1100.0, 3300.0]], dtype=torch.float64))
    assert torch.allclose(w[:, 3], torch.full((2,), 8000.0, dtype=torch.float64))
    dense = vtlp_warp(torch.linspace(0, 8000, 500, dtype=torch.float64), torch.tensor([0.9, 1.1]), 4000.0, 8000.0)
    assert torch.all(dense[:, 1:] > dense[:, :-1])                                 # monotone, continuous knee


def test_features_off_is_the_frontend_and_draws_nothing():
    x = _batch()
    front = Frontend(FeatureConfig())
    g = torch.Generator().manual_seed(5)
    out = Augment(AugmentConfig()).features(front, x, g)
    assert torch.equal(out, front(x))
    assert torch.equal(g.get_state(), torch.Generator().manual_seed(5).get_state())


def test_vtlp_moves_a_tone_up_the_mel_bands():
    fc = FeatureConfig(kind="logmel")
    t = torch.arange(16000) / 16000
    x = 0.5 * torch.sin(2 * torch.pi * 1000 * t)[None]
    front = Frontend(fc)
    peak = lambda a: int(Augment(AugmentConfig(vtlp=(a, a), **QUIET)).features(     # noqa: E731
        front, x, torch.Generator().manual_seed(0))[0, 0].mean(0).argmax())
    assert peak(0.9) < peak(1.0) < peak(1.1)
    assert peak(1.0) == int(front(x)[0, 0].mean(0).argmax())


def test_specaugment_masks_fill_with_the_clip_mean_and_leave_the_rest():
    fc = FeatureConfig(kind="logmel")                        # masks are visible directly on log-mel
    front = Frontend(fc)
    x = _batch()
    clean = front(x)[:, 0]                                   # (B, T, n_mels)
    cfg = AugmentConfig(freq_masks=2, freq_mask_width=6, time_masks=2, time_mask_width=6, **QUIET)
    a = Augment(cfg).features(front, x, torch.Generator().manual_seed(1))[:, 0]
    b = Augment(cfg).features(front, x, torch.Generator().manual_seed(1))[:, 0]
    c = Augment(cfg).features(front, x, torch.Generator().manual_seed(2))[:, 0]
    assert a.shape == clean.shape and torch.equal(a, b) and not torch.equal(a, c)
    changed = a != clean
    fill = clean.mean(dim=(1, 2))
    for i in range(len(x)):
        assert changed[i].any()
        assert torch.allclose(a[i][changed[i]], fill[i].expand(int(changed[i].sum())))
        rows, cols = changed[i].all(dim=1), changed[i].all(dim=0)         # whole frames / whole bands
        assert torch.equal(changed[i], rows[:, None] | cols[None, :])
        assert int(rows.sum()) <= 12 and int(cols.sum()) <= 12


def test_band_masks_widths_and_bounds():
    m = band_masks(500, 40, 1, 8, torch.Generator().manual_seed(0))
    width = m.sum(dim=1)
    assert m.shape == (500, 40) and int(width.max()) == 8 and int(width.min()) == 0
    starts = m.float().argmax(dim=1)[width > 0]
    assert int((starts + width[width > 0]).max()) <= 40


def test_front_end_augment_config_rejects():
    for bad in (dict(vtlp=(1.1, 0.9)), dict(vtlp=(0.3, 1.0)), dict(freq_masks=-1), dict(time_masks=True),
                dict(time_mask_width=2.5), dict(freq_mask_width=-3)):
        with pytest.raises(PqlrError):
            AugmentConfig(**bad)


def test_channel_response_shapes_and_highpass():
    from pqlr.data.augment import channel_gain_db
    f = torch.tensor([10.0, 100.0, 1000.0, 4000.0])
    flat = channel_gain_db(f, torch.zeros(1), torch.zeros(1, 2), torch.ones(1, 2), torch.zeros(1, 2), torch.tensor([1e-3]))
    assert torch.allclose(flat, torch.zeros(1, 4), atol=1e-4)                     # no tilt, bells, high-pass
    tilt = channel_gain_db(f, torch.tensor([3.0]), torch.zeros(1, 1), torch.ones(1, 1), torch.zeros(1, 1),
                           torch.tensor([1e-3]))
    assert tilt[0, 2] == pytest.approx(0.0, abs=1e-4) and tilt[0, 3] == pytest.approx(6.0, abs=1e-3)
    hp = channel_gain_db(f, torch.zeros(1), torch.zeros(1, 1), torch.ones(1, 1), torch.zeros(1, 1), torch.tensor([100.0]))
    assert hp[0, 1] == pytest.approx(-3.01, abs=0.01) and hp[0, 0] < -35 and abs(hp[0, 3]) < 1e-3


def test_channel_augmentation_filters_deterministically():
    cfg = AugmentConfig(**dict(QUIET, eq_prob=1.0))
    x = torch.randn(4, 16000, generator=torch.Generator().manual_seed(0)) * 0.05
    a = Augment(cfg)(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, Augment(cfg)(x, torch.Generator().manual_seed(1)))
    ratio = 20 * torch.log10(torch.fft.rfft(a).abs() / torch.fft.rfft(x).abs())    # (B, bins) dB, 1 Hz bins
    assert float(ratio[:, 5].max()) < -3.0        # 5 Hz: high-pass >= 20 Hz (<= -24 dB) beats tilt (<= +17) + bells
    assert float((ratio[:, 1000] - ratio[:, 2000]).abs().min()) > 0.01               # shapes differ per clip
    off = AugmentConfig(**QUIET)
    torch.testing.assert_close(Augment(off)(x, torch.Generator().manual_seed(1)), x, rtol=0, atol=1e-6)
    for bad in (dict(eq_prob=2.0), dict(eq_tilt_db=-1.0), dict(eq_bands=-1), dict(eq_highpass_hz=(0.0, 100.0)),
                dict(eq_highpass_hz=(300.0, 20.0))):
        with pytest.raises(PqlrError):
            AugmentConfig(**bad)
