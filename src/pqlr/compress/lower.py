"""Lowering: a converted QuantModel -> the integer IR Graph, walking the same program the fake-quant
forward runs (one emitter per step kind, one RUN entry per kind in qmodel.py).

Every number comes from the frozen model: integer weights and int32 biases fixed at convert,
activation (scale, integer zero point) from the LSQ+ quantizers, multipliers from the op modules'
builders. The one thing lowering decides is memory layout (compress/layout.py): the program speaks PyTorch
order, each emitter states the layout its kernel needs and `Layouts.need` supplies it. A PyTorch
permute only relabels; a reshape is free where the bytes already lie in PyTorch order. The graph
input takes the layout of its first reader (channels last for a conv: an image arrives HWC, MFCC
frames (frames, coefficients)); graph.meta records it.
"""
from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np

from .. import primitives as P
from ..errors import PqlrError, UnsupportedError
from ..ir import activations, ops_elem, ops_nn, ops_pool, ops_shape, ops_tf
from ..ir.graph import Graph, Node, Tensor
from ..ir.opkit import activation_clamp
from .layout import Layouts, channels_last, identity, nonunit
from .qmodel import QuantModel

# ---------------------------------------------------------------- emitters
def _clamp_of(out: Tensor, act) -> dict:
    if not act:
        return activation_clamp(out, None)
    if act[0] == "relu":
        return activation_clamp(out, "relu")
    return activation_clamp(out, "hardtanh", act[1], act[2])


def _weighted(qm, op, L, ir_op: str, x: str, rows: np.ndarray, attrs: dict, out_perm) -> None:
    _, b_int = qm.integer_layer(op.layer)
    wq = qm.wquant(op.layer)
    x_t = L.g.tensors[x]
    out = L.define(op.output, out_perm)
    params = {"weight": P.pack_weights(rows, wq.bits), "bias": b_int.astype(np.int32),
              **ops_nn.requant_params(x_t.scale, wq.scale.detach().double().numpy(), out.scale)}
    attrs = {**attrs, "wbits": wq.bits, **_clamp_of(out, op.attrs.get("act"))}
    L.g.nodes.append(Node(op.name, ir_op, [x], [out.name], attrs, params))


def _e_conv(qm, op, L):
    mod = qm.layer(op.layer)
    d = op.attrs["dims"]
    r = len(L.shape(op.inputs[0]))
    x = L.need(op.inputs[0], channels_last(r))
    w_int, _ = qm.integer_layer(op.layer)                # (C_out, C_in / groups, K...) PyTorch layout
    pads = op.attrs["padding"]
    if d == 1:
        w_int = w_int[..., None]
        kernel, stride, dil = (mod.kernel_size[0], 1), (mod.stride[0], 1), (mod.dilation[0], 1)
        padding = (pads[0][0], 0, pads[0][1], 0)
    else:
        kernel, stride, dil = tuple(mod.kernel_size), tuple(mod.stride), tuple(mod.dilation)
        padding = (pads[0][0], pads[1][0], pads[0][1], pads[1][1])
    c_in, c_out, groups = mod.in_channels, mod.out_channels, mod.groups
    attrs = {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dil}
    if groups == c_in == c_out and c_in > 1:
        rows, ir_op = w_int.reshape(c_out, -1), "depthwise_conv2d"
    else:
        rows, ir_op = w_int.transpose(0, 2, 3, 1).reshape(c_out, -1), "conv2d"
        attrs["groups"] = groups
    _weighted(qm, op, L, ir_op, x, rows, attrs, channels_last(r))


def _last_axis_layout(L, t: str, axis: int) -> tuple[int, ...]:
    """t's current layout with PyTorch axis `axis` moved IR-last (unchanged if it is last already;
    free when only size-1 axes follow it)."""
    perm = L.perm(t)
    return perm if perm[-1] == axis else tuple(p for p in perm if p != axis) + (axis,)


def _e_linear(qm, op, L):
    r = len(L.shape(op.inputs[0]))
    perm = _last_axis_layout(L, op.inputs[0], r - 1)
    x = L.need(op.inputs[0], perm)
    w_int, _ = qm.integer_layer(op.layer)
    _weighted(qm, op, L, "fully_connected", x, w_int, {}, perm)


def _e_affine(qm, op, L):
    perm = L.perm(op.inputs[0])
    x = L.need(op.inputs[0], perm)
    x_t = L.g.tensors[x]
    out = L.define(op.output, perm)
    scale, shift = (v.detach().double().numpy() for v in qm.affine_terms(op.layer, None))
    params, attrs = ops_elem.channel_affine_params(scale, shift, x_t, out)
    attrs = {**attrs, "axis": perm.index(0), **_clamp_of(out, op.attrs.get("act"))}
    L.g.nodes.append(Node(op.name, "channel_affine", [x], [out.name], attrs, params))


def _e_prelu(qm, op, L):
    perm = L.perm(op.inputs[0])
    x = L.need(op.inputs[0], perm)
    x_t = L.g.tensors[x]
    out = L.define(op.output, perm)
    alpha = (qm.layer(op.layer).weight.detach().double().numpy().ravel() if op.layer
             else np.array([op.attrs["slope"]], np.float64))
    params, attrs = ops_elem.prelu_params(alpha, x_t, out)
    attrs = {**attrs, "axis": perm.index(0)}
    L.g.nodes.append(Node(op.name, "prelu", [x], [out.name], attrs, params))


def _e_layernorm(qm, op, L):
    mod = qm.layer(op.layer)
    r = len(L.shape(op.inputs[0]))
    perm = _last_axis_layout(L, op.inputs[0], r - 1)
    x = L.need(op.inputs[0], perm)
    out = L.define(op.output, perm)
    c = L.shape(op.inputs[0])[-1]
    gamma = mod.weight.detach().double().numpy() if mod.weight is not None else np.ones(c)
    beta = mod.bias.detach().double().numpy() if mod.bias is not None else np.zeros(c)
    params, attrs = ops_tf.layernorm_params(gamma, beta, mod.eps, L.g.tensors[x].scale, out.scale,
                                            16 if out.dtype == "s16" else 8)
    L.g.nodes.append(Node(op.name, "layernorm", [x], [out.name], {**attrs, **_clamp_of(out, op.attrs.get("act"))},
                          params))


def _e_lut(qm, op, L):
    perm = L.perm(op.inputs[0])
    x = L.need(op.inputs[0], perm)
    out = L.define(op.output, perm)
    params = {k: v for k, v in op.attrs.items() if k != "fn"}
    table = activations.lut_for(op.attrs["fn"], L.g.tensors[x], out, **params)
    L.g.nodes.append(Node(op.name, "lut", [x], [out.name], {}, {"table": table}))


def _e_requant(qm, op, L, factor: float = 1.0):
    perm = L.perm(op.inputs[0])
    x = L.need(op.inputs[0], perm)
    out = L.define(op.output, perm)
    attrs = {**ops_nn.requantize_attrs(L.g.tensors[x], out, factor), **_clamp_of(out, op.attrs.get("act"))}
    L.g.nodes.append(Node(op.name, "requantize", [x], [out.name], attrs))


def _operand(qm, L, t: str, out_perm, out_rank: int):
    """(IR input name or None, const params or None) of one binary-op operand in the output's layout."""
    r = len(L.shape(t))
    lead = out_rank - r
    own = tuple(p - lead for p in out_perm if p >= lead)     # the output's order over t's own axes
    full_shape = tuple(((1,) * lead + L.shape(t))[p] for p in out_perm)
    prog_op = _producer(qm, t)
    if prog_op.kind == "const":
        value = qm.const_value(prog_op).detach().double().numpy().reshape(L.shape(t))
        value = np.transpose(value, own).reshape(full_shape)
        s, z, bits = qm.qparams(t)
        q = P.quantize_act(value, s, z, bits)
        desc = Tensor(f"{t}.const", full_shape, "s16" if bits == 16 else "s8", bits, float(s), int(z))
        return None, (q, desc)
    name = L.need(t, own)
    if len(own) != out_rank:                                # add the broadcast axes (same bytes)
        new = f"{name}@r{out_rank}"
        if new not in L.g.tensors:
            src = L.g.tensors[name]
            L.g.tensors[new] = Tensor(new, full_shape, src.dtype, src.bits, src.scale, src.zero_point)
            L.g.nodes.append(Node(f"{new}.reshape", "reshape", [name], [new]))
        name = new
    return name, None


def _e_binary(qm, op, L):
    ranks = [len(L.shape(t)) for t in op.inputs]
    rank = max(ranks)
    is_const = [_producer(qm, t).kind == "const" for t in op.inputs]
    if op.kind == "sub" and is_const[0]:
        raise UnsupportedError(f"layer {op.name} ({op.source}): `constant - tensor` does not deploy; "
                               "write it as a tensor minus a constant")
    tensors = [i for i in (0, 1) if not is_const[i]]
    full = [i for i in tensors if ranks[i] == rank]
    lead = 0 if op.kind == "sub" else (full or tensors)[0]    # IR input 1; sub keeps its order
    out_perm = L.perm(op.inputs[lead]) if ranks[lead] == rank else identity(rank)
    a, _ = _operand(qm, L, op.inputs[lead], out_perm, rank)
    b, const = _operand(qm, L, op.inputs[1 - lead], out_perm, rank)
    out = L.define(op.output, out_perm)
    a_t = L.g.tensors[a]
    b_t = const[1] if const else L.g.tensors[b]
    attrs = ops_elem.mul_attrs(a_t, b_t, out) if op.kind == "mul" else ops_elem.add_attrs(a_t, b_t, out)
    attrs = {**attrs, **_clamp_of(out, op.attrs.get("act"))}
    if const:
        q, desc = const
        attrs.update(b_scale=desc.scale, b_zero_point=desc.zero_point)
        L.g.nodes.append(Node(op.name, op.kind, [a], [out.name], attrs, {"b": q}))
    else:
        L.g.nodes.append(Node(op.name, op.kind, [a, b], [out.name], attrs))


def _producer(qm, t: str):
    return next(o for o in qm.program.ops if o.output == t)


def _e_cat(qm, op, L):
    perm = L.perm(op.inputs[0])
    out = L.define(op.output, perm)
    ins = []
    for k, t in enumerate(op.inputs):
        x = L.need(t, perm)
        x_t = L.g.tensors[x]
        if (x_t.scale, x_t.zero_point, x_t.dtype) != (out.scale, out.zero_point, out.dtype):
            rq = f"{op.output}.in{k}"
            L.g.tensors[rq] = Tensor(rq, x_t.shape, out.dtype, out.bits, out.scale, out.zero_point)
            L.g.nodes.append(Node(rq, "requantize", [x], [rq], ops_nn.requantize_attrs(x_t, L.g.tensors[rq])))
            x = rq
        ins.append(x)
    L.g.nodes.append(Node(op.name, "concat", ins, [out.name], {"axis": perm.index(op.attrs["dim"])}))


def _e_slice(qm, op, L):
    perm = L.perm(op.inputs[0])
    x = L.need(op.inputs[0], perm)
    out = L.define(op.output, perm)
    attrs = {"begin": tuple(int(op.attrs["begin"][p]) for p in perm), "step": tuple(int(op.attrs["step"][p]) for p in perm)}
    L.g.nodes.append(Node(op.name, "slice", [x], [out.name], attrs))


def _e_pad(qm, op, L):
    perm = L.perm(op.inputs[0])
    x = L.need(op.inputs[0], perm)
    out = L.define(op.output, perm)
    pads = tuple(tuple(op.attrs["pads"][p]) for p in perm)
    L.g.nodes.append(Node(op.name, "pad", [x], [out.name],
                          {"pads": pads, "value": ops_shape.pad_value(out, float(op.attrs["value"]))}))


def _e_reshape(qm, op, L):
    t_in, t_out = op.inputs[0], op.output
    s_in, s_out = L.shape(t_in), L.shape(t_out)
    if [d for d in s_in if d != 1] == [d for d in s_out if d != 1]:
        # only size-1 axes come or go: the bytes stay as they are in any layout; the non-unit axes
        # keep their IR order, the unit axes go first
        src_axes = [i for i, d in enumerate(s_in) if d != 1]
        dst_axes = [i for i, d in enumerate(s_out) if d != 1]
        to_dst = dict(zip(src_axes, dst_axes))
        perm = tuple(i for i, d in enumerate(s_out) if d == 1) + \
            tuple(to_dst[p] for p in nonunit(s_in, L.perm(t_in)))
        x = L.at[t_in][0]
    else:                                                   # merging/splitting axes: PyTorch order first
        perm = identity(len(s_out))
        x = L.need(t_in, identity(len(s_in)))
    out = L.define(t_out, perm)
    L.g.nodes.append(Node(op.name, "reshape", [x], [out.name]))


def _e_permute(qm, op, L):
    p = op.attrs["perm"]
    inv = [p.index(a) for a in range(len(p))]
    L.alias(op.output, op.inputs[0], tuple(inv[a] for a in L.perm(op.inputs[0])))


def _spatial(op, L, dims):
    r = len(L.shape(op.inputs[0]))
    x = L.need(op.inputs[0], channels_last(r))
    return x, L.define(op.output, channels_last(r)), r


def _pool2(v, dims):
    return (int(v[0]), 1) if dims == 1 else (int(v[0]), int(v[1]))


def _pads4(pads, dims):
    if dims == 1:
        return (pads[0][0], 0, pads[0][1], 0)
    return (pads[0][0], pads[1][0], pads[0][1], pads[1][1])


def _e_maxpool(qm, op, L):
    d = op.attrs["dims"]
    x, out, _ = _spatial(op, L, d)
    attrs = {"kernel": _pool2(op.attrs["kernel"], d), "stride": _pool2(op.attrs["stride"], d),
             "padding": _pads4(op.attrs["padding"], d), "dilation": _pool2(op.attrs["dilation"], d)}
    L.g.nodes.append(Node(op.name, "max_pool2d", [x], [out.name], attrs))


def _e_avgpool(qm, op, L):
    d = op.attrs["dims"]
    x, out, _ = _spatial(op, L, d)
    attrs, params = ops_pool.avg_pool_params(L.g.tensors[x], out, _pool2(op.attrs["kernel"], d),
                                             _pool2(op.attrs["stride"], d), _pads4(op.attrs["padding"], d),
                                             bool(op.attrs["count_include_pad"]))
    L.g.nodes.append(Node(op.name, "avg_pool2d", [x], [out.name], {**attrs, **_clamp_of(out, op.attrs.get("act"))},
                          params))


def _e_adaptive(qm, op, L):
    d = op.attrs["dims"]
    x, out, r = _spatial(op, L, d)
    x_t = L.g.tensors[x]
    if math.prod(op.attrs["output"]) == 1 and op.kind == "adaptive_avgpool":     # a global mean
        attrs = {"axes": tuple(range(r - 1)), **ops_pool.pool_attrs(x_t, out, math.prod(x_t.shape[:-1]))}
        L.g.nodes.append(Node(op.name, "mean", [x], [out.name], {**attrs, **_clamp_of(out, op.attrs.get("act"))}))
        return
    o = _pool2(op.attrs["output"], d)
    if op.kind == "adaptive_maxpool":
        L.g.nodes.append(Node(op.name, "adaptive_max_pool2d", [x], [out.name], {"output": o}))
        return
    attrs, params = ops_pool.adaptive_avg_params(x_t, out)
    L.g.nodes.append(Node(op.name, "adaptive_avg_pool2d", [x], [out.name],
                          {**attrs, "output": o, **_clamp_of(out, op.attrs.get("act"))}, params))


def _e_mean(qm, op, L):
    perm = L.perm(op.inputs[0])
    x = L.need(op.inputs[0], perm)
    dims = set(op.attrs["dims"])
    axes = tuple(sorted(perm.index(d) for d in dims))
    kept = [p for p in perm if p not in dims]
    if op.attrs["keepdim"]:
        out_perm = perm
    else:
        out_perm = tuple(sorted(kept).index(p) for p in kept)
    out = L.define(op.output, out_perm)
    x_t = L.g.tensors[x]
    count = math.prod(x_t.shape[a] for a in axes)
    attrs = {"axes": axes, **ops_pool.pool_attrs(x_t, out, count), **_clamp_of(out, op.attrs.get("act"))}
    L.g.nodes.append(Node(op.name, "mean", [x], [out.name], attrs))


def _e_softmax(qm, op, L):
    perm = _last_axis_layout(L, op.inputs[0], op.attrs["dim"])
    x = L.need(op.inputs[0], perm)
    out = L.define(op.output, perm)
    s_in = L.g.tensors[x].scale
    fixed = (1.0 / 32768.0, 0) if out.dtype == "s16" else (1.0 / 256.0, -128)
    if (out.scale, out.zero_point) != fixed:
        raise UnsupportedError(f"layer {op.name}: softmax output qparams must be {fixed}")
    if out.dtype == "s16":
        params, attrs = ops_tf.softmax_s16_params(s_in)
    else:
        params, attrs = {"table": ops_tf.softmax_table(s_in)}, {}
    L.g.nodes.append(Node(op.name, "softmax", [x], [out.name], attrs, params))


def _e_matmul(qm, op, L):
    r = len(L.shape(op.inputs[0]))
    if r not in (2, 3):
        raise UnsupportedError(f"layer {op.name}: matmul of rank-{r} operands (per sample: rank 2 or 3)")
    a, b = (L.need(t, identity(r)) for t in op.inputs)
    out = L.define(op.output, identity(r))
    attrs = {**ops_tf.matmul_attrs(L.g.tensors[a].scale, L.g.tensors[b].scale, out.scale, op.attrs.get("alpha", 1.0)),
             **_clamp_of(out, op.attrs.get("act"))}
    L.g.nodes.append(Node(op.name, "matmul", [a, b], [out.name], attrs))


def _e_widen(qm, op, L):
    perm = L.perm(op.inputs[0])
    x = L.need(op.inputs[0], perm)
    out = L.define(op.output, perm)
    L.g.nodes.append(Node(op.name, "requantize", [x], [out.name], ops_nn.requantize_attrs(L.g.tensors[x], out)))


EMIT = {
    "conv": _e_conv, "linear": _e_linear, "affine": _e_affine, "prelu": _e_prelu, "layernorm": _e_layernorm,
    "lut": _e_lut, "clamp": _e_requant, "scale": lambda qm, op, L: _e_requant(qm, op, L, op.attrs["factor"]),
    "add": _e_binary, "sub": _e_binary, "mul": _e_binary, "cat": _e_cat, "slice": _e_slice, "pad": _e_pad,
    "reshape": _e_reshape, "permute": _e_permute, "maxpool": _e_maxpool, "adaptive_maxpool": _e_adaptive,
    "avgpool": _e_avgpool, "adaptive_avgpool": _e_adaptive, "mean": _e_mean, "softmax": _e_softmax,
    "matmul": _e_matmul, "widen": _e_widen, "const": lambda qm, op, L: None,
}
SPATIAL_READERS = frozenset({"conv", "maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool"})


def _input_layout(qm: QuantModel) -> tuple[int, ...]:
    """Channels last when the first step reading the input (through widening) is a conv or a pool."""
    prog = qm.program
    names = {prog.ops[0].output}
    for op in prog.ops[1:]:
        if op.kind == "widen" and op.inputs[0] in names:
            names.add(op.output)
            continue
        if any(i in names for i in op.inputs):
            r = len(prog.input_shape)
            return channels_last(r) if op.kind in SPATIAL_READERS else identity(r)
    return identity(len(prog.input_shape))


def lower(model_q: QuantModel, classes=None, feature=None) -> Graph:
    """A converted QuantModel -> Graph (validated). meta: classes (default "0".."n-1"), feature (the
    audio FeatureConfig or dict, when the input is MFCC frames), input/output layouts, wbits, abits."""
    if not isinstance(model_q, QuantModel):
        raise PqlrError(f"lower() needs a quantized model (quantize_ prepare + convert), got {type(model_q).__name__}")
    if not model_q.frozen:
        raise PqlrError("lower() needs a converted model: call quantize_(model, cfg, step='convert') first")
    prog = model_q.program
    g = Graph(tensors={}, nodes=[], inputs=[], outputs=[])
    L = Layouts(model_q, g)
    in_perm = _input_layout(model_q)
    for op in prog.ops:
        if op.kind == "input":
            g.inputs = [L.define(op.output, in_perm, "input").name]
            continue
        if op.kind not in EMIT:
            raise UnsupportedError(f"layer {op.name}: no lowering for {op.kind!r}")
        EMIT[op.kind](model_q, op, L)
    out_perm = identity(len(L.shape(prog.output)))
    out = L.need(prog.output, out_perm)
    if out in g.inputs:
        raise UnsupportedError("the model's output is its input")
    g.outputs = [out]
    g.validate()
    n_out = g.tensor(out).size
    if classes is not None and len(classes) != n_out:
        raise PqlrError(f"{len(classes)} class names for a model with {n_out} outputs")
    if feature is not None and not isinstance(feature, dict):
        feature = asdict(feature)
    g.meta = {"classes": list(classes) if classes is not None else [str(i) for i in range(n_out)],
              "feature": feature, "wbits": model_q.weight_bits(), "abits": model_q.cfg.abits,
              "input_layout": {"torch_shape": list(prog.input_shape), "perm": list(in_perm)},
              "output_layout": {"torch_shape": list(L.shape(prog.output)), "perm": list(out_perm)}}
    return g


def accumulator_report(graph: Graph) -> list[dict]:
    """Per weight layer: worst-case |acc| (primitives.accumulator_bound + max |bias|) vs int32."""
    rows = []
    for node in graph.nodes:
        if node.op not in ("conv2d", "depthwise_conv2d", "fully_connected"):
            continue
        x = graph.tensor(node.inputs[0])
        wbits = int(node.attrs["wbits"])
        k = _row_length(node, x)
        in_bits = 16 if x.dtype == "s16" else 8
        bound = P.accumulator_bound(k, in_bits, wbits)
        bias = int(np.abs(node.params["bias"].astype(np.int64)).max(initial=0)) if "bias" in node.params else 0
        worst = bound + bias
        rows.append({"layer": node.name, "op": node.op, "k": k, "in_bits": in_bits, "wbits": wbits,
                     "bound": bound, "max_bias": bias, "worst": worst,
                     "headroom_bits": float(np.log2((2**31 - 1) / max(worst, 1))),
                     "may_saturate": worst > 2**31 - 1})
    return rows


def _row_length(node: Node, x: Tensor) -> int:
    """K: weights per output channel (conv: taps x input channels per group)."""
    if node.op == "fully_connected":
        return x.shape[-1]
    taps = int(np.prod(node.attrs["kernel"]))
    if node.op == "depthwise_conv2d":
        return taps
    return taps * x.shape[-1] // int(node.attrs.get("groups", 1))
