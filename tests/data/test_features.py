"""Front end: shapes, torch == numpy reference, and the properties of the exported matrices."""
import numpy as np
import pytest
import torch

from pqlr.data import FeatureConfig, Frontend, dct_matrix, features_numpy, hann_window, mel_filterbank
from pqlr.data.features import hz_to_mel, mel_to_hz
from pqlr.errors import PqlrError


def test_config_shape():
    cfg = FeatureConfig()
    assert (cfg.n_frames, cfg.n_features, cfg.shape) == (49, 10, (49, 10))
    assert FeatureConfig(kind="logmel").shape == (49, 40)


@pytest.mark.parametrize("bad", [dict(kind="stft"), dict(n_mfcc=41), dict(f_max=9000.0), dict(win_length=600),
                                 dict(hop_length=0), dict(log_floor=0.0)])
def test_config_rejects(bad):
    with pytest.raises(PqlrError):
        FeatureConfig(**bad)


@pytest.mark.parametrize("kind", ["mfcc", "logmel"])
def test_frontend_matches_numpy(kind):
    cfg = FeatureConfig(kind=kind)
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    waves = np.stack([0.3 * rng.standard_normal(16000).clip(-3, 3) / 3,
                      0.5 * np.sin(2 * np.pi * 700 * t),
                      np.zeros(16000)])
    out = Frontend(cfg)(torch.tensor(waves, dtype=torch.float32))
    assert out.shape == (3, 1, 49, cfg.n_features) and out.dtype == torch.float32
    ref = features_numpy(waves, cfg)
    assert ref.shape == (3, 49, cfg.n_features)
    np.testing.assert_allclose(out[:, 0].numpy(), ref, rtol=1e-4, atol=2e-3)
    # silence hits the log floor exactly: ln(1e-6) in every mel band
    if kind == "logmel":
        np.testing.assert_allclose(ref[2], np.log(1e-6), rtol=1e-12)
    # single-clip form equals the batch row
    np.testing.assert_array_equal(features_numpy(waves[1], cfg), ref[1])


def test_frontend_step_by_step():
    """features_numpy follows the six documented steps, checked on one frame by hand."""
    cfg = FeatureConfig()
    x = np.random.default_rng(1).uniform(-0.5, 0.5, 16000)
    t = 7
    frame = x[t * 320: t * 320 + 480] * (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(480) / 480))
    spec = np.fft.fft(np.concatenate([frame, np.zeros(32)]))[:257]
    logmel = np.log(mel_filterbank(cfg) @ np.abs(spec) ** 2 + 1e-6)
    np.testing.assert_allclose(features_numpy(x, cfg)[t], dct_matrix(cfg) @ logmel, rtol=1e-10, atol=1e-10)


def test_frontend_rejects_wrong_length():
    with pytest.raises(PqlrError, match="16000"):
        Frontend()(torch.zeros(2, 8000))


def test_hann_is_periodic():
    w = hann_window(FeatureConfig())
    assert w.shape == (480,) and w[0] == 0.0 and w[240] == pytest.approx(1.0)
    np.testing.assert_allclose(w[1:], w[1:][::-1], atol=1e-12)   # periodic: symmetric about n = win/2


def test_mel_filterbank_properties():
    cfg = FeatureConfig()
    fb = mel_filterbank(cfg)
    assert fb.shape == (40, 257) and fb.dtype == np.float64
    assert fb.min() >= 0.0 and fb.max() <= 1.0
    freqs = np.arange(257) * 16000 / 512
    assert np.all(fb[:, freqs < 20.0] == 0) and np.all(fb[:, freqs > 4000.0] == 0)
    # every filter is non-empty, and peaks move up in frequency
    peaks = fb.argmax(axis=1)
    assert np.all(fb.max(axis=1) > 0.3) and np.all(np.diff(peaks) >= 0)
    # edges equally spaced in HTK mel: the centre of filter i is edge i + 1
    edges = mel_to_hz(np.linspace(hz_to_mel(20.0), hz_to_mel(4000.0), 42))
    assert hz_to_mel(1000.0) == pytest.approx(1000.0, abs=0.5)   # HTK: 1000 Hz ~ 1000 mel
    k = int(np.argmin(np.abs(freqs - edges[10])))
    assert fb[9, k] == pytest.approx(1 - abs(freqs[k] - edges[10]) / (edges[10] - edges[9] if freqs[k] < edges[10]
                                                                        else edges[11] - edges[10]))


def test_dct_orthonormal():
    cfg = FeatureConfig()
    d = dct_matrix(cfg)
    assert d.shape == (10, 40)
    np.testing.assert_allclose(d @ d.T, np.eye(10), atol=1e-12)
    full = dct_matrix(FeatureConfig(n_mfcc=40))
    np.testing.assert_allclose(full @ full.T, np.eye(40), atol=1e-12)
    np.testing.assert_allclose(full[:10], d)
    # a constant log-mel vector lives only in coefficient 0
    np.testing.assert_allclose(d @ np.ones(40), [np.sqrt(40)] + [0] * 9, atol=1e-12)
