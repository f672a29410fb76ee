"""Activation functions (pqlr.ir.activations): equal to torch.nn.functional in float64; their s8 lut
tables hold the correctly rounded quantized torch values; the s16 interpolated lut stays within a
few LSB of the float function; the lut oracle (ops_tf) equals the C lut kernels on lut_for tables."""
from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cdriver import call, int32_struct, load_library
from pqlr import primitives as P
from pqlr.errors import UnsupportedError
from pqlr.ir.activations import ACTIVATIONS, lut_for
from pqlr.ir.graph import Graph, Node, Tensor
from pqlr.ir.ops import OPS

# name, params, torch's function
TORCH = [("sigmoid", {}, torch.sigmoid), ("tanh", {}, torch.tanh), ("hardswish", {}, F.hardswish),
         ("hardsigmoid", {}, F.hardsigmoid), ("silu", {}, F.silu), ("gelu", {}, F.gelu),
         ("gelu_tanh", {}, lambda t: F.gelu(t, approximate="tanh")), ("elu", {}, F.elu),
         ("elu", {"alpha": 0.3}, lambda t: F.elu(t, 0.3)), ("elu", {"alpha": 2.5}, lambda t: F.elu(t, 2.5)),
         ("softplus", {}, F.softplus),
         ("softplus", {"beta": 2.0, "threshold": 10.0}, lambda t: F.softplus(t, 2.0, 10.0)),
         ("softplus", {"beta": 0.5}, lambda t: F.softplus(t, 0.5)), ("mish", {}, F.mish)]
SMOOTH = ("sigmoid", "tanh", "silu", "gelu", "gelu_tanh", "elu", "softplus", "mish")
IDS = [f"{n}{''.join(f'-{k}{v}' for k, v in p.items())}" for n, p, _ in TORCH]


def torch_f64(fn, x: np.ndarray) -> np.ndarray:
    return fn(torch.tensor(x, dtype=torch.float64)).numpy()


def test_every_activation_has_a_torch_reference():
    assert {n for n, _, _ in TORCH} == set(ACTIVATIONS)


@pytest.mark.parametrize("name,params,ref", TORCH, ids=IDS)
def test_equals_torch_in_float64(name, params, ref):
    """1e-12 relative on a dense grid, tails and tiny values included. Where torch cancels to (near)
    zero (1 + erf(x) or 1 + tanh(.) for x << 0) the last-ULP difference of erf / tanh between libm
    and torch's vectorised kernels is below 1e-15 absolute: far under any quantization step."""
    x = np.concatenate([np.linspace(-40, 40, 80001), np.geomspace(1e-12, 40, 801), -np.geomspace(1e-12, 40, 801),
                        [0.0, -3.0, 3.0, 10.0, 20.0, -20.0, 700.0, -700.0, -750.0, 750.0]])
    got, want = ACTIVATIONS[name](x, **params), torch_f64(ref, x)
    assert got.dtype == np.float64 and got.shape == x.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def qtensors(rng, dtype: str, bits: int, in_range: float, fn, params):
    """Input and output tensors: input covering +-in_range, output the function's range there."""
    lo, hi = P.act_range(bits)
    zp_in = 0 if dtype == "s16" else int(rng.integers(lo // 2, hi // 2 + 1))
    shape = (256,) if dtype == "s8" else (65536,)            # every storage value, as run_lut feeds them
    x_t = Tensor("x", shape, dtype, bits, 2 * in_range / (hi - lo), zp_in)
    real = fn(P.dequantize(np.arange(lo, hi + 1), x_t.scale, zp_in), **params)
    if dtype == "s16":
        y_t = Tensor("y", x_t.shape, dtype, bits, float(np.abs(real).max()) / hi, 0)
    else:
        s_out, zp_out = P.choose_act_qparams(real.min(), real.max(), bits)
        y_t = Tensor("y", x_t.shape, dtype, bits, s_out, zp_out)
    return x_t, y_t


@pytest.mark.parametrize("name,params,ref", TORCH, ids=IDS)
def test_s8_table_is_correctly_rounded_torch(name, params, ref):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    for bits, in_range in ((8, 6.0), (8, 2.5), (4, 4.0)):
        x_t, y_t = qtensors(rng, "s8", bits, in_range, ACTIVATIONS[name], params)
        table = lut_for(name, x_t, y_t, **params)
        assert table.dtype == np.int8 and table.shape == (256,)
        lo, hi = P.act_range(bits)
        real = torch_f64(ref, P.dequantize(np.arange(-128, 128), x_t.scale, x_t.zero_point))
        want = np.clip(np.floor(real / y_t.scale + 0.5) + y_t.zero_point, lo, hi)
        np.testing.assert_array_equal(table, want)


def run_lut(table: np.ndarray, x_t: Tensor, y_t: Tensor) -> np.ndarray:
    """The lut op's oracle (ops_tf) on every input value of x_t's dtype."""
    node = Node("act", "lut", ["x"], ["y"], params={"table": table})
    g = Graph({"x": x_t, "y": y_t}, [node], ["x"], ["y"])
    lo, hi = (-128, 127) if x_t.dtype == "s8" else (-32768, 32767)
    x = np.arange(lo, hi + 1).astype(np.int8 if x_t.dtype == "s8" else np.int16)
    return x, OPS["lut"].run([x.reshape(1, -1)], node, g)[0]


@pytest.mark.parametrize("name,params,ref", TORCH, ids=IDS)
def test_s16_interpolated_lut_within_a_few_lsb(name, params, ref):
    """513 knots every 128 steps, linear in between: within 4 LSB over all 65536 inputs. The
    piecewise-linear hard* functions are checked at a scale that puts their kinks (+-3) on knots
    (between knots a kink costs up to |slope change| * 32 s_in / s_out LSB)."""
    ranges = (8.0, 6.3) if name in SMOOTH else (8.0, 4.0)
    for in_range in ranges:
        x_t, y_t = qtensors(np.random.default_rng(0), "s16", 16, in_range, ACTIVATIONS[name], params)
        table = lut_for(name, x_t, y_t, **params)
        assert table.dtype == np.int16 and table.shape == (513,)
        x, y = run_lut(table, x_t, y_t)
        real = torch_f64(ref, x.astype(np.float64) * x_t.scale) / y_t.scale
        assert np.max(np.abs(y - np.clip(real, -32768, 32767))) <= 4.0


@pytest.fixture(scope="module")
def lut_lib():
    return load_library(["pqlr_lut_s8.c", "pqlr_lut_s16.c"], name="activations_lut")


@pytest.mark.parametrize("name,params,ref", TORCH, ids=IDS)
def test_lut_oracle_equals_c_kernels(lut_lib, name, params, ref):
    rng = np.random.default_rng(1)
    Params = int32_struct("pqlr_lut_params", ("size",))
    for dtype, bits in (("s8", 8), ("s8", 4), ("s16", 16)):
        x_t, y_t = qtensors(rng, dtype, bits, 5.0, ACTIVATIONS[name], params)
        table = lut_for(name, x_t, y_t, **params)
        x, want = run_lut(table, x_t, y_t)
        got = np.zeros_like(x)
        assert call(lut_lib, f"pqlr_lut_{dtype}", Params(size=x.size), table, x, got) == 0
        np.testing.assert_array_equal(got, want)
        assert len(np.unique(want)) > 3          # the table does something over this range


def test_lut_for_refuses_unknown_and_mixed():
    x8, x16 = Tensor("x", (4,), "s8", 8, 0.1, 0), Tensor("x", (4,), "s16", 16, 1e-3, 0)
    with pytest.raises(UnsupportedError, match="swish2"):
        lut_for("swish2", x8, x8)
    with pytest.raises(UnsupportedError, match="s8 -> s16"):
        lut_for("tanh", x8, x16)
    with pytest.raises(UnsupportedError, match="zero points 0"):
        lut_for("tanh", Tensor("x", (4,), "s16", 16, 1e-3, 5), x16)
