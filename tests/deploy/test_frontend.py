"""The fixed-point C frontend against the float reference (pqlr.data.features.features_numpy), both
quantized to the model's int8 input: real speech, synthetic extremes, other configs; plus the FFTs
alone, the streaming API under ASan/UBSan, the generated header, float-free cross-compiles, and the
cross-compiled frontend in QEMU (rv32imac, cortex-m4) bit-exact with the host."""
from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pqlr.data.audio import fit_clip, read_audio, resample, to_int16
from pqlr.data.features import FeatureConfig, features_numpy
from pqlr.deploy.frontend import (FRONTEND_DIR, FRONTEND_SOURCES, FrontendQuant, build_frontend, c_features,
                                  frontend_header, frontend_tables, write_frontend)
from pqlr.errors import PqlrError, UnsupportedError
from pqlr.io import write_text
from pqlr.primitives import choose_act_qparams, quantize_act
from pqlr.runtime import INCLUDE_DIR
from pqlr.runtime.build import compile_c

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
CFG = FeatureConfig()


def compare(waves, cfg, scale=None, zp=None):
    """(C int8, Python-quantized int8) for int16 clips; scale/zp from the clips' feature range if not given."""
    f = features_numpy(waves / 32768.0, cfg)
    if scale is None:
        scale, zp = choose_act_qparams(float(f.min()), float(f.max()), 8)
    return c_features(waves, cfg, scale, zp).astype(np.int64), quantize_act(f, scale, zp, 8).astype(np.int64)


@pytest.fixture(scope="module")
def real_clips():
    sc = sorted((DATA / "speech_commands_mini").glob("*/*.wav"))
    fsdd = sorted((DATA / "fsdd" / "recordings").glob("*.wav"))[::30]             # 100 of 3000
    if not sc or not fsdd:
        pytest.skip(f"real speech data not found under {DATA}")
    waves = [to_int16(fit_clip(read_audio(p, 16000)[0], 16000)) for p in sc]
    for p in fsdd:
        x, rate = read_audio(p)
        waves.append(to_int16(fit_clip(resample(x, rate, 16000), 16000)))
    return np.stack(waves)                                                       # (400, 16000)


@pytest.mark.parametrize("kind", ["mfcc", "logmel"])
def test_real_speech_matches_python(real_clips, kind):
    c, ref = compare(real_clips, FeatureConfig(kind=kind))
    err = np.abs(c - ref)
    print(f"{kind}: {err.size} values, max {err.max()} LSB, mean {err.mean():.2e} LSB, exact {np.mean(err == 0):.5f}")
    assert err.max() <= 1
    assert np.mean(err == 0) >= 0.9999         # measured: 1.00000 (mfcc, 196000 values), 0.99997 (logmel)


def synthetic_clips():
    rng = np.random.default_rng(3)
    n, t = CFG.clip_samples, np.arange(CFG.clip_samples) / 16000.0
    clips = [np.zeros(n),                                               # digital silence
             np.sign(np.sin(2 * np.pi * 440 * t)) * 0.99997,            # full-scale square wave
             np.clip(rng.standard_normal(n) * 0.8, -1, 1),              # clipped loud noise
             rng.integers(-1, 2, n) / 32768.0,                          # +-1 LSB noise
             np.sin(2 * np.pi * (50 + 3950 * t / 2) * t) * 0.5,         # chirp 50 Hz -> 4 kHz
             np.where(np.arange(n) % 997 == 0, 0.9, 0.0),               # sparse impulses
             0.3 + rng.standard_normal(n) * 1e-4,                       # DC offset + hiss
             rng.standard_normal(n) * np.exp(np.linspace(np.log(1e-5), np.log(0.5), n))]   # 94 dB ramp
    return to_int16(np.stack(clips))


@pytest.mark.parametrize("kind,scale_div", [("mfcc", 1), ("mfcc", 8), ("logmel", 1), ("logmel", 8)])
def test_synthetic_extremes_match_python(kind, scale_div):
    """Silence, clipping, 1-LSB signals, tones; scale_div 8 is an 8x finer input step (a harder test)."""
    cfg = FeatureConfig(kind=kind)
    waves = synthetic_clips()
    f = features_numpy(waves / 32768.0, cfg)
    scale, zp = choose_act_qparams(float(f.min()), float(f.max()), 8)
    c, ref = compare(waves, cfg, scale / scale_div, zp)
    err = np.abs(c - ref)
    assert err.max() <= 1 and np.mean(err == 0) >= 0.99, (err.max(), np.mean(err == 0))


@pytest.mark.parametrize("cfg", [FeatureConfig(n_fft=1024, win_length=640, hop_length=160, n_mels=64, n_mfcc=13),
                                 FeatureConfig(kind="logmel", clip_samples=8000, n_fft=256, win_length=256,
                                               hop_length=128, n_mels=32, f_min=0.0, f_max=8000.0)],
                         ids=["1024fft-64mel-13mfcc", "256fft-logmel-8k-wideband"])
def test_other_configs_match_python(cfg):
    rng = np.random.default_rng(5)
    waves = to_int16(rng.standard_normal((6, cfg.clip_samples)) * np.logspace(-4, -0.5, 6)[:, None])
    c, ref = compare(waves, cfg)
    assert c.shape == (6, *cfg.shape)
    err = np.abs(c - ref)
    assert err.max() <= 1 and np.mean(err == 0) >= 0.99


def _cos_q31(n):
    cos = np.floor(np.cos(2 * np.pi * np.arange(n // 2) / n) * 2.0 ** 31 + 0.5)
    return np.minimum(cos, 2 ** 31 - 1).astype(np.int32)


def test_ffts_block_floating_point_match_numpy():
    """Complex FFT and packed real FFT, tiny to full-scale blocks: error <= 2^-22 of the peak + a few LSBs."""
    lib = ctypes.CDLL(str(build_frontend(CFG, FrontendQuant(0.5, 0))))
    lib.pqlr_fft_q31.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_uint32]
    lib.pqlr_rfft_q31.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p]
    lib.pqlr_fft_q31.restype = lib.pqlr_rfft_q31.restype = ctypes.c_int32
    rng = np.random.default_rng(7)
    for log2n in (4, 9, 10):
        n = 1 << log2n
        cos = _cos_q31(n)
        for amp in (1, 1000, (1 << 29) - 1):               # tiny, medium and full-scale blocks
            z = np.clip(np.round(rng.standard_normal((n, 2)) * amp / 3), -amp, amp).astype(np.int32)
            z[rng.integers(n), 0] = amp                    # one full-amplitude sample
            data = np.ascontiguousarray(z.copy())
            e = lib.pqlr_fft_q31(data.ctypes.data, log2n, cos.ctypes.data, 1)
            got = (data[:, 0] + 1j * data[:, 1]) * 2.0 ** e
            want = np.fft.fft(z[:, 0] + 1j * z[:, 1].astype(np.float64))
            assert np.abs(got - want).max() <= 2.0 ** e * 4 * log2n + np.abs(want).max() * 2.0 ** -22

            x = np.ascontiguousarray(z.reshape(-1)[:n])    # n reals
            want = np.fft.rfft(x.astype(np.float64))       # (n/2 + 1,)
            e = lib.pqlr_rfft_q31(x.ctypes.data, log2n, cos.ctypes.data)
            got = np.r_[x[0], x[2:n:2] + 1j * x[3:n:2], x[1]] * 2.0 ** e
            assert np.abs(got - want).max() <= 2.0 ** e * 4 * log2n + np.abs(want).max() * 2.0 ** -22


STREAM_HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "pqlr_frontend.h"
/* push argv[2] hops of the int16 file argv[1]; print each push's result, then the window */
static pqlr_frontend_state s;
int main(int argc, char **argv) {
    static int16_t hop[PQLR_FE_HOP];
    static int8_t win[PQLR_FE_WINDOW_BYTES];
    if (argc != 3) return 2;
    FILE *f = fopen(argv[1], "rb");
    int n = atoi(argv[2]);
    if (f == NULL) return 2;
    pqlr_frontend_init(&s);
    if (pqlr_frontend_push(NULL, hop) != PQLR_ERR_ARG || pqlr_frontend_clip(&s, NULL, win) != PQLR_ERR_ARG) return 3;
    for (int i = 0; i < n; ++i) {
        if (fread(hop, sizeof(int16_t), PQLR_FE_HOP, f) != PQLR_FE_HOP) return 4;
        printf("%d", pqlr_frontend_push(&s, hop));
    }
    printf("\n%u\n", (unsigned)pqlr_frontend_window(&s, win));
    for (int i = 0; i < PQLR_FE_WINDOW_BYTES; ++i) printf("%d ", win[i]);
    printf("\n");
    fclose(f);
    return 0;
}
"""


def test_streaming_push_equals_whole_clip_under_sanitizers(tmp_path):
    quant = FrontendQuant(0.45, 59)
    write_text(tmp_path / "gen" / "pqlr_frontend_tables.h", frontend_header(CFG, quant))
    write_text(tmp_path / "stream_main.c", STREAM_HARNESS)
    exe = compile_c([*(FRONTEND_DIR / s for s in FRONTEND_SOURCES), tmp_path / "stream_main.c"], sanitize=True,
                    include_dirs=[FRONTEND_DIR, tmp_path / "gen"], name="frontend_stream")
    rng = np.random.default_rng(11)
    hop, frames = CFG.hop_length, CFG.n_frames
    pcm = to_int16(rng.standard_normal(90 * hop) * np.linspace(0.001, 0.3, 90 * hop))
    (tmp_path / "pcm.raw").write_bytes(pcm.astype("<i2").tobytes())
    silence = c_features(np.zeros((1, CFG.clip_samples), np.int16), CFG, quant.scale, quant.zero_point)[0, 0]
    for hops in (1, 20, 90):                          # before the first frame, partial ring, wrapped ring
        out = subprocess.run([str(exe), str(tmp_path / "pcm.raw"), str(hops)], capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-2000:]
        pushes, count, window = out.stdout.splitlines()
        assert pushes == "0" + "1" * (hops - 1)      # frame t completes with hop t + 1
        valid = min(hops - 1, frames)
        assert int(count) == valid
        window = np.array(window.split(), dtype=np.int64).reshape(frames, -1)
        first = hops - 1 - valid                      # oldest frame in the ring
        if valid:
            clip = np.zeros(CFG.clip_samples, np.int16)
            seg = pcm[first * hop:first * hop + CFG.clip_samples]
            clip[:len(seg)] = seg
            want = c_features(clip[None], CFG, quant.scale, quant.zero_point)[0, :valid]
            assert np.array_equal(window[frames - valid:], want)
        assert np.all(window[:frames - valid] == silence)


def test_generated_header_is_deterministic_and_checked(tmp_path):
    quant = FrontendQuant(0.45, 59)
    text = frontend_header(CFG, quant)
    assert text.splitlines()[0] == "/* generated by PQLR, do not edit. */"
    assert text == frontend_header(CFG, quant)
    assert "#define PQLR_FE_N_FRAMES 49" in text and "#define PQLR_FE_N_OUT 10" in text
    t = frontend_tables(CFG, quant)
    assert t["window"].max() == 2 ** 31 - 1 and len(t["window"]) == 241 and t["mel_w"].max() <= 1 << 20 and len(t["mel_start"]) == 40
    assert t["floor_mant"] * 2.0 ** t["floor_exp"] == CFG.log_floor                     # exact
    paths = write_frontend(tmp_path, CFG, quant)
    assert {p.name for p in paths} >= {"pqlr_frontend_tables.h", "pqlr_frontend.h", *FRONTEND_SOURCES}
    with pytest.raises(UnsupportedError, match="n_fft 480"):
        frontend_header(FeatureConfig(n_fft=480), quant)
    with pytest.raises(PqlrError, match="scale"):
        FrontendQuant(0.0, 0)
    with pytest.raises(PqlrError, match="zero point"):
        FrontendQuant(0.1, 200)
    with pytest.raises(PqlrError, match="int16"):
        c_features(np.zeros((2, 16000), np.float32), CFG, 0.5, 0)


@pytest.mark.parametrize("cc,flags", [
    ("riscv64-unknown-elf-gcc", ["-march=rv32imac", "-mabi=ilp32"]),
    ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"])], ids=["rv32imac", "cortex-m4"])
def test_cross_compiles_without_floating_point(tmp_path, cc, flags):
    if shutil.which(cc) is None:
        pytest.skip(f"{cc} not installed")
    write_frontend(tmp_path, CFG, FrontendQuant(0.45, 59))
    nm = cc.replace("gcc", "nm")
    for src in FRONTEND_SOURCES:
        obj = tmp_path / (src + ".o")
        subprocess.run([cc, "--specs=picolibc.specs", *flags, "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2",
                        f"-I{tmp_path}", f"-I{INCLUDE_DIR}", "-c", str(tmp_path / src), "-o", str(obj)],
                       check=True, capture_output=True)
        undefined = subprocess.run([nm, "-u", str(obj)], check=True, capture_output=True, text=True).stdout.split()
        allowed = {"U", "memcpy", "memmove", "memset", "pqlr_frontend_frame", "pqlr_rfft_q31", "pqlr_fft_q31"}
        assert set(undefined) <= allowed, (src, set(undefined) - allowed)   # no soft-float / libgcc calls


ADAPTER_H = """/* model.h: the frontend posing as a model for the verify harness (input: one int16 clip as bytes). */
#ifndef MODEL_H
#define MODEL_H
#include "pqlr_frontend.h"
#define PQLR_INPUT_BYTES (2 * PQLR_FE_CLIP_SAMPLES)
#define PQLR_OUTPUT_BYTES PQLR_FE_WINDOW_BYTES
#define PQLR_ARENA_BYTES sizeof(pqlr_frontend_state)
#define PQLR_NUM_LAYERS 0
pqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena);
#endif
"""
ADAPTER_C = """#include "model.h"
pqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena)
{
    return pqlr_frontend_clip((pqlr_frontend_state *)(void *)arena, (const int16_t *)(const void *)input, output);
}
"""


@pytest.mark.emulator
@pytest.mark.parametrize("target", ["rv32imac", "cortex-m4"])
def test_emulated_target_is_bit_exact_with_host(tmp_path, target):
    """The cross-compiled frontend in QEMU gives the host's bytes exactly; prints its cost per frame."""
    from pqlr.hw.emulate import run_model
    from pqlr.hw.toolchains import toolchain

    tc = toolchain(target)
    if shutil.which(tc.cc) is None or (tc.emulator and shutil.which(tc.emulator[0]) is None):
        pytest.skip(f"{target}: toolchain or QEMU not installed")
    quant = FrontendQuant(0.45, 59)
    write_text(tmp_path / "pqlr_frontend_tables.h", frontend_header(CFG, quant))
    write_text(tmp_path / "model.h", ADAPTER_H)
    write_text(tmp_path / "frontend_model.c", ADAPTER_C)
    waves = synthetic_clips()[[0, 1, 3, 4, 7]]
    run = run_model(target, [tmp_path / "frontend_model.c", *(FRONTEND_DIR / s for s in FRONTEND_SOURCES)],
                    [FRONTEND_DIR, tmp_path], waves.view(np.int8).reshape(len(waves), -1),
                    output_bytes=CFG.n_frames * CFG.n_features)
    host = c_features(waves, CFG, quant.scale, quant.zero_point)
    assert np.array_equal(run.outputs.reshape(host.shape), host)
    assert run.soft_float_symbols == []
    print(f"{target}: {max(run.instructions) / CFG.n_frames:.0f} instructions per frame (max over clips), "
          f"stack {run.stack_peak_bytes} B, text {run.text_bytes} B, rodata {run.rodata_bytes} B")
