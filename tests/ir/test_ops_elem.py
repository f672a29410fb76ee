"""Element-wise ops (pqlr.ir.ops_elem): the NumPy oracle and the C reference kernels agree bit for bit
(hypothesis through ctypes, UBSan build; once as a standalone ASan+UBSan driver via OpDef.c_call)."""
from __future__ import annotations

import numpy as np
import pytest

import cdriver
from cdriver import ELEM_SOURCES
from opcases import SEEDS, SETTINGS, check, driver_source, graph_of, pick, rand_tensor, rand_values
from pqlr import primitives as P
from pqlr.errors import UnsupportedError
from pqlr.ir.graph import Tensor
from pqlr.ir.opkit import activation_clamp
from pqlr.ir.ops_elem import TABLE, add_attrs


def test_struct_layout_matches_header(elem_lib):
    assert elem_lib.pqlr_layout_mismatches() == 0


@SETTINGS
@SEEDS
def test_add_matches_c(elem_lib, seed):
    rng = np.random.default_rng(seed)
    dtype = pick(rng, ["s8", "s16"])
    shape = tuple(int(v) for v in rng.integers(1, 7, int(rng.integers(1, 4))))
    ts = [rand_tensor(rng, n, shape, dtype) for n in ("a", "b", "y")]
    for t in ts:   # scales spanning 2^-12 .. 2^4: ratios up to 2^16 either way
        t.scale = float(2.0 ** rng.uniform(-12, 4))
    act = pick(rng, [None, None, "relu", "relu6"])
    attrs = {**add_attrs(*ts), **activation_clamp(ts[2], act)}
    node, g = graph_of("add", ts[:2], ts[2], attrs)
    n = int(rng.integers(1, 4))
    xs = [rand_values(rng, t, n) for t in ts[:2]]
    y = check(elem_lib, node, g, xs)
    if act is None:   # float sanity: within 1 LSB of the real sum (saturating at the range)
        real = sum(P.dequantize(x, t.scale, t.zero_point) for x, t in zip(xs, ts))
        want = np.clip(real / ts[2].scale + ts[2].zero_point, *P.act_range(ts[2].bits))
        assert np.max(np.abs(y - want)) <= 1.0 + 1e-6


def test_add_refuses_overflowing_left_shift():
    a, b, y = (Tensor(n, (4,), "s8", 8, 0.1, 0) for n in "aby")
    node, g = graph_of("add", [a, b], y, {**add_attrs(a, b, y), "left_shift": 24})
    with pytest.raises(UnsupportedError, match="layer0 \\(add\\).*overflows"):
        TABLE["add"].run([np.zeros((1, 4), np.int8)] * 2, node, g)


def test_c_call_code_in_sanitized_driver():
    rng = np.random.default_rng(12)
    cases = []
    for dtype in ("s8", "s16"):
        ts = [rand_tensor(rng, n, (3, 2, 5), dtype) for n in "aby"]
        node, g = graph_of("add", ts[:2], ts[2], {**add_attrs(*ts), **activation_clamp(ts[2], "relu")})
        cases.append((node, g, [rand_values(rng, t, 1)[0] for t in ts[:2]], {}))
    assert {n.op for n, *_ in cases} == set(TABLE)
    proc = cdriver.run_program(driver_source(cases), ELEM_SOURCES, name="elem_driver")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"0 of {len(cases)} cases differ" in proc.stdout
