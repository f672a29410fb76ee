"""Data-movement ops (pqlr.ir.ops_shape: slice, pad): the NumPy oracle and the C reference kernels agree
bit for bit (hypothesis through ctypes, UBSan build; once as a standalone ASan+UBSan driver via
OpDef.c_call); the oracle and the builders follow NumPy / PyTorch slicing and padding; bad
parameters are refused by the oracle (naming the layer) and by the C (PQLR_ERR_ARG, nothing written)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cdriver
from cdriver import SHAPE_SOURCES
from opcases import NP, RANGE, SEEDS, SETTINGS, check, ctypes_struct, driver_source, graph_of, pick, rand_tensor, rand_values
from pqlr import primitives as P
from pqlr.errors import UnsupportedError
from pqlr.ir.graph import Tensor
from pqlr.ir.ops import c_kernel
from pqlr.ir.ops_shape import (TABLE, chunk_attrs, narrow_attrs, pad_attrs, pad_value, slice_attrs, split_attrs,
                               torch_pad_pairs)

PQLR_ERR_ARG = -1


def same_q(t: Tensor, name: str, shape) -> Tensor:
    """A tensor with t's dtype and qparams (what slice / pad require of their output)."""
    return dataclasses.replace(t, name=name, shape=tuple(shape))


def rand_shape(rng) -> tuple[int, ...]:
    """Rank 1..4, dims 1..7 (size-1 dims often)."""
    rank = int(rng.integers(1, 5))
    return tuple(int(d) if rng.random() > 0.2 else 1 for d in rng.integers(1, 8, rank))


def rand_slice(rng, shape) -> tuple[dict, tuple[int, ...]]:
    """begin anywhere in the axis, step 1..dim+2 (larger than the dim: one element), count from 1 to
    as many as fit (often all of them, so the last index read is the axis' last)."""
    begin, step, out = [], [], []
    for d in shape:
        b = int(rng.integers(0, d)) if rng.random() < 0.7 else 0
        s = int(rng.integers(1, d + 3)) if rng.random() < 0.6 else 1
        most = (d - 1 - b) // s + 1
        begin.append(b)
        step.append(s)
        out.append(most if rng.random() < 0.5 else int(rng.integers(1, most + 1)))
    return {"begin": tuple(begin), "step": tuple(step)}, tuple(out)


def rand_pads(rng, shape) -> tuple[tuple[int, int], ...]:
    if rng.random() < 0.15:
        return tuple((0, 0) for _ in shape)
    return tuple((int(b), int(a)) for b, a in rng.integers(0, 4, (len(shape), 2)) * (rng.random((len(shape), 2)) < 0.6))


def rand_pad_value(rng, t: Tensor) -> int:
    lo, hi = P.act_range(t.bits)
    return int(pick(rng, [t.zero_point, t.zero_point, lo, hi, int(rng.integers(lo, hi + 1))]))


def test_struct_layout_matches_header(shape_lib):
    assert shape_lib.pqlr_layout_mismatches() == 0


def test_no_macs_no_scratch():
    x_t = Tensor("x", (5, 4, 3), "s8", 8, 0.1, 3)
    for op, attrs, shape in [("slice", {"begin": (1, 0, 2), "step": (2, 3, 1)}, (2, 2, 1)),
                             ("pad", {"pads": ((1, 0), (0, 2), (0, 0)), "value": 3}, (6, 6, 3))]:
        node, g = graph_of(op, [x_t], same_q(x_t, "y", shape), attrs)
        assert TABLE[op].macs(node, g) == 0 and TABLE[op].scratch_bytes(node, g) == 0


@SETTINGS
@SEEDS
def test_slice_matches_c(shape_lib, seed):
    rng = np.random.default_rng(seed)
    shape = rand_shape(rng)
    x_t = rand_tensor(rng, "x", shape, pick(rng, ["s8", "s16"]))
    attrs, out_shape = rand_slice(rng, shape)
    if rng.random() < 0.2 and all(s == 1 for s in attrs["step"]):
        del attrs["step"]                                   # default: unit steps
    node, g = graph_of("slice", [x_t], same_q(x_t, "y", out_shape), attrs)
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    y = check(shape_lib, node, g, [x])
    step = attrs.get("step", (1,) * len(shape))
    assert np.array_equal(y, x[(slice(None), *(slice(b, None, s) for b, s in zip(attrs["begin"], step)))]
                          [(slice(None), *(slice(0, n) for n in out_shape))])


@SETTINGS
@SEEDS
def test_pad_matches_c(shape_lib, seed):
    rng = np.random.default_rng(seed)
    shape = rand_shape(rng)
    x_t = rand_tensor(rng, "x", shape, pick(rng, ["s8", "s16"]))
    pads = rand_pads(rng, shape)
    attrs, out_shape = pad_attrs(shape, pads, rand_pad_value(rng, x_t))
    if attrs["value"] == x_t.zero_point and rng.random() < 0.3:
        del attrs["value"]                                  # default: the zero point (a zero pad)
    node, g = graph_of("pad", [x_t], same_q(x_t, "y", out_shape), attrs)
    x = rand_values(rng, x_t, int(rng.integers(1, 4)))
    y = check(shape_lib, node, g, [x])
    want = np.pad(x, ((0, 0), *pads), constant_values=attrs.get("value", x_t.zero_point))
    assert np.array_equal(y, want)


@SETTINGS
@SEEDS
def test_oracle_and_builders_follow_numpy_and_torch(seed):
    """slice_attrs / narrow / split / chunk and pad_attrs / torch_pad_pairs, run through the oracle,
    give what NumPy and PyTorch give on the same integers."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 9, int(rng.integers(1, 5))))
    dtype = pick(rng, ["s8", "s16"])
    x_t = rand_tensor(rng, "x", shape, dtype)
    x = rand_values(rng, x_t, 2)
    xt = torch.from_numpy(x.astype(np.int64))

    def oracle(op, attrs, out_shape):
        node, g = graph_of(op, [x_t], same_q(x_t, "y", out_shape), attrs)
        return TABLE[op].run([x], node, g)

    # Python slices: None / negative / clipped bounds, steps, fewer slices than axes
    index = []
    for d in shape[:int(rng.integers(1, len(shape) + 1))]:
        start = pick(rng, [None, int(rng.integers(-d, d)), int(rng.integers(-2 * d, 2 * d))])
        stop = pick(rng, [None, int(rng.integers(-d, d + 1)), int(rng.integers(-2 * d, 2 * d))])
        index.append(slice(start, stop, pick(rng, [None, 1, 2, 3, d + 1])))
    want = x[(slice(None), *index)]
    if want.size == 0:
        with pytest.raises(UnsupportedError):
            slice_attrs(shape, index)
    else:
        y = oracle("slice", *slice_attrs(shape, index))
        assert np.array_equal(y, want)
        assert np.array_equal(y, xt[(slice(None), *index)].numpy())

    axis = int(rng.integers(-len(shape), len(shape)))
    d = shape[axis]
    start = int(rng.integers(-d, d))
    length = int(rng.integers(1, d - (start % d) + 1))
    assert np.array_equal(oracle("slice", *narrow_attrs(shape, axis, start, length)),
                          xt.narrow(axis + 1 if axis >= 0 else axis, start, length).numpy())
    size = int(rng.integers(1, d + 2))
    sections = [int(v) for v in np.diff([0, *sorted(rng.choice(np.arange(1, d), int(rng.integers(0, d)),
                                                               replace=False)), d])]
    chunks = int(rng.integers(1, d + 3))
    t_axis = axis + 1 if axis >= 0 else axis
    for pieces, want in [(split_attrs(shape, axis, size), torch.split(xt, size, t_axis)),
                         (split_attrs(shape, axis, sections), torch.split(xt, sections, t_axis)),
                         (chunk_attrs(shape, axis, chunks), torch.chunk(xt, chunks, t_axis))]:
        assert len(pieces) == len(want)
        for (attrs, out_shape), w in zip(pieces, want):
            assert np.array_equal(oracle("slice", attrs, out_shape), w.numpy())

    # F.pad's flat list (last axis first) over the non-batch axes; the value at the tensor's qparams
    flat = [int(v) for v in rng.integers(0, 4, 2 * int(rng.integers(1, len(shape) + 1)))]
    lo, hi = P.act_range(x_t.bits)
    q = pick(rng, [x_t.zero_point, lo, hi, int(rng.integers(lo, hi + 1))])
    real = (q - x_t.zero_point + float(rng.uniform(-0.49, 0.49))) * x_t.scale     # rounds to q
    value = pad_value(x_t, real)
    assert value == q and pad_value(x_t) == x_t.zero_point
    attrs, out_shape = pad_attrs(shape, torch_pad_pairs(flat, len(shape)), value)
    y = oracle("pad", attrs, out_shape)
    assert np.array_equal(y, F.pad(xt, flat, value=value).numpy())
    assert np.array_equal(y, np.pad(x, ((0, 0), *attrs["pads"]), constant_values=value))


def test_builders_refuse_what_they_cannot_express():
    with pytest.raises(UnsupportedError, match="empty"):
        slice_attrs((5, 3), [slice(4, 2)])
    with pytest.raises(UnsupportedError, match="reversed"):
        slice_attrs((5, 3), [slice(None, None, -1)])
    with pytest.raises(UnsupportedError, match="outside"):
        narrow_attrs((5, 3), 1, 2, 2)
    with pytest.raises(UnsupportedError, match="sections"):
        split_attrs((5, 3), 0, [2, 2])
    with pytest.raises(UnsupportedError, match="non-negative"):
        pad_attrs((5, 3), ((0, 0), (-1, 2)), 0)
    with pytest.raises(UnsupportedError, match="rank 1"):
        torch_pad_pairs([1, 1, 1, 1], 1)
    with pytest.raises(UnsupportedError, match="outside"):
        pad_value(Tensor("x", (3,), "s8", 4, 0.5, 0), 4.0)          # 8 > 7 at 4 bits
    assert torch_pad_pairs([1, 2, 3, 4], 3) == ((0, 0), (3, 4), (1, 2))


def test_c_call_code_in_sanitized_driver():
    rng = np.random.default_rng(44)
    cases = []
    for dtype in ("s8", "s16"):
        for shape, attrs, out_shape in [((9,), {"begin": (2,), "step": (3,)}, (3,)),
                                        ((4, 5, 3, 7), {"begin": (1, 0, 2, 1), "step": (2, 4, 1, 1)}, (2, 2, 1, 5)),
                                        ((6, 5, 4), {"begin": (5, 1, 0), "step": (7, 2, 3)}, (1, 2, 2))]:
            x_t = rand_tensor(rng, "x", shape, dtype)
            node, g = graph_of("slice", [x_t], same_q(x_t, "y", out_shape), attrs)
            cases.append((node, g, [rand_values(rng, x_t, 1)[0]], {}))
        for shape, pads in [((7,), ((2, 3),)), ((3, 4, 2, 5), ((1, 0), (0, 2), (1, 1), (2, 3))),
                            ((5, 5, 3), ((1, 1), (1, 1), (0, 0)))]:
            x_t = rand_tensor(rng, "x", shape, dtype)
            lo, hi = P.act_range(x_t.bits)
            attrs, out_shape = pad_attrs(shape, pads, {1: lo, 4: hi}.get(len(shape), x_t.zero_point))
            node, g = graph_of("pad", [x_t], same_q(x_t, "y", out_shape), attrs)
            cases.append((node, g, [rand_values(rng, x_t, 1)[0]], {}))
    assert {n.op for n, *_ in cases} == set(TABLE)
    proc = cdriver.run_program(driver_source(cases), SHAPE_SOURCES, name="shape_driver")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"0 of {len(cases)} cases differ" in proc.stdout


# ---------------------------------------------------------------- refusals
X = Tensor("x", (6, 5, 4), "s8", 8, 0.1, 3)
SLICE_OK = ({"begin": (1, 0, 3), "step": (2, 2, 1)}, (3, 3, 1))
PAD_OK = ({"pads": ((1, 0), (0, 2), (1, 1)), "value": 3}, (7, 7, 6))
BAD = [
    ("slice", X, {"begin": (6, 0, 0), "step": (1, 1, 1)}, (1, 5, 4), "begin 6"),          # begin == dim
    ("slice", X, {"begin": (-1, 0, 0), "step": (1, 1, 1)}, (1, 5, 4), "begin -1"),
    ("slice", X, {"begin": (1, 0, 0), "step": (2, 1, 1)}, (4, 5, 4), "read outside"),     # 1 + 3*2 = 7 >= 6
    ("slice", X, {"begin": (0, 0, 0), "step": (0, 1, 1)}, (1, 5, 4), "step 0"),
    ("slice", X, {"begin": (0, 0)}, (6, 5, 4), "needs 3 values"),
    ("slice", X, {}, (6, 5, 4), "missing attribute"),
    ("slice", X, {"begin": (0, 0, 0)}, (6, 5), "equal ranks"),
    ("slice", Tensor("x", (2, 1, 2, 2, 3), "s8", 8, 0.1, 3), {"begin": (0,) * 5}, (2, 1, 2, 2, 3), "1..4"),
    ("pad", Tensor("x", (2, 1, 2, 2, 3), "s8", 8, 0.1, 3), {"pads": ((0, 0),) * 5}, (2, 1, 2, 2, 3), "1..4"),
    ("pad", X, {"pads": ((1, 0), (0, 2), (1, 1)), "value": 200}, (7, 7, 6), "pad value 200"),
    ("pad", X, {"pads": ((1, 0), (0, 2), (1, 1)), "value": -129}, (7, 7, 6), "pad value -129"),
    ("pad", X, {"pads": ((1, 0), (0, 2), (1, 1)), "value": 2.5}, (7, 7, 6), "pad value 2.5"),
    ("pad", dataclasses.replace(X, bits=4, zero_point=0), {"pads": ((1, 0), (0, 2), (1, 1)), "value": 8},
     (7, 7, 6), r"\[-8, 7\]"),
    ("pad", dataclasses.replace(X, dtype="s16", bits=16, zero_point=0), {"pads": ((1, 0), (0, 2), (1, 1)),
                                                                         "value": 40000}, (7, 7, 6), "40000"),
    ("pad", X, {"pads": ((1, 0), (0, 2), (1, -1)), "value": 3}, (7, 7, 4), "pairs"),
    ("pad", X, {"pads": ((1, 0), (0, 2)), "value": 3}, (7, 7, 4), "pairs"),
    ("pad", X, {"pads": ((1, 0), (0, 2), (1, 1)), "value": 3}, (7, 7, 5), "is not the output"),
]


@pytest.mark.parametrize("op, x_t, attrs, out_shape, msg", BAD)
def test_oracle_refuses_bad_parameters_naming_the_layer(op, x_t, attrs, out_shape, msg):
    node, g = graph_of(op, [x_t], same_q(x_t, "y", out_shape), attrs)
    x = np.zeros((1, *x_t.shape), NP[x_t.dtype])
    for call in (lambda: TABLE[op].run([x], node, g), lambda: c_kernel(node, g),
                 lambda: TABLE[op].c_call(node, g, ["in"], "out", {})):
        with pytest.raises(UnsupportedError, match=rf"layer0 \({op}\).*{msg}"):
            call()


@pytest.mark.parametrize("op, ok", [("slice", SLICE_OK), ("pad", PAD_OK)])
@pytest.mark.parametrize("change", [dict(scale=0.2), dict(zero_point=4), dict(dtype="s16", bits=16, zero_point=0),
                                    dict(bits=4)])
def test_mismatched_qparams_are_refused(op, ok, change):
    attrs, out_shape = ok
    x_t = X if change.get("bits") != 4 else dataclasses.replace(X, bits=8)
    y_t = dataclasses.replace(same_q(x_t, "y", out_shape), **change)
    node, g = graph_of(op, [x_t], y_t, attrs)
    with pytest.raises(UnsupportedError, match=rf"layer0 \({op}\)"):
        TABLE[op].run([np.zeros((1, *x_t.shape), np.int8)], node, g)
    # a wider output range is fine: 4-bit values in an 8-bit tensor
    node, g = graph_of(op, [dataclasses.replace(x_t, bits=4, zero_point=0)],
                       dataclasses.replace(same_q(x_t, "y", out_shape), zero_point=0), {**attrs, "value": 0}
                       if op == "pad" else attrs)
    assert TABLE[op].run([np.full((1, *x_t.shape), -8, np.int8)], node, g).min() == -8


def _struct(op, **fields):
    """A valid kernel of op with some struct fields changed (rank-4 lists)."""
    attrs, out_shape = {"slice": SLICE_OK, "pad": PAD_OK}[op]
    node, g = graph_of(op, [X], same_q(X, "y", out_shape), attrs)
    k = c_kernel(node, g)
    return dataclasses.replace(k, fields={**k.fields, **fields}), node, g


C_BAD = [
    ("slice", dict(begin=[0, 6, 0, 3])),                     # begin == dim on axis 1
    ("slice", dict(begin=[0, 1, 0, -1])),
    ("slice", dict(begin=[0, 2, 0, 3])),                     # 2 + 2*2 = 6 >= 6: last index outside
    ("slice", dict(step=[1, 2, 0, 1])),
    ("slice", dict(out_dims=[1, 3, 3, 0])),
    ("slice", dict(in_dims=[0, 6, 5, 4])),
    ("slice", dict(in_dims=[65536, 65536, 5, 4], out_dims=[1, 3, 3, 1], begin=[0, 1, 0, 3])),   # > INT32_MAX
    ("slice", dict(begin=[0, 1, 0, 3], step=[1, 2**30, 2, 1], out_dims=[1, 3, 3, 1])),         # int32 overflow
    ("pad", dict(value="max + 1")),                          # resolved per dtype
    ("pad", dict(value="min - 1")),
    ("pad", dict(pad_before=[0, 1, 0, -1])),
    ("pad", dict(pad_after=[-1, 0, 2, 1])),
    ("pad", dict(in_dims=[1, 6, 0, 4])),
    ("pad", dict(pad_after=[2**31 - 1, 0, 2, 1])),          # output dims overflow int32
    ("pad", dict(in_dims=[1, 65536, 65536, 1], pad_before=[0, 0, 0, 0], pad_after=[0, 0, 0, 0])),
]


@pytest.mark.parametrize("dtype", ["s8", "s16"])
@pytest.mark.parametrize("op, fields", C_BAD + [("slice", None), ("pad", None)])
def test_c_refuses_bad_parameters_writing_nothing(shape_lib, op, fields, dtype):
    fields = {f: {"max + 1": RANGE[dtype][1] + 1, "min - 1": RANGE[dtype][0] - 1}.get(v, v) if isinstance(v, str)
              else v for f, v in (fields or {}).items()} if fields is not None else None
    k, node, g = _struct(op, **(fields or {}))
    fn = k.fn.replace("_s8", f"_{dtype}")
    x = np.zeros(X.shape, NP[dtype])
    y = np.full(g.tensor("y").shape, 77, NP[dtype])
    if fields is None:                                        # a valid struct with NULL pointers
        for args in [(None, x, y), (ctypes_struct(k), None, y), (ctypes_struct(k), x, None)]:
            assert cdriver.call(shape_lib, fn, *args) == PQLR_ERR_ARG
    else:
        assert cdriver.call(shape_lib, fn, ctypes_struct(k), x, y) == PQLR_ERR_ARG
    assert np.all(y == 77)


def test_c_pad_value_range_follows_the_dtype(shape_lib):
    """value 40000 is refused by the s16 kernel, -32768 and 32767 are written."""
    k, node, g = _struct("pad")
    x = np.arange(X.size, dtype=np.int16).reshape(X.shape)
    y = np.zeros(g.tensor("y").shape, np.int16)
    assert cdriver.call(shape_lib, "pqlr_pad_s16", ctypes_struct(dataclasses.replace(
        k, fields={**k.fields, "value": 40000})), x, y) == PQLR_ERR_ARG
    assert not y.any()
    for v in RANGE["s16"]:
        assert cdriver.call(shape_lib, "pqlr_pad_s16", ctypes_struct(dataclasses.replace(
            k, fields={**k.fields, "value": v})), x, y) == 0
        pads = tuple(zip(k.fields["pad_before"][1:], k.fields["pad_after"][1:]))     # rank 3 of rank 4
        assert np.array_equal(y, np.pad(x, pads, constant_values=v))
