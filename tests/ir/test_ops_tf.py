"""Integer transformer ops (ir/ops_tf.py): NumPy oracle == C kernels bit for bit (hypothesis),
float sanity of softmax / layernorm / GELU against torch with explicit error budgets, C struct
layouts, loud failures, and an ASan/UBSan standalone driver built from the ops' own c_call text."""
from __future__ import annotations

import ctypes
from functools import lru_cache

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pqlr.errors import PqlrError, UnsupportedError
from pqlr.ir import ops_tf as T
from pqlr.ir.graph import Graph, Node, Tensor
from pqlr.ir.ops import OPS
from pqlr.primitives import dequantize

from cdriver import c_array, call, load_library, run_program, runtime_paths, write_source

SOURCES = [f"pqlr_{op}_s8.c" for op in ("matmul", "softmax", "layernorm", "lut", "transpose",
                                         "reshape", "concat")] + \
          [f"pqlr_{op}_s16.c" for op in ("matmul", "softmax", "layernorm", "lut", "transpose", "concat")]
DT = {"s8": np.int8, "s16": np.int16}
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------- C access
@lru_cache(maxsize=None)
def lib():
    return load_library(SOURCES, name="tf_ops")


@lru_cache(maxsize=None)
def struct_type(op: str):
    fields = [(f, ctypes.c_int32 * n if n else ctypes.c_int32) for f, n in T.STRUCT_FIELDS[op]]
    return type(f"pqlr_{op}_params", (ctypes.Structure,), {"_fields_": fields})


def c_struct(op: str, values: dict):
    s = struct_type(op)()
    for f, n in T.STRUCT_FIELDS[op]:
        if n:
            v = list(values[f]) + [0] * (n - len(values[f]))
            getattr(s, f)[:] = [int(x) for x in v]
        else:
            setattr(s, f, int(values[f]))
    return s


def run_c(node: Node, graph: Graph, sample: list[np.ndarray]) -> np.ndarray:
    """Run one sample (inputs without batch dim) through the node's C kernel."""
    t_out = graph.tensor(node.outputs[0])
    out = np.zeros(t_out.shape, DT[t_out.dtype])
    x = [np.ascontiguousarray(a, dtype=DT[t_out.dtype]) for a in sample]
    pr = {k: np.ascontiguousarray(v) for k, v in node.params.items()}
    if node.op == "reshape":
        status = call(lib(), "pqlr_reshape_s8", ctypes.c_int32(x[0].nbytes), x[0], out)
    elif node.op == "concat":
        ptrs = (ctypes.c_void_p * len(x))(*[a.ctypes.data for a in x])
        p = c_struct("concat", T.STRUCTS["concat"](node, graph))
        status = call(lib(), f"pqlr_concat_{t_out.dtype}", p, ptrs, out)
    else:
        p = c_struct(node.op, T.STRUCTS[node.op](node, graph))
        arrays = {"matmul": [], "softmax": ["table"], "lut": ["table"], "transpose": [],
                  "layernorm": ["gamma", "beta", "multiplier", "shift"]}[node.op]
        status = call(lib(), f"pqlr_{node.op}_{t_out.dtype}", p, *[pr[k] for k in arrays], *x, out)
    assert status == 0, f"{node.op}: C returned {status}"
    return out


def check_bit_exact(node: Node, graph: Graph, batch: list[np.ndarray]) -> np.ndarray:
    want = OPS[node.op].run(batch, node, graph)
    t_out = graph.tensor(node.outputs[0])
    assert want.dtype == DT[t_out.dtype] and want.shape == (len(batch[0]), *t_out.shape)
    for i in range(len(batch[0])):
        np.testing.assert_array_equal(run_c(node, graph, [b[i] for b in batch]), want[i])
    return want


def graph_of(node: Node, tensors: list[Tensor]) -> Graph:
    g = Graph({t.name: t for t in tensors}, [node], list(node.inputs), list(node.outputs))
    g.validate()
    return g


def ints(rng, shape, lo=None, hi=None, n=2, dtype=np.int8):
    lo = int(np.iinfo(dtype).min) if lo is None else lo
    hi = int(np.iinfo(dtype).max) if hi is None else hi
    return rng.integers(lo, hi + 1, size=(n, *shape)).astype(dtype)


def extreme(rng, shape, n=2, dtype=np.int8):
    """Inputs that stress saturation: only the two extreme values, or one constant extreme."""
    lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
    kind = rng.integers(3)
    if kind == 0:
        return np.where(rng.random((n, *shape)) < 0.5, lo, hi).astype(dtype)
    return np.full((n, *shape), lo if kind == 1 else hi, dtype)


scales = st.floats(1e-3, 1.0).map(float)
zps = st.integers(-128, 127)
seeds = st.integers(0, 2**32 - 1)


# ---------------------------------------------------------------- matmul
def matmul_case(seed, heads, m, k, p, rank3, real, dtype="s8"):
    rng = np.random.default_rng(seed)
    zp = rng.integers(-128, 128, 3) * (dtype == "s8")
    a_shape, b_shape, o_shape = ((heads, m, k), (heads, k, p), (heads, m, p)) if rank3 else ((m, k), (k, p), (m, p))
    bits = 8 if dtype == "s8" else 16
    ts = [Tensor(name, shape, dtype, bits, zero_point=int(z))
          for name, shape, z in zip(("a", "b", "o"), (a_shape, b_shape, o_shape), zp)]
    mult, shift = T.quantize_multiplier(real)
    lo = int(rng.integers(T.STORAGE[dtype][0], 0))
    node = Node("mm", "matmul", ["a", "b"], ["o"], attrs={"multiplier": mult, "shift": shift, "act_min": lo})
    return node, graph_of(node, ts), rng


@SETTINGS
@given(seeds, st.integers(1, 6), st.integers(1, 7), st.integers(1, 33), st.integers(1, 7), st.booleans(),
       st.floats(1e-12, 2.0), st.booleans(), st.sampled_from(["s8", "s16"]))
def test_matmul_bit_exact(seed, heads, m, k, p, rank3, real, ext, dtype):
    node, g, rng = matmul_case(seed, heads, m, k, p, rank3, real, dtype)
    a, b = (g.tensor(t).shape for t in ("a", "b"))
    dt = DT[dtype]
    batch = [(extreme if ext else ints)(rng, shape, dtype=dt) for shape in (a, b)]
    check_bit_exact(node, g, batch)


def test_matmul_max_accumulator():
    """k = 1024 of (-128 - 127)^2: the int32 accumulator holds 2^26, the 64-bit requantize saturates."""
    node, g, rng = matmul_case(0, 2, 3, 1024, 2, True, 1.0)
    g.tensor("a").zero_point, g.tensor("b").zero_point = 127, 127
    want = check_bit_exact(node, g, [np.full((1, 2, 3, 1024), -128, np.int8), np.full((1, 2, 1024, 2), -128, np.int8)])
    assert np.all(want == 127)
    # s16: 2^14 products of (-32768)^2 = 2^44 in the int64 accumulator; the two-part requantize is exact
    node, g, rng = matmul_case(0, 1, 1, 2**14, 2, False, 2.0**-30, "s16")
    x = np.full((1, 1, 2**14), -32768, np.int16)
    want = check_bit_exact(node, g, [x, np.repeat(x.reshape(1, 2**14, 1), 2, axis=2)])
    assert np.all(want == 2**14)


@SETTINGS
@given(st.lists(st.integers(-(2**47), 2**47), min_size=1, max_size=20), st.integers(2**30, 2**31 - 1),
       st.integers(24, 62))
def test_wide_requantize_is_exact(accs, m, n):
    """The s16 matmul's two-part requantize equals (acc m + 2^(n-1)) >> n in unbounded integers."""
    got = T._requantize_wide(np.array(accs, np.int64), m, n)
    assert got.tolist() == [(a * m + (1 << (n - 1))) >> n for a in accs]


# ---------------------------------------------------------------- softmax
def softmax_case(shape, in_scale, in_zp):
    ts = [Tensor("x", shape, scale=in_scale, zero_point=in_zp), Tensor("y", shape, scale=1 / 256, zero_point=-128)]
    node = Node("attn", "softmax", ["x"], ["y"], params={"table": T.softmax_table(in_scale)})
    return node, graph_of(node, ts)


@SETTINGS
@given(seeds, st.lists(st.integers(1, 9), min_size=0, max_size=2), st.integers(1, 70), scales, zps,
       st.booleans())
def test_softmax_bit_exact(seed, lead, length, in_scale, in_zp, ext):
    rng = np.random.default_rng(seed)
    shape = (*lead, length)
    node, g = softmax_case(shape, in_scale, in_zp)
    want = check_bit_exact(node, g, [extreme(rng, shape) if ext else ints(rng, shape)])
    if ext:   # all-equal rows give 256 / len each (rounded), never more than 255 + 1 LSB of mass
        assert np.all(want.astype(np.int64).sum(axis=-1) + 128 * length <= 256 + length)


def test_softmax_all_equal_and_one_hot():
    node, g = softmax_case((3, 4), 0.5, 0)
    x = np.array([[[7] * 4, [127, -128, -128, -128], [-128] * 4]], np.int8)
    y = check_bit_exact(node, g, [x])[0].astype(int) + 128
    assert y[0].tolist() == [64] * 4 and y[2].tolist() == [64] * 4
    assert y[1].tolist() == [255, 0, 0, 0]          # 1.0 saturates at 255/256
    node, g = softmax_case((2, 512), 0.5, 0)       # exact ties: 256 / 512 = 0.5 rounds up to 1
    y = check_bit_exact(node, g, [np.full((1, 2, 512), -3, np.int8)])[0].astype(int) + 128
    assert np.all(y == 1)


@pytest.mark.parametrize("in_scale", [0.02, 0.0625, 0.2, 0.5])
def test_softmax_close_to_float(in_scale):
    """Error budget (LSB = 1/256): max 0.5 + 1e-2 (rounding) except 1 where 1.0 saturates to 255/256;
    mean <= 0.3."""
    rng = np.random.default_rng(1)
    node, g = softmax_case((4, 25, 25), in_scale, -10)
    x = ints(rng, (4, 25, 25), n=3)
    y = OPS["softmax"].run([x], node, g)
    ref = torch.softmax(torch.from_numpy(dequantize(x, in_scale, -10)), dim=-1).numpy()
    err = np.abs(dequantize(y, 1 / 256, -128) - ref) * 256
    top = ref > 255.5 / 256
    assert err[~top].max() <= 0.51 and err[top].max(initial=0) <= 1.0 and err.mean() <= 0.3, \
        f"softmax error max {err.max():.3f}, mean {err.mean():.3f} LSB"


# ---------------------------------------------------------------- layernorm
def layernorm_case(seed, shape, in_scale, in_zp, out_scale, out_zp, eps=1e-5):
    rng = np.random.default_rng(seed)
    c = shape[-1]
    gamma = rng.normal(1.0, 0.5, c) * rng.choice([1.0, 0.01], c, p=[0.9, 0.1])
    beta = rng.normal(0.0, 0.5, c)
    params, attrs = T.layernorm_params(gamma, beta, eps, in_scale, out_scale)
    ts = [Tensor("x", shape, scale=in_scale, zero_point=in_zp), Tensor("y", shape, scale=out_scale, zero_point=out_zp)]
    node = Node("ln", "layernorm", ["x"], ["y"], attrs=attrs, params=params)
    return node, graph_of(node, ts), rng, (gamma, beta)


@SETTINGS
@given(seeds, st.integers(1, 9), st.integers(1, 80), scales, zps, st.floats(0.01, 0.2), zps,
       st.sampled_from([0.0, 1e-12, 1e-5, 1e-2]), st.integers(0, 2))
def test_layernorm_bit_exact(seed, t, c, in_scale, in_zp, out_scale, out_zp, eps, kind):
    node, g, rng, _ = layernorm_case(seed, (t, c), in_scale, in_zp, out_scale, out_zp, eps)
    x = [ints(rng, (t, c)), extreme(rng, (t, c)), ints(rng, (t, c), -3, 3)][kind]
    check_bit_exact(node, g, [x])


def test_layernorm_constant_rows_and_wide_rows():
    """Zero variance (eps = 0 and eps > 0) gives beta; C = 4096 of +-128 keeps every product in range."""
    for eps in (0.0, 1e-5):
        node, g, rng, (_, beta) = layernorm_case(3, (2, 17), 0.05, 3, 0.02, 0, eps)
        y = check_bit_exact(node, g, [np.full((1, 2, 17), 42, np.int8)])[0]
        want = np.clip(np.floor(beta / 0.02 + 0.5), -128, 127)
        assert np.abs(y - want).max() <= 1
    node, g, rng, _ = layernorm_case(4, (2, 4096), 0.1, 0, 0.05, 0)
    check_bit_exact(node, g, [extreme(rng, (2, 4096), n=1)])


@pytest.mark.parametrize("c", [16, 64, 192])
def test_layernorm_close_to_float(c):
    """Error budget: max |dequant(y) - layer_norm(dequant(x))| <= 0.6 output LSB (0.5 is the rounding
    of an ideal quantizer), mean <= 0.3 LSB."""
    in_scale, out_scale = 0.05, 0.04
    node, g, rng, (gamma, beta) = layernorm_case(5, (25, c), in_scale, 7, out_scale, -3)
    x = np.clip(rng.normal(0, 30, (3, 25, c)) + rng.normal(0, 20, (3, 25, 1)), -128, 127).astype(np.int8)
    y = OPS["layernorm"].run([x], node, g)
    ref = torch.nn.functional.layer_norm(torch.from_numpy(dequantize(x, in_scale, 7)), (c,),
                                         torch.from_numpy(gamma), torch.from_numpy(beta), 1e-5).numpy()
    inside = np.abs(ref / out_scale) < 120      # ignore values the output range clips
    err = np.abs(dequantize(y, out_scale, -3) - ref)[inside] / out_scale
    assert err.max() <= 0.6 and err.mean() <= 0.3, f"layernorm error max {err.max():.3f}, mean {err.mean():.3f} LSB"


# ---------------------------------------------------------------- lut (GELU)
@SETTINGS
@given(seeds, st.lists(st.integers(1, 7), min_size=1, max_size=3), scales, zps, scales, zps)
def test_lut_bit_exact(seed, shape, s_in, zp_in, s_out, zp_out):
    rng = np.random.default_rng(seed)
    ts = [Tensor("x", tuple(shape), scale=s_in, zero_point=zp_in),
          Tensor("y", tuple(shape), scale=s_out, zero_point=zp_out)]
    node = Node("gelu", "lut", ["x"], ["y"], params={"table": T.gelu_table(s_in, zp_in, s_out, zp_out)})
    check_bit_exact(node, graph_of(node, ts), [ints(rng, tuple(shape))])


def test_gelu_close_to_float():
    """Every int8 input: |dequant(gelu_table) - torch gelu| <= 0.5 LSB (+ float slack) unless clipped."""
    s_in, zp_in, s_out, zp_out = 0.05, 10, 0.03, -100
    table = T.gelu_table(s_in, zp_in, s_out, zp_out)
    x = torch.from_numpy(dequantize(np.arange(-128, 128), s_in, zp_in))
    ref = torch.nn.functional.gelu(x, approximate="none").numpy()
    err = np.abs(dequantize(table, s_out, zp_out) - ref) / s_out
    inside = (ref / s_out + zp_out >= -128) & (ref / s_out + zp_out <= 127)
    assert inside.sum() > 200 and err[inside].max() <= 0.5 + 1e-9
    np.testing.assert_array_equal(T.tanh_table(0.05, 0, 1 / 127, 0)[[0, 128, 148, 255]], [-127, 0, 97, 127])
    np.testing.assert_array_equal(T.sigmoid_table(0.1, 0, 1 / 256, -128)[[0, 128, 138]], [-128, 0, 59])


# ---------------------------------------------------------------- transpose, reshape, concat
@SETTINGS
@given(seeds, st.lists(st.integers(1, 6), min_size=1, max_size=4), st.sampled_from(["s8", "s16"]), st.data())
def test_transpose_bit_exact(seed, shape, dtype, data):
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    rng = np.random.default_rng(seed)
    zp, bits = (3, 8) if dtype == "s8" else (0, 16)
    ts = [Tensor("x", tuple(shape), dtype, bits, 0.1, zp),
          Tensor("y", tuple(shape[a] for a in perm), dtype, bits, 0.1, zp)]
    node = Node("tr", "transpose", ["x"], ["y"], attrs={"perm": perm})
    check_bit_exact(node, graph_of(node, ts), [ints(rng, tuple(shape), dtype=DT[dtype])])


def test_transpose_heads_and_reshape():
    """(T, H, D) -> (H, T, D) -> (H, D, T), and (T, H*D) <-> (T, H, D) reshapes."""
    rng = np.random.default_rng(2)
    x = ints(rng, (5, 3, 4))
    for perm, shape in (((1, 0, 2), (5, 3, 4)), ((0, 2, 1), (3, 5, 4))):
        ts = [Tensor("x", shape), Tensor("y", tuple(shape[a] for a in perm))]
        node = Node("tr", "transpose", ["x"], ["y"], attrs={"perm": perm})
        x = check_bit_exact(node, graph_of(node, ts), [x.reshape((2, *shape))])
    np.testing.assert_array_equal(x[1], np.transpose(ints(np.random.default_rng(2), (5, 3, 4))[1], (1, 2, 0)))
    node = Node("rs", "reshape", ["x"], ["y"])
    g = graph_of(node, [Tensor("x", (3, 4, 5)), Tensor("y", (12, 5))])
    np.testing.assert_array_equal(check_bit_exact(node, g, [x]), x.reshape(2, 12, 5))


@SETTINGS
@given(seeds, st.lists(st.integers(1, 5), min_size=1, max_size=3), st.integers(1, 8), st.sampled_from(["s8", "s16"]),
       st.data())
def test_concat_bit_exact(seed, shape, n_in, dtype, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(0, 4), min_size=n_in, max_size=n_in).filter(lambda s: sum(s) > 0))
    rng = np.random.default_rng(seed)
    ax = axis % len(shape)
    shapes = [tuple(shape[:ax]) + (s,) + tuple(shape[ax + 1:]) for s in sizes]
    out_shape = tuple(shape[:ax]) + (sum(sizes),) + tuple(shape[ax + 1:])
    zp, bits = (-5, 8) if dtype == "s8" else (0, 16)
    ts = [Tensor(f"x{i}", s, dtype, bits, 0.2, zp) for i, s in enumerate(shapes)]
    ts.append(Tensor("y", out_shape, dtype, bits, 0.2, zp))
    node = Node("cat", "concat", [t.name for t in ts[:-1]], ["y"], attrs={"axis": axis})
    check_bit_exact(node, graph_of(node, ts), [ints(rng, s, dtype=DT[dtype]) for s in shapes])


# ---------------------------------------------------------------- s16 (W1A16): softmax, layernorm, lut
def softmax16_case(shape, in_scale):
    ts = [Tensor("x", shape, "s16", 16, in_scale, 0), Tensor("y", shape, "s16", 16, 1 / 32768, 0)]
    params, attrs = T.softmax_s16_params(in_scale)
    node = Node("attn16", "softmax", ["x"], ["y"], attrs=attrs, params=params)
    return node, graph_of(node, ts)


def layernorm16_case(seed, shape, in_scale, out_scale, eps=1e-5):
    node, g, rng, gb = layernorm_case(seed, shape, in_scale, 0, out_scale, 0, eps)
    node.params, node.attrs = T.layernorm_params(*gb, eps, in_scale, out_scale, bits=16)
    for t in g.tensors.values():
        t.dtype, t.bits = "s16", 16
    return node, g, rng, gb


@SETTINGS
@given(seeds, st.lists(st.integers(1, 6), min_size=0, max_size=2), st.integers(1, 60),
       st.floats(1e-5, 0.05), st.integers(0, 2))
def test_softmax_s16_bit_exact(seed, lead, length, in_scale, kind):
    rng = np.random.default_rng(seed)
    shape = (*lead, length)
    node, g = softmax16_case(shape, in_scale)
    x = [ints(rng, shape, -32768, 32767, dtype=np.int16), extreme(rng, shape, dtype=np.int16),
         ints(rng, shape, -300, 300, dtype=np.int16)][kind]
    check_bit_exact(node, g, [x])


@SETTINGS
@given(seeds, st.integers(1, 6), st.sampled_from([1, 2, 7, 33, 64, 512]), st.floats(1e-4, 0.01),
       st.floats(1e-4, 1e-3), st.sampled_from([0.0, 1e-5]), st.integers(0, 2))
def test_layernorm_s16_bit_exact(seed, t, c, in_scale, out_scale, eps, kind):
    node, g, rng, _ = layernorm16_case(seed, (t, c), in_scale, out_scale, eps)
    x = [ints(rng, (t, c), -32768, 32767, dtype=np.int16), extreme(rng, (t, c), dtype=np.int16),
         ints(rng, (t, c), -2, 2, dtype=np.int16)][kind]
    check_bit_exact(node, g, [x])


@SETTINGS
@given(seeds, st.lists(st.integers(1, 9), min_size=1, max_size=3), st.floats(1e-4, 1e-2), st.floats(1e-4, 1e-2),
       st.sampled_from(["gelu", "tanh", "sigmoid"]), st.booleans())
def test_lut_s16_bit_exact(seed, shape, s_in, s_out, fn, ext):
    rng = np.random.default_rng(seed)
    shape = tuple(shape)
    ts = [Tensor("x", shape, "s16", 16, s_in, 0), Tensor("y", shape, "s16", 16, s_out, 0)]
    table = getattr(T, f"{fn}_table")(s_in, 0, s_out, 0, bits=16)
    node = Node(fn, "lut", ["x"], ["y"], params={"table": table})
    x = extreme(rng, shape, dtype=np.int16) if ext else ints(rng, shape, -32768, 32767, dtype=np.int16)
    check_bit_exact(node, graph_of(node, ts), [x])


def test_s16_close_to_float():
    """Budgets in s16 LSBs: softmax max 0.6 (mean 0.3), layernorm max 1.5 (mean 0.4), GELU max 1.5
    (0.5 knot rounding + 0.5 output rounding + interpolation; mean 0.3)."""
    rng = np.random.default_rng(9)
    s_in = 8 / 32768
    x = np.clip(rng.normal(0, 6000, (2, 4, 25, 25)), -32768, 32767).astype(np.int16)
    node, g = softmax16_case((4, 25, 25), s_in)
    y = OPS["softmax"].run([x], node, g)
    ref = torch.softmax(torch.from_numpy(x * s_in), dim=-1).numpy()
    err = np.abs(y / 32768 - ref) * 32768
    assert err.max() <= 0.6 and err.mean() <= 0.3, f"softmax s16 error max {err.max():.3f}, mean {err.mean():.3f}"
    node, g, _, (gamma, beta) = layernorm16_case(5, (25, 64), s_in, 6 / 32768)
    y = OPS["layernorm"].run([x[:, 0, :, :].repeat(3, axis=-1)[..., :64]], node, g)
    ref = torch.nn.functional.layer_norm(torch.from_numpy(x[:, 0, :, :].repeat(3, axis=-1)[..., :64] * s_in), (64,),
                                         torch.from_numpy(gamma), torch.from_numpy(beta), 1e-5).numpy()
    err = np.abs(y * (6 / 32768) - ref) / (6 / 32768)
    inside = np.abs(ref) < 5.9
    assert err[inside].max() <= 1.5 and err[inside].mean() <= 0.4, \
        f"layernorm s16 error max {err[inside].max():.3f}, mean {err[inside].mean():.3f}"
    xs = np.arange(-32768, 32768, dtype=np.int16)
    ts = [Tensor("x", (65536,), "s16", 16, s_in, 0), Tensor("y", (65536,), "s16", 16, 8 / 32768, 0)]
    node = Node("gelu16", "lut", ["x"], ["y"], params={"table": T.gelu_table(s_in, 0, 8 / 32768, 0, bits=16)})
    y = OPS["lut"].run([xs[None]], node, graph_of(node, ts))[0]
    ref = torch.nn.functional.gelu(torch.from_numpy(xs * s_in)).numpy()
    err = (np.abs(y * (8 / 32768) - ref) / (8 / 32768))[np.abs(ref) < 7.99]
    assert err.max() <= 1.5 and err.mean() <= 0.3, f"gelu s16 error max {err.max():.3f}, mean {err.mean():.3f} LSB"


# ---------------------------------------------------------------- layouts, errors, table
def test_struct_layouts_match_header():
    checks = []
    for op, fields in T.STRUCT_FIELDS.items():
        off = 0
        for f, n in fields:
            checks.append(f"bad += offsetof(pqlr_{op}_params, {f}) != {off};")
            off += 4 * max(n, 1)
        checks.append(f"bad += sizeof(pqlr_{op}_params) != {off};")
    src = ('#include <stddef.h>\n#include "pqlr_tf.h"\nint pqlr_tf_layout(void);\nint pqlr_tf_layout(void)\n'
           "{\n    int bad = 0;\n    " + "\n    ".join(checks) + "\n    return bad;\n}\n")
    layout = load_library([write_source(src, "tf_layout")], name="tf_layout", ubsan=False)
    assert call(layout, "pqlr_tf_layout") == 0


def test_ops_registered_and_counted():
    assert {"matmul", "softmax", "layernorm", "lut", "transpose", "reshape", "concat"} <= set(OPS)
    node, g, _ = matmul_case(0, 4, 25, 16, 25, True, 0.01)
    assert OPS["matmul"].macs(node, g) == 4 * 25 * 16 * 25 and OPS["matmul"].scratch_bytes(node, g) == 0


def test_unsupported_inputs_fail_loudly():
    node, g = softmax_case((4, 8), 0.1, 0)
    g.tensor("y").scale = 1 / 255
    with pytest.raises(UnsupportedError, match="attn.*1/256"):
        OPS["softmax"].run([np.zeros((1, 4, 8), np.int8)], node, g)
    node = Node("cat", "concat", ["a", "b"], ["y"], attrs={"axis": 0})
    g = graph_of(node, [Tensor("a", (2, 3), scale=0.1), Tensor("b", (2, 3), scale=0.2), Tensor("y", (4, 3), scale=0.1)])
    with pytest.raises(UnsupportedError, match="cat.*requantize"):
        OPS["concat"].c_call(node, g, ["a", "b"], "y", {})
    node, g, _ = matmul_case(0, 2, 3, 4, 5, True, 0.1)
    g.tensor("b").shape = (2, 5, 5)
    with pytest.raises(PqlrError, match="mm: cannot multiply"):
        OPS["matmul"].run([np.zeros((1, 2, 3, 4), np.int8), np.zeros((1, 2, 5, 5), np.int8)], node, g)
    with pytest.raises(UnsupportedError, match="eps"):
        T.layernorm_params(np.ones(4), np.zeros(4), 1.0, 1e-6, 0.1)


def test_c_rejects_bad_arguments():
    assert call(lib(), "pqlr_lut_s8", c_struct("lut", {"size": 4}), None, None, None) == -1
    bad = c_struct("transpose", {"rank": 2, "in_dims": (2, 3), "perm": (0, 0)})
    x = np.zeros(6, np.int8)
    assert call(lib(), "pqlr_transpose_s8", bad, x, x.copy()) == -1
    table = T.softmax_table(0.1) - 1
    sm = c_struct("softmax", {"rows": 1, "len": 6, "multiplier": 0, "shift": 1})
    assert call(lib(), "pqlr_softmax_s8", sm, table, x, x.copy()) == -1
    ln = c_struct("layernorm", {"rows": 1, "channels": 513, "eps": 0, "out_zp": 0, "act_min": -9, "act_max": 9})
    w = np.zeros(513, np.int32)
    w16 = w.astype(np.int16)
    assert call(lib(), "pqlr_layernorm_s16", ln, w16, w, w, w + 1, w16, w16.copy()) == -1   # C > 512


# ---------------------------------------------------------------- ASan/UBSan standalone driver
def driver_cases():
    """(node, graph, batch of one sample) for every op, some at extremes."""
    rng = np.random.default_rng(7)
    cases = []
    node, g, _ = matmul_case(1, 3, 5, 7, 4, True, 0.003)
    cases.append((node, g, [ints(rng, (3, 5, 7), n=1), ints(rng, (3, 7, 4), n=1)]))
    node, g = softmax_case((2, 9, 33), 0.07, 5)
    cases.append((node, g, [extreme(rng, (2, 9, 33), n=1)]))
    node, g, _, _ = layernorm_case(2, (9, 40), 0.05, 0, 0.03, 2)
    cases.append((node, g, [ints(rng, (9, 40), n=1)]))
    node, g, _, _ = layernorm_case(3, (3, 5), 0.05, 0, 0.03, 2, eps=0.0)
    cases.append((node, g, [np.full((1, 3, 5), -128, np.int8)]))
    ts = [Tensor("x", (6, 11), scale=0.1, zero_point=-3), Tensor("y", (6, 11), scale=0.05, zero_point=-60)]
    node = Node("gelu", "lut", ["x"], ["y"], params={"table": T.gelu_table(0.1, -3, 0.05, -60)})
    cases.append((node, graph_of(node, ts), [ints(rng, (6, 11), n=1)]))
    node = Node("tr", "transpose", ["x"], ["y"], attrs={"perm": (2, 0, 3, 1)})
    g = graph_of(node, [Tensor("x", (2, 3, 4, 5)), Tensor("y", (4, 2, 5, 3))])
    cases.append((node, g, [ints(rng, (2, 3, 4, 5), n=1)]))
    node = Node("rs", "reshape", ["x"], ["y"])
    cases.append((node, graph_of(node, [Tensor("x", (4, 6)), Tensor("y", (24,))]), [ints(rng, (4, 6), n=1)]))
    node = Node("cat", "concat", ["a", "b", "c"], ["y"], attrs={"axis": 1})
    ts = [Tensor("a", (3, 2)), Tensor("b", (3, 5)), Tensor("c", (3, 1)), Tensor("y", (3, 8))]
    cases.append((node, graph_of(node, ts), [ints(rng, t.shape, n=1) for t in ts[:3]]))
    node, g = softmax16_case((3, 17), 1e-3)
    cases.append((node, g, [ints(rng, (3, 17), -32768, 32767, n=1, dtype=np.int16)]))
    node, g, _, _ = layernorm16_case(9, (4, 512), 1e-3, 3e-4)
    cases.append((node, g, [extreme(rng, (4, 512), n=1, dtype=np.int16)]))
    ts = [Tensor("x", (5, 7), "s16", 16, 1e-3, 0), Tensor("y", (5, 7), "s16", 16, 5e-4, 0)]
    node = Node("gelu16", "lut", ["x"], ["y"], params={"table": T.gelu_table(1e-3, 0, 5e-4, 0, bits=16)})
    cases.append((node, graph_of(node, ts), [ints(rng, (5, 7), -32768, 32767, n=1, dtype=np.int16)]))
    node, g, _ = matmul_case(2, 2, 3, 50, 4, True, 3e-9, "s16")
    cases.append((node, g, [ints(rng, (2, 3, 50), n=1, dtype=np.int16), ints(rng, (2, 50, 4), n=1, dtype=np.int16)]))
    node = Node("tr16", "transpose", ["x"], ["y"], attrs={"perm": (1, 0)})
    ts = [Tensor("x", (3, 5), "s16", 16), Tensor("y", (5, 3), "s16", 16)]
    cases.append((node, graph_of(node, ts), [ints(rng, (3, 5), n=1, dtype=np.int16)]))
    node = Node("rs16", "reshape", ["x"], ["y"])
    ts = [Tensor("x", (3, 5), "s16", 16), Tensor("y", (15,), "s16", 16)]
    cases.append((node, graph_of(node, ts), [ints(rng, (3, 5), n=1, dtype=np.int16)]))
    node = Node("cat16", "concat", ["a", "b"], ["y"], attrs={"axis": 0})
    ts = [Tensor("a", (2, 3), "s16", 16), Tensor("b", (1, 3), "s16", 16), Tensor("y", (3, 3), "s16", 16)]
    cases.append((node, graph_of(node, ts), [ints(rng, t.shape, n=1, dtype=np.int16) for t in ts[:2]]))
    return cases


def test_sanitized_driver_runs_all_kernels():
    decls, body = [], []
    for i, (node, g, batch) in enumerate(driver_cases()):
        want = OPS[node.op].run(batch, node, g)[0]
        ins = []
        for j, a in enumerate(batch):
            decls.append(c_array(f"in{i}_{j}", a[0]))
            ins.append(f"in{i}_{j}")
        symbols = {}
        for k, v in node.params.items():
            decls.append(c_array(f"p{i}_{k}", np.asarray(v)))
            symbols[k] = f"p{i}_{k}"
        decls.append(c_array(f"want{i}", want))
        ct = "int16_t" if want.dtype == np.int16 else "int8_t"
        body.append(f"static pqlr_status case{i}({ct} *out)\n{{\n"
                    + OPS[node.op].c_call(node, g, ins, "out", symbols) + "\n    return PQLR_OK;\n}\n"
                    f"static int check{i}(void)\n{{\n    static {ct} out[{want.size}];\n    int bad = 0;\n"
                    f"    if (case{i}(out) != PQLR_OK) return 1000;\n"
                    f"    for (int i = 0; i < {want.size}; i++) bad += out[i] != want{i}[i];\n"
                    f"    return bad;\n}}\n")
    n = len(body)
    main = ("int main(void)\n{\n    int bad = 0;\n"
            + "".join(f'    {{ int b = check{i}(); if (b) printf("case {i}: %d mismatches\\n", b); bad += b; }}\n'
                      for i in range(n)) + f'    printf("checked {n}\\n");\n    return bad != 0;\n}}\n')
    src = '#include <stdio.h>\n#include "pqlr.h"\n' + "\n".join(decls) + "\n" + "".join(body) + main
    proc = run_program(src, SOURCES, name="tf_driver")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"checked {n}" in proc.stdout


# ---------------------------------------------------------------- the same kernels on RV32IMAC / Cortex-M4
def _have_target(target: str) -> bool:
    import shutil

    from pqlr.hw import toolchains

    tc = toolchains.TOOLCHAINS[target]
    return all(shutil.which(t) for t in (tc.cc, *tc.emulator[:1]))


def mcu_model(cases) -> tuple[str, str, int, int]:
    """model.h / model.c whose pqlr_invoke runs every case's c_call on its slice of the input bytes
    and writes the outputs back to back; returns (model_h, model_c, input_bytes, output_bytes)."""
    decls, body, n_in, n_out = [], [], 0, 0
    for i, (node, g, batch) in enumerate(cases):
        ct = "int16_t" if batch[0].dtype == np.int16 else "int8_t"
        symbols = {}
        for k, v in node.params.items():
            decls.append(c_array(f"p{i}_{k}", np.asarray(v)))
            symbols[k] = f"p{i}_{k}"
        ins = []
        for j, a in enumerate(batch):
            decls.append(f"static {ct} in{i}_{j}[{a[0].size}];")
            body.append(f"    for (int k = 0; k < {a[0].nbytes}; k++)\n"
                        f"        ((uint8_t *)in{i}_{j})[k] = (uint8_t)input[{n_in} + k];")
            ins.append(f"in{i}_{j}")
            n_in += a[0].nbytes
        t_out = g.tensor(node.outputs[0])
        nbytes = t_out.nbytes
        decls.append(f"static {ct} out{i}[{t_out.size}];")
        body.append(f"    PQLR_LAYER_BEGIN({i});\n    " + OPS[node.op].c_call(node, g, ins, f"out{i}", symbols)
                    .replace("\n", "\n    ") + f"\n    PQLR_LAYER_END({i});")
        body.append(f"    for (int k = 0; k < {nbytes}; k++) output[{n_out} + k] = (int8_t)((uint8_t *)out{i})[k];")
        n_out += nbytes
    model_h = (f"#ifndef TF_MODEL_H\n#define TF_MODEL_H\n#include <stdint.h>\n#include \"pqlr_types.h\"\n"
               f"#define PQLR_INPUT_BYTES {n_in}\n#define PQLR_OUTPUT_BYTES {n_out}\n#define PQLR_ARENA_BYTES 4\n"
               f"#define PQLR_NUM_LAYERS {len(cases)}\n"
               "pqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena);\n#endif\n")
    model_c = ('#include "model.h"\n#include "pqlr.h"\n#include "pqlr_profile.h"\n' + "\n".join(decls)
               + "\npqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena)\n{\n"
               "    (void)arena;\n" + "\n".join(body) + "\n    return PQLR_OK;\n}\n")
    return model_h, model_c, n_in, n_out


@pytest.mark.emulator
@pytest.mark.parametrize("target", ["rv32imac", "cortex-m4"])
def test_kernels_bit_exact_on_mcu_emulators(target, tmp_path):
    """Every op (s8 and s16) built for the MCU and run in QEMU on 3 samples equals the oracle."""
    if not _have_target(target):
        pytest.skip(f"{target} toolchain or QEMU not installed")
    from pqlr.hw.emulate import run_model

    cases = driver_cases()
    rng = np.random.default_rng(11)
    samples = []   # per case: (3, *shape) inputs -- the driver's extremes first, then random values
    for node, g, batch in cases:
        samples.append([np.concatenate([b, ints(rng, b.shape[1:], n=2, dtype=b.dtype)]) for b in batch])
    model_h, model_c, n_in, n_out = mcu_model(cases)
    (tmp_path / "model.h").write_text(model_h)
    (tmp_path / "model.c").write_text(model_c)
    inputs = np.stack([np.concatenate([a[s].view(np.int8).ravel() for batch in samples for a in batch])
                       for s in range(3)])
    run = run_model(target, [tmp_path / "model.c", *runtime_paths(SOURCES)], [tmp_path], inputs, output_bytes=n_out)
    want = np.stack([np.concatenate([np.ascontiguousarray(OPS[node.op].run([a[s:s + 1] for a in batch], node, g))
                                     .view(np.int8).ravel() for (node, g, _), batch in zip(cases, samples)])
                     for s in range(3)])
    np.testing.assert_array_equal(run.outputs, want)
    assert inputs.shape[1] == n_in
