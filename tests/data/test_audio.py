"""Audio reading, band-limited resampling, clip fitting, the in-memory dataset."""

import numpy as np
import pytest
import torch

from pqlr.data import AudioDataset, fit_clip, read_audio, resample
from pqlr.data.audio import to_int16
from pqlr.errors import PqlrError

from .conftest import write_tone


def _peak_hz(x, rate):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spec) * rate / len(x)


def test_read_audio(tmp_path):
    ref = write_tone(tmp_path / "a.wav", rate=16000, channels=2)
    x, rate = read_audio(tmp_path / "a.wav", expect_rate=16000)
    assert rate == 16000 and x.dtype == np.float32 and x.ndim == 1           # stereo -> mono
    np.testing.assert_allclose(x, ref[:, 0], atol=1 / 32768)


def test_read_audio_rejects(tmp_path):
    (tmp_path / "notes.wav").write_text("this is not audio")
    with pytest.raises(PqlrError, match="notes.wav"):
        read_audio(tmp_path / "notes.wav")
    with pytest.raises(PqlrError, match="missing.wav"):
        read_audio(tmp_path / "missing.wav")
    write_tone(tmp_path / "low.wav", rate=8000)
    with pytest.raises(PqlrError, match=r"low.wav: sample rate 8000 Hz, expected 16000"):
        read_audio(tmp_path / "low.wav", expect_rate=16000)


@pytest.mark.parametrize("src,dst,freq", [(8000, 16000, 440.0), (22050, 16000, 1000.0), (16000, 8000, 1234.0),
                                          (44100, 16000, 3000.0)])
def test_resample_keeps_frequency(src, dst, freq):
    x = np.sin(2 * np.pi * freq * np.arange(src) / src)
    y = resample(x, src, dst)
    assert len(y) == dst and y.dtype == np.float32
    assert abs(_peak_hz(y, dst) - freq) <= 1.0
    ref = np.sin(2 * np.pi * freq * np.arange(dst) / dst)
    assert np.abs(y[100:-100] - ref[100:-100]).max() < 1e-3                 # same phase, same amplitude


def test_resample_removes_what_cannot_be_kept():
    x = np.sin(2 * np.pi * 9000 * np.arange(22050) / 22050)                  # above the new 8 kHz Nyquist
    assert np.abs(resample(x, 22050, 16000)[100:-100]).max() < 1e-3


def test_resample_edge_cases():
    x = np.arange(5, dtype=np.float32)
    np.testing.assert_array_equal(resample(x, 16000, 16000), x)
    assert len(resample(np.ones(7), 3, 2)) == 5
    with pytest.raises(PqlrError):
        resample(x, 0, 16000)


def test_fit_clip():
    x = np.arange(1, 5)
    np.testing.assert_array_equal(fit_clip(x, 8), [0, 0, 1, 2, 3, 4, 0, 0])   # centre pad
    y = np.zeros(100)
    y[70:80] = 1.0
    crop = fit_clip(y, 20)
    assert len(crop) == 20 and crop.sum() == 10                               # the loud part is kept
    np.testing.assert_array_equal(fit_clip(np.array([0, 5, 0, 0, 6, 0]), 2), [0, 6])


def test_to_int16_rounds_and_clips():
    np.testing.assert_array_equal(to_int16(np.array([1.0, -1.0, 0.5 / 32768, -0.5 / 32768, 2.0])),
                                  [32767, -32768, 1, 0, 32767])


def test_audio_dataset():
    audio = np.array([[0, 16384, -32768], [1, 2, 3]], dtype=np.int16)
    ds = AudioDataset(audio, [3, 1], ["a", "b"], ["x.wav", "y.wav"])
    wave, label = ds[0]
    assert isinstance(wave, torch.Tensor) and wave.dtype == torch.float32 and label == 3
    np.testing.assert_array_equal(wave.numpy(), [0.0, 0.5, -1.0])
    assert len(ds) == 2 and ds.counts(4) == [0, 1, 0, 1] and ds.subset([1]).paths == ["y.wav"]
    with pytest.raises(PqlrError):
        AudioDataset(audio.astype(np.float32), [0, 1], ["a", "b"], ["x", "y"])
    with pytest.raises(PqlrError):
        AudioDataset(audio, [0], ["a", "b"], ["x", "y"])
