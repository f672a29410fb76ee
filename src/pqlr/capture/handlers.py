"""What each supported PyTorch operation becomes in the captured graph: one handler per handler key
of capture/optable.py. A handler reads the fx node's arguments (through the capture context `c`:
`c.tensor`, `c.value`, `c.dim`, `c.out_shape`), checks what PQLR can deploy, and emits canonical
nodes (`c.emit`) -- or refuses with `c.refuse`, which names the node, the operation and the user's
line. Shapes and dims are without the batch.
"""
from __future__ import annotations

import math

import torch
import torch.fx as fx
from torch import nn


# ---------------------------------------------------------------- argument access
def _arg(n: fx.Node, i: int, name: str, default=None):
    if len(n.args) > i:
        return n.args[i]
    return n.kwargs.get(name, default)


def _tup(v, k: int) -> tuple[int, ...]:
    v = tuple(v) if isinstance(v, (tuple, list)) else (v,) * k
    if len(v) == 1 and k > 1:
        v = v * k
    return tuple(int(a) for a in v)


# ---------------------------------------------------------------- handlers (one per handler key)
def _h_conv(c, n: fx.Node, mod: nn.Module):
    dims = 1 if isinstance(mod, nn.Conv1d) else 2
    if mod.padding_mode != "zeros":
        raise c.refuse(f"{n.target}: padding_mode={mod.padding_mode!r} (only zero padding deploys)")
    k, dil = _tup(mod.kernel_size, dims), _tup(mod.dilation, dims)
    if mod.padding == "same":
        tot = [d * (kk - 1) for d, kk in zip(dil, k)]
        pads = tuple((t // 2, t - t // 2) for t in tot)
    elif mod.padding == "valid":
        pads = ((0, 0),) * dims
    else:
        pads = tuple((p, p) for p in _tup(mod.padding, dims))
    x = c.tensor(n.args[0])
    if c.full_rank(n.args[0]) != dims + 2:
        raise c.refuse(f"{n.target}: Conv{dims}d needs a batched (B, C, ...) input")
    c.modules[n.target] = mod
    return c.emit("conv", [x], module=n.target, name=n.target, dims=dims, padding=pads)


def _h_module_layer(op: str):
    def h(c, n: fx.Node, mod: nn.Module):
        x = c.tensor(n.args[0])
        if op == "batchnorm":
            if mod.running_mean is None:
                raise c.refuse(f"{n.target}: BatchNorm without running statistics cannot be deployed")
            want = (2, 3) if isinstance(mod, nn.BatchNorm1d) else (4,)
            if c.full_rank(n.args[0]) not in want:
                raise c.refuse(f"{n.target}: {type(mod).__name__} on a rank-{c.full_rank(n.args[0])} input")
        if op == "layernorm" and len(mod.normalized_shape) != 1:
            raise c.refuse(f"{n.target}: LayerNorm over {tuple(mod.normalized_shape)} (only the last dim deploys)")
        c.modules[n.target] = mod
        return c.emit(op, [x], module=n.target, name=n.target)
    return h


_ACT_MODULES = {nn.ReLU: "relu", nn.Sigmoid: "sigmoid", nn.Tanh: "tanh", nn.Hardswish: "hardswish",
                nn.Hardsigmoid: "hardsigmoid", nn.SiLU: "silu", nn.Mish: "mish"}
_ACT_FUNCS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "hardswish": "hardswish",
              "hardsigmoid": "hardsigmoid", "silu": "silu", "mish": "mish"}


def _h_act(c, n: fx.Node, mod: nn.Module | None):
    x = c.tensor(n.args[0])
    if mod is not None:
        t = type(mod)
        if t in _ACT_MODULES:
            attrs = {"fn": _ACT_MODULES[t]}
        elif t is nn.ReLU6:
            attrs = {"fn": "hardtanh", "min": 0.0, "max": 6.0}
        elif t is nn.Hardtanh:
            attrs = {"fn": "hardtanh", "min": float(mod.min_val), "max": float(mod.max_val)}
        elif t is nn.LeakyReLU:
            attrs = {"fn": "leaky_relu", "slope": float(mod.negative_slope)}
        elif t is nn.GELU:
            attrs = {"fn": "gelu" if mod.approximate == "none" else "gelu_tanh"}
        elif t is nn.ELU:
            attrs = {"fn": "elu", "alpha": float(mod.alpha)}
        else:                                              # nn.Softplus
            attrs = {"fn": "softplus", "beta": float(mod.beta), "threshold": float(mod.threshold)}
    else:
        name = n.target if isinstance(n.target, str) else n.target.__name__
        v = lambda i, k, d: float(c.value(_arg(n, i, k, d)))  # noqa: E731
        if name in _ACT_FUNCS:
            attrs = {"fn": _ACT_FUNCS[name]}
        elif name == "relu6":
            attrs = {"fn": "hardtanh", "min": 0.0, "max": 6.0}
        elif name == "hardtanh":
            attrs = {"fn": "hardtanh", "min": v(1, "min_val", -1.0), "max": v(2, "max_val", 1.0)}
        elif name == "leaky_relu":
            attrs = {"fn": "leaky_relu", "slope": v(1, "negative_slope", 0.01)}
        elif name == "gelu":
            attrs = {"fn": "gelu" if c.value(n.kwargs.get("approximate", "none")) == "none" else "gelu_tanh"}
        elif name == "elu":
            attrs = {"fn": "elu", "alpha": v(1, "alpha", 1.0)}
        else:                                              # softplus
            attrs = {"fn": "softplus", "beta": v(1, "beta", 1.0), "threshold": v(2, "threshold", 20.0)}
    if attrs["fn"] == "hardtanh" and None not in (attrs["min"], attrs["max"]) and not attrs["min"] < attrs["max"]:
        raise c.refuse(f"hardtanh range [{attrs['min']}, {attrs['max']}] is empty")
    return c.emit("act", [x], **attrs)


def _h_clamp(c, n: fx.Node, mod):
    """torch.clamp / clip / clamp_min / clamp_max with number bounds: a clamp (relu when it is max(x, 0))."""
    name = n.target if isinstance(n.target, str) else n.target.__name__
    lo = c.value(_arg(n, 1, "min")) if name != "clamp_max" else None
    hi = c.value(_arg(n, 2 if name not in ("clamp_min", "clamp_max") else 1, "max")) if name != "clamp_min" else None
    if name == "clamp_max":
        lo, hi = None, c.value(_arg(n, 1, "max"))
    for v in (lo, hi):
        if v is not None and not isinstance(v, (int, float)):
            raise c.refuse("clamp bounds must be numbers (not tensors)")
    if lo is None and hi is None:
        return ("t", c.tensor(n.args[0]))
    if lo is not None and hi is not None and not lo < hi:
        raise c.refuse(f"clamp range [{lo}, {hi}] is empty")
    if lo == 0 and hi is None:
        return c.emit("act", [c.tensor(n.args[0])], fn="relu")
    return c.emit("act", [c.tensor(n.args[0])], fn="hardtanh", min=None if lo is None else float(lo),
                  max=None if hi is None else float(hi))


def _h_softmax(c, n: fx.Node, mod: nn.Module | None):
    d = mod.dim if mod is not None else _arg(n, 1, "dim")
    if d is None:
        raise c.refuse("softmax without an explicit dim")
    return c.emit("softmax", [c.tensor(n.args[0])], dim=c.dim(d, c.full_rank(n.args[0])))


def _h_dropout(c, n: fx.Node, mod: nn.Module | None):
    p = mod.p if mod is not None else c.value(_arg(n, 1, "p", 0.5))
    return c.emit("dropout", [c.tensor(n.args[0])], p=float(p))


def _h_identity(c, n: fx.Node, mod):
    return ("t", c.tensor(n.args[0]))


def _h_reshape(c, n: fx.Node, mod):
    x = c.tensor(n.args[0])
    shape = c.out_shape()
    if shape == c.out_shape(n.args[0].name):
        return ("t", x)
    return c.emit("reshape", [x], shape)


def _h_permute(c, n: fx.Node, mod):
    rank = c.full_rank(n.args[0])
    name = n.target if isinstance(n.target, str) else n.target.__name__
    if name == "transpose":
        a = c.dim(_arg(n, 1, "dim0"), rank) + 1
        b = c.dim(_arg(n, 2, "dim1"), rank) + 1
        perm = list(range(rank))
        perm[a], perm[b] = perm[b], perm[a]
    else:
        dims = n.args[1:] if n.op == "call_method" else (_arg(n, 1, "dims"),)
        if len(dims) == 1 and isinstance(c.value(dims[0]), (tuple, list)):
            dims = c.value(dims[0])
        perm = [int(c.value(d)) % rank for d in dims]
    if sorted(perm) != list(range(rank)) or perm[0] != 0:
        raise c.refuse(f"permutation {perm} moves the batch dimension")
    x = c.tensor(n.args[0])
    if perm == list(range(rank)):
        return ("t", x)
    return c.emit("permute", [x], perm=tuple(p - 1 for p in perm[1:]))


def _binary(op: str):
    def h(c, n: fx.Node, mod):
        a, b = _arg(n, 0, "input"), _arg(n, 1, "other")
        if n.kwargs.get("alpha", 1) != 1 or n.kwargs.get("rounding_mode") is not None:
            raise c.refuse(f"{op} with alpha/rounding_mode is not supported")
        is_t = [isinstance(v, fx.Node) and c.env.get(v.name, ("?",))[0] == "t" for v in (a, b)]
        if not any(is_t):
            if any(isinstance(v, fx.Node) and c.env.get(v.name, ("?",))[0] == "param" for v in (a, b)):
                raise c.refuse(f"{op} of two constant tensors (compute it outside forward)")
            return _h_python(c, n, mod)                   # shape arithmetic: b, c * f
        t_arg = a if is_t[0] else b
        rank = c.full_rank(t_arg)
        if op in ("mul", "div") and not all(is_t):
            other = b if is_t[0] else a
            if isinstance(other, fx.Node) and c.env.get(other.name, ("?",))[0] == "param":
                if op == "div":
                    raise c.refuse("division by a tensor is not supported")
                return c.emit("mul", [c.tensor(t_arg), c.const(other, rank)])
            f = float(c.value(other))
            if op == "div":
                if not is_t[0]:
                    raise c.refuse("a number divided by a tensor is not supported")
                f = 1.0 / f if f != 0 else math.inf
            if not (math.isfinite(f) and f > 0):
                raise c.refuse(f"multiplication by {f} (only positive finite factors deploy)")
            if f == 1.0:
                return ("t", c.tensor(t_arg))
            return c.emit("scale", [c.tensor(t_arg)], factor=f)
        if op == "div":
            raise c.refuse("division by a tensor is not supported")
        ins = [c.tensor(v) if t else c.const(v, rank) for v, t in zip((a, b), is_t)]
        return c.emit(op, ins)
    return h


def _h_cat(c, n: fx.Node, mod):
    xs = _arg(n, 0, "tensors")
    if not isinstance(xs, (list, tuple)) or not xs:
        raise c.refuse("cat needs a list of tensors")
    names = [c.tensor(x) for x in xs]
    d = c.dim(_arg(n, 1, "dim", 0), c.full_rank(xs[0]))
    if len(names) == 1:
        return ("t", names[0])
    if len(names) > 8:
        raise c.refuse(f"cat of {len(names)} tensors (at most 8)")
    return c.emit("cat", names, dim=d)


def _reduce_dims(c, n: fx.Node, what: str) -> tuple[tuple[int, ...], bool]:
    """The (sorted, non-negative) dims and keepdim of a mean/sum call."""
    dims = _arg(n, 1, "dim")
    if dims is None:
        raise c.refuse(f"{what} over every dim would include the batch; give the dims")
    dims = c.value(dims)
    dims = dims if isinstance(dims, (tuple, list)) else (dims,)
    rank = c.full_rank(n.args[0])
    return tuple(sorted({c.dim(d, rank) for d in dims})), bool(c.value(_arg(n, 2, "keepdim", False)))


def _h_mean(c, n: fx.Node, mod):
    ds, keep = _reduce_dims(c, n, "mean")
    return c.emit("mean", [c.tensor(n.args[0])], dims=ds, keepdim=keep)


def _h_sum(c, n: fx.Node, mod):
    """x.sum(dims): the mean over those dims times their element count."""
    ds, keep = _reduce_dims(c, n, "sum")
    in_shape = c.out_shape(n.args[0].name)
    count = math.prod(in_shape[d] for d in ds)
    mean = c.emit("mean", [c.tensor(n.args[0])], name=f"{n.name}_mean", dims=ds, keepdim=keep)
    return c.emit("scale", [mean[1]], factor=float(count)) if count != 1 else mean


def _h_stack(c, n: fx.Node, mod):
    """torch.stack: each tensor gets a size-1 axis at dim, then a concat along it."""
    xs = _arg(n, 0, "tensors")
    if not isinstance(xs, (list, tuple)) or not xs or len(xs) > 8:
        raise c.refuse("stack needs a list of 1 to 8 tensors")
    out = c.out_shape()
    d = c.dim(_arg(n, 1, "dim", 0), len(out) + 1)
    one = out[:d] + (1,) + out[d + 1:]
    parts = [c.emit("reshape", [c.tensor(x)], one, name=f"{n.name}_{k}")[1] for k, x in enumerate(xs)]
    return ("t", parts[0]) if len(parts) == 1 else c.emit("cat", parts, dim=d)


def _h_matmul(c, n: fx.Node, mod):
    a, b = n.args[0], n.args[1]
    for v in (a, b):
        if not (isinstance(v, fx.Node) and c.env.get(v.name, ("?",))[0] == "t"):
            raise c.refuse("matmul with a parameter is not supported (use nn.Linear)")
    if c.full_rank(a) != c.full_rank(b) or c.full_rank(a) < 3:
        raise c.refuse(f"matmul of rank {c.full_rank(a)} and {c.full_rank(b)} tensors (equal ranks, batched)")
    return c.emit("matmul", [c.tensor(a), c.tensor(b)])


def _pads_from_torch(c, pad, rank: int) -> tuple[tuple[int, int], ...]:
    """F.pad's (last-dim-first) pad list -> (before, after) for every non-batch dim."""
    pad = [int(p) for p in pad]
    if len(pad) % 2 or len(pad) // 2 > rank - 1:
        raise c.refuse(f"pad {pad} would pad the batch dimension or is malformed")
    if min(pad, default=0) < 0:
        raise c.refuse(f"negative padding {pad} (cropping) is not supported; slice instead")
    out = [(0, 0)] * (rank - 1)
    for i in range(len(pad) // 2):
        out[rank - 2 - i] = (pad[2 * i], pad[2 * i + 1])
    return tuple(out)


def _h_pad(c, n: fx.Node, mod):
    rank = c.full_rank(n.args[0])
    if mod is not None:
        pad, value = _tup(mod.padding, 2 if "1d" in type(mod).__name__ else 4), float(getattr(mod, "value", 0.0))
    else:
        pad = c.value(_arg(n, 1, "pad"))
        if c.value(_arg(n, 2, "mode", "constant")) != "constant":
            raise c.refuse("only constant padding deploys (reflect/replicate/circular do not)")
        value = c.value(_arg(n, 3, "value", 0.0))
        value = 0.0 if value is None else float(value)
    return c.emit("pad", [c.tensor(n.args[0])], pads=_pads_from_torch(c, pad, rank), value=value)


def _pool_common(c, n: fx.Node, mod, kind: str):
    rank = c.full_rank(n.args[0])
    dims = rank - 2
    if dims not in (1, 2):
        raise c.refuse(f"{kind} pooling of a rank-{rank} tensor (1-D or 2-D pooling of (B, C, ...) only)")
    g = (lambda k, i, d: getattr(mod, k)) if mod is not None else (lambda k, i, d: c.value(_arg(n, i, k, d)))
    return rank, dims, g


def _h_maxpool(c, n: fx.Node, mod):
    rank, dims, g = _pool_common(c, n, mod, "max")
    k = _tup(g("kernel_size", 1, None), dims)
    s = g("stride", 2, None)
    s = k if s is None or s == [] or s == () else _tup(s, dims)
    p, dl = _tup(g("padding", 3, 0), dims), _tup(g("dilation", 4, 1), dims)
    if g("return_indices", 6, False):
        raise c.refuse("max pooling with return_indices")
    return _pool_emit(c, n, "maxpool", dims, k, s, p, dl, bool(g("ceil_mode", 5, False)))


def _h_avgpool(c, n: fx.Node, mod):
    rank, dims, g = _pool_common(c, n, mod, "average")
    k = _tup(g("kernel_size", 1, None), dims)
    s = g("stride", 2, None)
    s = k if s is None or s == [] or s == () else _tup(s, dims)
    p = _tup(g("padding", 3, 0), dims)
    if (mod.divisor_override if mod is not None else c.value(_arg(n, 6, "divisor_override", None))) is not None:
        raise c.refuse("average pooling with divisor_override")
    cip = bool(g("count_include_pad", 5, True))
    return _pool_emit(c, n, "avgpool", dims, k, s, p, (1,) * dims, bool(g("ceil_mode", 4, False)),
                      count_include_pad=cip)


def _pool_emit(c, n, op, dims, k, s, p, dl, ceil_mode, **extra):
    in_sp = c.out_shape(n.args[0].name)[1:]
    floor_out = tuple((i + 2 * pp - d * (kk - 1) - 1) // ss + 1 for i, kk, ss, pp, d in zip(in_sp, k, s, p, dl))
    if ceil_mode and floor_out != c.out_shape()[1:]:
        raise c.refuse(f"ceil_mode=True changes the output here ({c.out_shape()[1:]} vs {floor_out})")
    attrs = dict(dims=dims, kernel=k, stride=s, padding=tuple((pp, pp) for pp in p), **extra)
    if op == "maxpool":
        attrs["dilation"] = dl
    return c.emit(op, [c.tensor(n.args[0])], **attrs)


def _h_adaptive(op: str):
    def h(c, n: fx.Node, mod):
        rank, dims, g = _pool_common(c, n, mod, op)
        if mod is not None and getattr(mod, "return_indices", False):
            raise c.refuse("adaptive max pooling with return_indices")
        return c.emit(op, [c.tensor(n.args[0])], dims=dims, output=c.out_shape()[1:])
    return h


def _slice_nodes(c, x: str, in_shape, begin, end, step, out_shape):
    """A slice node (skipped when it keeps everything) then a reshape to out_shape if it differs."""
    full = all(b == 0 and e == s and st == 1 for b, e, st, s in zip(begin, end, step, in_shape))
    res = ("t", x)
    sliced = tuple(len(range(b, e, st)) for b, e, st in zip(begin, end, step))
    if not full:
        res = c.emit("slice", [x], sliced, begin=tuple(begin), end=tuple(end), step=tuple(step))
    if tuple(out_shape) != sliced:
        res = c.emit("reshape", [res[1]], tuple(out_shape), name=f"{c.fx.name}_reshape")
    return res


def _h_getitem(c, n: fx.Node, mod):
    src, idx = n.args[0], n.args[1]
    kind = c.env.get(src.name, ("?",))[0] if isinstance(src, fx.Node) else "?"
    if kind == "py":
        return ("py", None)
    if kind == "seq":
        return c.env[src.name][1][int(c.value(idx))]
    x = c.tensor(src)
    shape = c.out_shape(src.name)
    idx = c.value(idx, batch_ok=False)
    idx = idx if isinstance(idx, tuple) else (idx,)
    if any(isinstance(i, (torch.Tensor, list, fx.Node)) for i in idx):
        raise c.refuse("indexing with tensors or lists (advanced indexing) is not supported")
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if Ellipsis in idx:
        e = idx.index(Ellipsis)
        idx = idx[:e] + (slice(None),) * (len(shape) + 1 - n_real) + idx[e + 1:]
    idx = tuple(i for i in idx if i is not None) + (slice(None),) * (len(shape) + 1 - n_real)
    if idx[0] != slice(None):
        raise c.refuse("indexing the batch dimension")
    begin, end, step = [], [], []
    for i, size in zip(idx[1:], shape):
        if isinstance(i, slice):
            b, e, st = i.indices(size)
            if st < 1:
                raise c.refuse("negative slice steps")
            e = max(e, b)
        else:
            b = int(i) + size if int(i) < 0 else int(i)
            if not 0 <= b < size:
                raise c.refuse(f"index {i} out of range for size {size}")
            e, st = b + 1, 1
        begin.append(b), end.append(e), step.append(st)
    return _slice_nodes(c, x, shape, begin, end, step, c.out_shape())


def _h_split(c, n: fx.Node, mod):
    """split / chunk: one slice per part, from the recorded part shapes."""
    x, shape = c.tensor(n.args[0]), c.out_shape(n.args[0].name)
    d = c.dim(_arg(n, 2, "dim", 0), len(shape) + 1)
    parts, at, out = c.vals[0][n.name], 0, []
    for k, p in enumerate(parts):
        size = int(p.shape[d + 1])
        begin = [0] * len(shape)
        end = list(shape)
        begin[d], end[d] = at, at + size
        sliced = tuple(e - b for b, e in zip(begin, end))
        out.append(c.emit("slice", [x], sliced, name=f"{n.name}_{k}", begin=tuple(begin), end=tuple(end),
                          step=(1,) * len(shape)))
        at += size
    return ("seq", out)


def _h_narrow(c, n: fx.Node, mod):
    x, shape = c.tensor(n.args[0]), c.out_shape(n.args[0].name)
    d = c.dim(_arg(n, 1, "dim"), len(shape) + 1)
    start, length = int(c.value(_arg(n, 2, "start"))), int(c.value(_arg(n, 3, "length")))
    start = start + shape[d] if start < 0 else start
    begin, end = [0] * len(shape), list(shape)
    begin[d], end[d] = start, start + length
    return _slice_nodes(c, x, shape, begin, end, [1] * len(shape), c.out_shape())


def _h_python(c, n: fx.Node, mod):
    v = c.vals[0][n.name]
    if isinstance(v, torch.Tensor):
        raise c.refuse("produces a tensor through an unsupported path")
    return ("py", None)


HANDLERS = {
    "conv": _h_conv, "linear": _h_module_layer("linear"), "batchnorm": _h_module_layer("batchnorm"),
    "layernorm": _h_module_layer("layernorm"), "prelu": _h_module_layer("prelu"), "act": _h_act,
    "softmax": _h_softmax, "dropout": _h_dropout, "identity": _h_identity, "reshape": _h_reshape,
    "permute": _h_permute, "add": _binary("add"), "sub": _binary("sub"), "mul": _binary("mul"),
    "div": _binary("div"), "cat": _h_cat, "mean": _h_mean, "matmul": _h_matmul, "pad": _h_pad,
    "maxpool": _h_maxpool, "avgpool": _h_avgpool, "adaptive_avgpool": _h_adaptive("adaptive_avgpool"),
    "adaptive_maxpool": _h_adaptive("adaptive_maxpool"), "getitem": _h_getitem, "split": _h_split,
    "chunk": _h_split, "narrow": _h_narrow, "python": _h_python, "clamp": _h_clamp, "sum": _h_sum,
    "stack": _h_stack,
}
