"""The quantized program: the captured graph (after BatchNorm folding) as a list of integer-op
steps (`QOp`) with the place of every activation quantizer decided. The fake-quant model
(qmodules.QuantModel) runs exactly this list in PyTorch and compress/lower.py turns exactly this
list into IR nodes, so what QAT trains and what the C computes cannot drift.

Decisions taken here ("decide"; qmodules and lower "do"):
  * fusion: a relu / hardtanh (ReLU6) whose producer is read by nothing else becomes that producer's
    output clamp (conv, linear, affine, add, sub, mul, pooling, mean, scale, matmul, layernorm);
    a `scale` read only by a matmul folds into its multiplier (attention's 1/sqrt(d)), a chain of
    scales into one (x.sum(d) / n is a mean); a zero pad
    read only by a conv on its spatial dims folds into the conv's padding; dropout disappears.
  * quantizers: every step that computes new values gets its own (scale, zero point); steps that
    only move or select values (reshape, permute, slice, pad, max pooling) keep their input's;
    softmax outputs are fixed (1/256, -128 for int8; 1/32768, 0 for int16); the model input is int8;
    the output is at least 8 bit (4-bit logits tie too often).
  * 16-bit activations: every step runs on int16; the int8 input is widened exactly (scale / 128).
Tensor shapes are PyTorch's, without the batch; layouts are lower.py's business.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..capture import CGraph, CNode, GraphModel
from ..errors import UnsupportedError

ALIAS_KINDS = frozenset({"reshape", "permute", "slice", "pad", "maxpool", "adaptive_maxpool"})
FUSE_INTO = frozenset({"conv", "linear", "affine", "add", "sub", "mul", "avgpool", "adaptive_avgpool", "mean",
                       "scale", "matmul", "layernorm"})
WEIGHT_KINDS = frozenset({"conv", "linear"})
LUT_FNS = frozenset({"sigmoid", "tanh", "hardswish", "hardsigmoid", "silu", "gelu", "gelu_tanh", "elu",
                     "softplus", "mish"})


@dataclass
class QTensor:
    name: str
    shape: tuple[int, ...]          # PyTorch order, no batch
    bits: int                       # 4, 8 or 16
    quant: str | None = None        # key of the ActQuant giving its qparams (its own or its source's)
    widen_of: str | None = None     # exact int8 -> int16 copy of this tensor (scale / 128, zp 0)


@dataclass(frozen=True)
class QOp:
    kind: str                       # a key of qmodules.RUN and of lower.EMIT
    name: str                       # node name (IR node name, messages)
    inputs: tuple[str, ...]
    output: str
    layer: str = ""                 # module path (weights) or constant key
    attrs: dict = field(default_factory=dict)
    source: str = ""                # the user's line


@dataclass
class Program:
    input_shape: tuple[int, ...]
    ops: list[QOp] = field(default_factory=list)
    tensors: dict[str, QTensor] = field(default_factory=dict)
    layers: list[str] = field(default_factory=list)          # conv/linear modules in execution order
    layer_input: dict[str, str] = field(default_factory=dict)
    affines: list[str] = field(default_factory=list)         # standalone BatchNorm modules
    quantizers: dict[str, int] = field(default_factory=dict)  # ActQuant key -> bits
    fixed: dict[str, str] = field(default_factory=dict)      # ActQuant key -> "softmax"
    output: str = ""


def _refuse(node: CNode, msg: str) -> UnsupportedError:
    return UnsupportedError(f"node {node.name} ({node.op}{', ' + node.source if node.source else ''}): {msg}")


class _Builder:
    def __init__(self, gm: GraphModel, abits: int):
        self.gm, self.g, self.abits = gm, gm.graph, abits
        self.p = Program(gm.input_shape)
        self.name: dict[str, str] = {}             # graph node -> program tensor
        self._wide: dict[str, str] = {}

    def emit(self, kind: str, node: CNode, inputs: list[str], *, layer: str = "", alias: bool = False,
             bits: int | None = None, fixed: str | None = None, shape=None, **attrs) -> str:
        if self.abits == 16 and kind != "input":
            inputs = [self.wide(i) for i in inputs]
        out = node.name
        if alias:
            src = self.p.tensors[inputs[0]]
            self.p.tensors[out] = QTensor(out, tuple(shape or node.shape), src.bits, src.quant, src.widen_of)
        else:
            b = bits or self.abits
            self.p.tensors[out] = QTensor(out, tuple(shape or node.shape), b, out)
            self.p.quantizers[out] = b
            if fixed:
                self.p.fixed[out] = fixed
        if kind in WEIGHT_KINDS:
            if layer not in self.p.layers:
                self.p.layers.append(layer)
            self.p.layer_input.setdefault(layer, inputs[0])
        if kind == "affine" and layer not in self.p.affines:
            self.p.affines.append(layer)
        self.p.ops.append(QOp(kind, node.name, tuple(inputs), out, layer, attrs, node.source))
        self.name[node.name] = out
        return out

    def wide(self, t: str) -> str:
        src = self.p.tensors[t]
        if src.bits == 16:
            return t
        if t not in self._wide:
            out = f"{t}:s16"
            self.p.tensors[out] = QTensor(out, src.shape, 16, None, widen_of=t)
            self.p.ops.append(QOp("widen", out, (t,), out))
            self._wide[t] = out
        return self._wide[t]

    def sole_reader(self, name: str) -> CNode | None:
        readers = self.g.consumers(name)
        if len(readers) == 1 and name != self.g.output:
            return readers[0]
        return None


def _act_of(node: CNode):
    """("relu",) / ("hardtanh", lo, hi) for a clamp-like act node, else None."""
    if node.op != "act":
        return None
    if node.attrs["fn"] == "relu":
        return ("relu",)
    if node.attrs["fn"] == "hardtanh":
        lo, hi = node.attrs["min"], node.attrs["max"]
        return ("hardtanh", None if lo is None else float(lo), None if hi is None else float(hi))
    return None


def build_program(gm: GraphModel, abits: int = 8) -> Program:
    """The quantized program of a (BatchNorm-folded) captured model."""
    b = _Builder(gm, abits)
    g = gm.graph
    skip: set[str] = set()                         # nodes folded into another step
    act: dict[str, tuple] = {}                     # producer -> fused activation
    pads: dict[str, tuple] = {}                    # conv -> extra padding from a folded pad node
    alpha: dict[str, float] = {}                   # matmul -> folded scale
    factor: dict[str, float] = {}                  # scale -> the product of a chain of scales
    redirect: dict[str, str] = {}                  # skipped node -> node whose tensor it is
    for n in g.nodes:                              # fusion decisions first
        a = _act_of(n)
        if a and g.node(n.inputs[0]).op in FUSE_INTO and b.sole_reader(n.inputs[0]) is n \
                and n.inputs[0] not in act:
            act[n.inputs[0]] = a
            skip.add(n.name)
            redirect[n.name] = n.inputs[0]
        if n.op == "scale" and g.node(n.inputs[0]).op == "matmul" and b.sole_reader(n.inputs[0]) is n \
                and n.inputs[0] not in act:
            alpha[n.inputs[0]] = float(n.attrs["factor"])
            skip.add(n.name)
            redirect[n.name] = n.inputs[0]
        if n.op == "scale" and g.node(n.inputs[0]).op == "scale" and n.inputs[0] not in skip \
                and b.sole_reader(n.inputs[0]) is n:            # x * a * b: one requantize
            first = g.node(n.inputs[0])
            factor[n.name] = factor.get(first.name, float(first.attrs["factor"])) * float(n.attrs["factor"])
            skip.add(first.name)
            redirect[first.name] = first.inputs[0]
            if abs(factor[n.name] - 1.0) < 1e-9 and n.name != g.output:      # they cancel
                skip.add(n.name)
                redirect[n.name] = first.inputs[0]
        if n.op == "pad" and float(n.attrs["value"]) == 0.0:
            reader = b.sole_reader(n.name)
            if reader is not None and reader.op == "conv" and tuple(n.attrs["pads"][0]) == (0, 0):
                pads[reader.name] = tuple(n.attrs["pads"][1:])
                skip.add(n.name)
                redirect[n.name] = n.inputs[0]
        if n.op == "dropout":
            skip.add(n.name)
            redirect[n.name] = n.inputs[0]

    def src(name: str) -> str:
        while name in redirect:
            name = redirect[name]
        return b.name[name]

    for n in g.nodes:
        if n.name in skip:
            continue
        ins = [src(i) for i in n.inputs]
        _STEP[n.op](b, n, ins, act.get(n.name), pads.get(n.name), alpha.get(n.name, factor.get(n.name)))
    out = src(g.output)
    key = b.p.tensors[out].quant
    if key is not None and key not in b.p.fixed:    # logits: at least 8 bit
        bits = max(b.p.quantizers[key], 8)
        b.p.quantizers[key] = bits
        for t in b.p.tensors.values():
            if t.quant == key:
                t.bits = bits
    b.p.output = out
    return b.p


# ---------------------------------------------------------------- one step per canonical op
def _s_input(b, n, ins, act, pads, alpha):
    b.emit("input", n, [], bits=8)


def _s_conv(b, n, ins, act, pads, alpha):
    padding = tuple(n.attrs["padding"])
    if pads:
        padding = tuple((p0 + q0, p1 + q1) for (p0, p1), (q0, q1) in zip(padding, pads))
    b.emit("conv", n, ins, layer=n.module, dims=n.attrs["dims"], padding=padding, act=act)


def _s_linear(b, n, ins, act, pads, alpha):
    b.emit("linear", n, ins, layer=n.module, act=act)


def _s_batchnorm(b, n, ins, act, pads, alpha):
    b.emit("affine", n, ins, layer=n.module, act=act)


def _s_layernorm(b, n, ins, act, pads, alpha):
    b.emit("layernorm", n, ins, layer=n.module, act=act)


def _s_prelu(b, n, ins, act, pads, alpha):
    b.emit("prelu", n, ins, layer=n.module)


def _s_act(b, n, ins, act, pads, alpha):
    fn = n.attrs["fn"]
    if fn in ("relu", "hardtanh"):
        b.emit("clamp", n, ins, act=_act_of(n))
    elif fn == "leaky_relu":
        b.emit("prelu", n, ins, slope=float(n.attrs["slope"]))
    elif fn in LUT_FNS:
        b.emit("lut", n, ins, **n.attrs)
    else:
        raise _refuse(n, f"activation {fn!r} has no integer form")


def _s_const(b, n, ins, act, pads, alpha):
    readers = b.g.consumers(n.name)
    bad = [r for r in readers if r.op not in ("add", "sub", "mul")]
    if bad:
        raise _refuse(bad[0], f"reads the constant {n.name}; constants deploy only as an operand of add, sub or mul")
    b.emit("const", n, [], layer=n.attrs.get("key", ""), bits=16 if b.abits == 16 else 8)


def _s_binary(b, n, ins, act, pads, alpha):
    consts = [i for i in n.inputs if b.g.node(i).op == "const"]
    if len(consts) == 2:
        raise _refuse(n, "both operands are constants")
    b.emit(n.op, n, ins, act=act)


def _s_scale(b, n, ins, act, pads, alpha):        # alpha: the product of a folded chain of scales
    b.emit("scale", n, ins, factor=float(n.attrs["factor"] if alpha is None else alpha), act=act)


def _s_cat(b, n, ins, act, pads, alpha):
    b.emit("cat", n, ins, dim=int(n.attrs["dim"]))


def _s_alias(b, n, ins, act, pads, alpha):
    b.emit(n.op, n, ins, alias=True, **n.attrs)


def _s_pool(b, n, ins, act, pads, alpha):
    b.emit(n.op, n, ins, act=act, **n.attrs)


def _s_softmax(b, n, ins, act, pads, alpha):
    b.emit("softmax", n, ins, bits=16 if b.abits == 16 else 8, fixed="softmax", dim=int(n.attrs["dim"]))


def _s_matmul(b, n, ins, act, pads, alpha):
    b.emit("matmul", n, ins, alpha=alpha if alpha is not None else 1.0, act=act)


_STEP = {
    "input": _s_input, "conv": _s_conv, "linear": _s_linear, "batchnorm": _s_batchnorm,
    "layernorm": _s_layernorm, "prelu": _s_prelu, "act": _s_act, "const": _s_const,
    "add": _s_binary, "sub": _s_binary, "mul": _s_binary, "scale": _s_scale, "cat": _s_cat,
    "slice": _s_alias, "reshape": _s_alias, "permute": _s_alias, "pad": _s_alias, "maxpool": _s_alias,
    "adaptive_maxpool": _s_alias, "avgpool": _s_pool, "adaptive_avgpool": _s_pool, "mean": _s_pool,
    "softmax": _s_softmax, "matmul": _s_matmul,
}


def check_graph(g: CGraph) -> None:
    """Every op of the graph has a program step (capture and the program agree on the op set)."""
    missing = sorted({n.op for n in g.nodes if n.op not in _STEP and n.op != "dropout"})
    if missing:
        raise UnsupportedError(f"no quantized form for ops {missing}")
