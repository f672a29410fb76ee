"""Lowering: a converted QuantModel (compress.quantize) -> the integer IR Graph.

The lowering walks the SAME Program the fake-quant forward runs (one emitter per QOp kind below,
one RUN entry per kind in compress.qmodules), so the two cannot drift. Every number comes from
the frozen model: integer weights and int32 biases fixed at convert, activation (scale, integer
zero point) from the LSQ+ quantizers, multipliers from pqlr.primitives. Layouts: feature maps
HWC; conv rows (KH, KW, C_in), depthwise rows the KH*KW taps, FC rows the K inputs; all packed
per primitives.pack_weights at the layer's bit-width.

    QOp kind        IR op(s)
    input           graph input (frames, feats, 1), s8
    conv            conv2d | depthwise_conv2d (ReLU = output clamp)
    linear          fully_connected (per token for (T, K) inputs)
    embed_patch     conv2d kernel (patch, feats) stride (patch, 1) -> (T, 1, D) (a reshape to (T, D) follows)
    global_avgpool  mean (H, W, C) -> (C,);  mean_tokens: mean (T, C) -> (C,)
    add / pos_add   add / pos_add (int8 table with its own qparams)
    layernorm       layernorm;  softmax: softmax;  gelu: lut (exact-erf GELU table)
    matmul          matmul (Q.K^T with alpha = 1/sqrt(d_head) in the multiplier; A.V)
    reshape / transpose   reshape / transpose (qparams unchanged)
    widen           requantize s8 -> s16 (exact: x128)
With 16-bit activations every op is the s16 variant (softmax output (1/32768, 0), int16 gamma,
interpolated 16-bit GELU table, int16 positional table).
"""
from __future__ import annotations

import numpy as np

from .. import primitives as P
from ..errors import PqlrError, UnsupportedError
from . import ops_elem, ops_nn, ops_pool, ops_tf
from .graph import Graph, Node, Tensor


def _tensor(qm, name: str) -> Tensor:
    t = qm.program.tensors[name]
    scale, zp, bits = qm.qparams(name)               # aliases share their source's quantizer
    return Tensor(name, tuple(int(s) for s in t.shape), "s16" if bits == 16 else "s8", bits, float(scale), int(zp))


def _clamp(g: Graph, op) -> dict:
    """Explicit output clamp at the output's bit-width (the transformer ops default to int8)."""
    return ops_nn.activation_clamp(g.tensor(op.output), None)


def _weight_node(qm, op, g: Graph, ir_op: str, rows: np.ndarray, attrs: dict, relu: bool) -> Node:
    """Packed weights, int32 bias, per-channel multiplier/shift and the output clamp of one layer."""
    _, b_int = qm.integer_layer(op.layer)
    wq = qm.wquant(op.layer)
    x_in, out = g.tensor(op.inputs[0]), g.tensor(op.output)
    params = {"weight": P.pack_weights(rows, wq.bits), "bias": b_int.astype(np.int32),
              **ops_nn.requant_params(x_in.scale, wq.scale.detach().double().numpy(), out.scale)}
    attrs = {**attrs, "wbits": wq.bits, **ops_nn.activation_clamp(out, "relu" if relu else None)}
    return Node(op.layer, ir_op, [op.inputs[0]], [op.output], attrs, params)


def _conv(qm, op, g):
    w_int, _ = qm.integer_layer(op.layer)              # (C_out, C_in / groups, KH, KW)
    mod = qm.layer(op.layer)
    if op.attrs["depthwise"]:
        rows, ir_op = w_int.reshape(w_int.shape[0], -1), "depthwise_conv2d"
    else:
        rows, ir_op = w_int.transpose(0, 2, 3, 1).reshape(w_int.shape[0], -1), "conv2d"
    (ph, pw) = mod.padding
    attrs = {"kernel": tuple(mod.kernel_size), "stride": tuple(mod.stride), "padding": (ph, pw, ph, pw)}
    return [_weight_node(qm, op, g, ir_op, rows, attrs, op.attrs.get("relu", False))]


def _linear(qm, op, g):
    w_int, _ = qm.integer_layer(op.layer)              # (C_out, K)
    return [_weight_node(qm, op, g, "fully_connected", w_int, {}, op.attrs.get("relu", False))]


def _embed_patch(qm, op, g):
    """Linear over patches of `patch` frames == conv2d kernel (patch, feats), stride (patch, 1) ->
    (T, 1, D); the remainder frames are dropped by the stride exactly as the model's slice drops them."""
    w_int, _ = qm.integer_layer(op.layer)              # (D, patch * feats), frame-major = (KH, KW, 1) rows
    feats = g.tensor(op.inputs[0]).shape[1]
    attrs = {"kernel": (op.attrs["patch"], feats), "stride": (op.attrs["patch"], 1), "padding": (0, 0, 0, 0)}
    return [_weight_node(qm, op, g, "conv2d", w_int, attrs, False)]


def _mean(qm, op, g):
    x, out = g.tensor(op.inputs[0]), g.tensor(op.output)
    window = int(np.prod(x.shape[:-1]))
    return [Node(op.name, "mean", list(op.inputs), [op.output], ops_pool.pool_attrs(x, out, window))]


def _add(qm, op, g):
    a, b, out = (g.tensor(t) for t in (*op.inputs, op.output))
    return [Node(op.name, "add", list(op.inputs), [op.output], ops_elem.add_attrs(a, b, out))]


def _pos_add(qm, op, g):
    table = qm.float_model.get_parameter(op.layer)[0].detach().double().numpy()   # (T, D)
    s_t, z_t = qm.act(op.attrs["table_quant"]).qparams()
    q = P.quantize_act(table, s_t, z_t, qm.act(op.attrs["table_quant"]).bits)   # int8, or int16 for s16 x
    attrs = {**ops_tf.pos_add_attrs(g.tensor(op.inputs[0]), s_t, z_t, g.tensor(op.output)), **_clamp(g, op)}
    return [Node(op.name, "pos_add", list(op.inputs), [op.output], attrs, {"table": q})]


def _layernorm(qm, op, g):
    mod = qm.layer(op.layer)
    out = g.tensor(op.output)
    params, attrs = ops_tf.layernorm_params(mod.weight.detach().double().numpy(), mod.bias.detach().double().numpy(),
                                            mod.eps, g.tensor(op.inputs[0]).scale, out.scale,
                                            16 if out.dtype == "s16" else 8)
    return [Node(op.name, "layernorm", list(op.inputs), [op.output], {**attrs, **_clamp(g, op)}, params)]


def _softmax(qm, op, g):
    out, s_in = g.tensor(op.output), g.tensor(op.inputs[0]).scale
    fixed = (1.0 / 32768.0, 0) if out.dtype == "s16" else (1.0 / 256.0, -128)
    if (out.scale, out.zero_point) != fixed:
        raise UnsupportedError(f"layer {op.name}: softmax output qparams must be {fixed}")
    if out.dtype == "s16":
        params, attrs = ops_tf.softmax_s16_params(s_in)
    else:
        params, attrs = {"table": ops_tf.softmax_table(s_in)}, {}
    return [Node(op.name, "softmax", list(op.inputs), [op.output], attrs, params)]


def _gelu(qm, op, g):
    x, out = g.tensor(op.inputs[0]), g.tensor(op.output)
    if out.dtype == "s16":                            # 513 knots, linear interpolation
        table = ops_tf.lut_table(ops_tf.gelu, x.scale, x.zero_point, out.scale, out.zero_point, 16)
    else:                                             # 256 entries, clamped to 4 or 8 bits
        table = P.make_lut(ops_tf.gelu, x.scale, x.zero_point, out.scale, out.zero_point, out.bits)
    return [Node(op.name, "lut", list(op.inputs), [op.output], {}, {"table": table})]


def _matmul(qm, op, g):
    a, b, out = (g.tensor(t) for t in (*op.inputs, op.output))
    attrs = {**ops_tf.matmul_attrs(a.scale, b.scale, out.scale, op.attrs.get("alpha", 1.0)), **_clamp(g, op)}
    return [Node(op.name, "matmul", list(op.inputs), [op.output], attrs)]


def _requantize(qm, op, g):
    x, out = g.tensor(op.inputs[0]), g.tensor(op.output)
    return [Node(op.name, "requantize", list(op.inputs), [op.output], ops_nn.requantize_attrs(x, out))]


EMIT = {
    "conv": _conv, "linear": _linear, "embed_patch": _embed_patch,
    "global_avgpool": _mean, "mean_tokens": _mean, "add": _add, "pos_add": _pos_add,
    "layernorm": _layernorm, "softmax": _softmax, "gelu": _gelu, "matmul": _matmul,
    "reshape": lambda qm, op, g: [Node(op.name, "reshape", list(op.inputs), [op.output])],
    "transpose": lambda qm, op, g: [Node(op.name, "transpose", list(op.inputs), [op.output],
                                         {"perm": tuple(op.attrs["perm"])})],
    "widen": _requantize,
}


def lower(model_q, input_shape=(49, 10), classes=None, feature=None) -> Graph:
    """A converted QuantModel -> Graph (validated). meta: classes (default "0".."n-1"), feature (the
    FeatureConfig or dict given; default FeatureConfig() when its shape fits), wbits per layer,
    abits, the model's config dict."""
    from ..compress.qmodules import QuantModel

    if not isinstance(model_q, QuantModel):
        raise PqlrError(f"lower() needs a quantized model (quantize_ prepare + convert), got {type(model_q).__name__}")
    if not model_q.frozen:
        raise PqlrError("lower() needs a converted model: call quantize_(model, cfg, step='convert') first")
    prog = model_q.program
    if tuple(input_shape) != tuple(prog.input_shape[:2]):
        raise PqlrError(f"input shape {tuple(input_shape)} differs from the model's {prog.input_shape[:2]}")
    g = Graph(tensors={n: _tensor(model_q, n) for n in prog.tensors}, nodes=[], inputs=[], outputs=[prog.output])
    for op in prog.ops:
        if op.kind == "input":
            g.inputs = [op.output]
            continue
        if op.kind not in EMIT:
            raise UnsupportedError(f"layer {op.name}: no lowering for {op.kind!r}")
        g.nodes.extend(EMIT[op.kind](model_q, op, g))
    g.validate()
    cfg = model_q.config
    n_out = g.tensor(prog.output).size
    if classes is not None and len(classes) != n_out:
        raise PqlrError(f"{len(classes)} class names for a model with {n_out} outputs")
    if feature is None:                                # the front end's default when it fits the model
        from ..data.features import FeatureConfig
        default = FeatureConfig()
        feature = default if tuple(default.shape) == tuple(prog.input_shape[:2]) else None
    if feature is not None and not isinstance(feature, dict):
        from dataclasses import asdict
        feature = asdict(feature)
    g.meta = {"classes": list(classes) if classes is not None else [str(i) for i in range(n_out)],
              "feature": feature, "wbits": model_q.weight_bits(), "abits": model_q.cfg.abits,
              "model": cfg.to_dict() if hasattr(cfg, "to_dict") else None}
    return g


def accumulator_report(graph: Graph) -> list[dict]:
    """Per weight layer: worst-case |acc| (primitives.accumulator_bound + max |bias|) vs int32."""
    rows = []
    for node in graph.nodes:
        if node.op not in ("conv2d", "depthwise_conv2d", "fully_connected"):
            continue
        x = graph.tensor(node.inputs[0])
        wbits = int(node.attrs["wbits"])
        if node.op == "conv2d":
            k = int(np.prod(node.attrs["kernel"])) * x.shape[-1]
        elif node.op == "depthwise_conv2d":
            k = int(np.prod(node.attrs["kernel"]))
        else:
            k = x.shape[-1]
        in_bits = 16 if x.dtype == "s16" else 8
        bound = P.accumulator_bound(k, in_bits, wbits)
        bias = int(np.abs(node.params["bias"].astype(np.int64)).max(initial=0)) if "bias" in node.params else 0
        worst = bound + bias
        rows.append({"layer": node.name, "op": node.op, "k": k, "in_bits": in_bits, "wbits": wbits,
                     "bound": bound, "max_bias": bias, "worst": worst,
                     "headroom_bits": float(np.log2((2**31 - 1) / max(worst, 1))),
                     "may_saturate": worst > 2**31 - 1})
    return rows
