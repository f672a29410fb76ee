"""GraphModel: the captured model as an nn.Module -- the weight-holding modules, the constants and
the CGraph, run node by node in PyTorch semantics.

After capture, every stage works on this model, not on the user's Python forward: passes edit the
graph (fold a BatchNorm, cut channels and the shapes of the reshapes after them, factorize a
Linear into two) and the modules together, and the result still runs, trains and saves. The
weight-holding modules are the user's own objects (Conv1d/2d, Linear, BatchNorm, LayerNorm, PReLU);
activations, pooling, reshapes and arithmetic run as functions from the node attributes.

Saving needs no user code: `spec()` is JSON (graph + module constructor arguments from an
allow-list of torch.nn types + constant shapes) and the weights are a state dict; `from_spec` builds
the model back without executing anything from the file.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import PqlrError
from .graph import CGraph, CNode

# module type -> constructor arguments saved in spec() (all plain JSON values)
MODULE_ARGS: dict[str, tuple[type, tuple[str, ...]]] = {
    "Conv1d": (nn.Conv1d, ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                           "padding_mode")),
    "Conv2d": (nn.Conv2d, ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                           "padding_mode")),
    "Linear": (nn.Linear, ("in_features", "out_features")),
    "BatchNorm1d": (nn.BatchNorm1d, ("num_features", "eps", "momentum", "affine", "track_running_stats")),
    "BatchNorm2d": (nn.BatchNorm2d, ("num_features", "eps", "momentum", "affine", "track_running_stats")),
    "LayerNorm": (nn.LayerNorm, ("normalized_shape", "eps", "elementwise_affine")),
    "PReLU": (nn.PReLU, ("num_parameters",)),
}
STR_ARGS = {"padding": (int, list, str), "padding_mode": (str,)}   # the arguments that may be strings
MAX_CONST = 2**24                                # elements of one constant read from a spec


def _key(path: str) -> str:
    return path.replace(".", "/")                   # ModuleDict / parameter names cannot hold "."


# ---------------------------------------------------------------- float semantics per canonical op
def act_fn(x: torch.Tensor, a: dict) -> torch.Tensor:
    """The activation of an "act" node's attrs (PyTorch's own functions)."""
    fn = a["fn"]
    if fn == "relu":
        return F.relu(x)
    if fn == "hardtanh":
        return torch.clamp(x, a["min"], a["max"])          # either bound may be None (open)
    if fn == "leaky_relu":
        return F.leaky_relu(x, a["slope"])
    if fn == "gelu":
        return F.gelu(x)
    if fn == "gelu_tanh":
        return F.gelu(x, approximate="tanh")
    if fn == "elu":
        return F.elu(x, a["alpha"])
    if fn == "softplus":
        return F.softplus(x, a["beta"], a["threshold"])
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "hardswish": F.hardswish,
            "hardsigmoid": F.hardsigmoid, "silu": F.silu, "mish": F.mish}[fn](x)


def _pool(x: torch.Tensor, a: dict, kind: str) -> torch.Tensor:
    d = a["dims"]
    if kind.startswith("adaptive"):
        f = {("adaptive_avgpool", 1): F.adaptive_avg_pool1d, ("adaptive_avgpool", 2): F.adaptive_avg_pool2d,
             ("adaptive_maxpool", 1): F.adaptive_max_pool1d, ("adaptive_maxpool", 2): F.adaptive_max_pool2d}[(kind, d)]
        return f(x, tuple(a["output"]))
    pads = tuple(a["padding"])
    if any(b != e for b, e in pads):                 # asymmetric: pad explicitly (max: -inf, avg: 0)
        flat = [v for b, e in reversed(pads) for v in (b, e)]
        x = F.pad(x, flat, value=-math.inf if kind == "maxpool" else 0.0)
        pads = tuple((0, 0) for _ in pads)
    p = tuple(b for b, _ in pads)
    if kind == "maxpool":
        f = F.max_pool1d if d == 1 else F.max_pool2d
        return f(x, a["kernel"], a["stride"], p, a["dilation"])
    f = F.avg_pool1d if d == 1 else F.avg_pool2d
    return f(x, a["kernel"], a["stride"], p, False, a["count_include_pad"])


def _slice(x: torch.Tensor, a: dict) -> torch.Tensor:
    idx = (slice(None),) + tuple(slice(b, e, s) for b, e, s in zip(a["begin"], a["end"], a["step"]))
    return x[idx]


def _pad(x: torch.Tensor, a: dict) -> torch.Tensor:
    flat = [v for b, e in reversed(a["pads"]) for v in (b, e)]
    return F.pad(x, flat, value=a["value"])


FLOAT = {   # op -> (model, node, inputs) -> output; the float semantics the quantized program mirrors
    "conv": lambda m, n, xs: m.module(n.module)(xs[0]),
    "linear": lambda m, n, xs: m.module(n.module)(xs[0]),
    "batchnorm": lambda m, n, xs: m.module(n.module)(xs[0]),
    "layernorm": lambda m, n, xs: m.module(n.module)(xs[0]),
    "prelu": lambda m, n, xs: m.module(n.module)(xs[0]),
    "act": lambda m, n, xs: act_fn(xs[0], n.attrs),
    "add": lambda m, n, xs: xs[0] + xs[1],
    "sub": lambda m, n, xs: xs[0] - xs[1],
    "mul": lambda m, n, xs: xs[0] * xs[1],
    "scale": lambda m, n, xs: xs[0] * n.attrs["factor"],
    "cat": lambda m, n, xs: torch.cat(xs, dim=n.attrs["dim"] + 1),
    "slice": lambda m, n, xs: _slice(xs[0], n.attrs),
    "reshape": lambda m, n, xs: xs[0].reshape(xs[0].shape[0], *n.shape),
    "permute": lambda m, n, xs: xs[0].permute(0, *[p + 1 for p in n.attrs["perm"]]),
    "pad": lambda m, n, xs: _pad(xs[0], n.attrs),
    "maxpool": lambda m, n, xs: _pool(xs[0], n.attrs, "maxpool"),
    "avgpool": lambda m, n, xs: _pool(xs[0], n.attrs, "avgpool"),
    "adaptive_avgpool": lambda m, n, xs: _pool(xs[0], n.attrs, "adaptive_avgpool"),
    "adaptive_maxpool": lambda m, n, xs: _pool(xs[0], n.attrs, "adaptive_maxpool"),
    "mean": lambda m, n, xs: xs[0].mean(dim=[d + 1 for d in n.attrs["dims"]], keepdim=n.attrs["keepdim"]),
    "softmax": lambda m, n, xs: torch.softmax(xs[0], dim=n.attrs["dim"] + 1),
    "matmul": lambda m, n, xs: torch.matmul(xs[0], xs[1]),
    "dropout": lambda m, n, xs: F.dropout(xs[0], n.attrs["p"], m.training),
}


class GraphModel(nn.Module):
    """forward: (B, *input_shape) -> the captured model's output, node by node."""

    def __init__(self, graph: CGraph, modules: dict[str, nn.Module], consts: dict[str, torch.Tensor]):
        super().__init__()
        graph.validate()
        self.graph = graph
        self.layers = nn.ModuleDict({_key(p): m for p, m in modules.items()})
        self.consts = nn.Module()
        for k, t in consts.items():
            if isinstance(t, nn.Parameter):
                self.consts.register_parameter(_key(k), t)
            else:
                self.consts.register_buffer(_key(k), t.detach().clone())
        missing = [n.module for n in graph.nodes if n.module and _key(n.module) not in self.layers]
        missing += [n.attrs["key"] for n in graph.nodes if n.op == "const" and "key" in n.attrs
                    and not hasattr(self.consts, _key(n.attrs["key"]))]
        if missing:
            raise PqlrError(f"captured graph uses modules/constants it was not given: {missing[:4]}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.graph.input.shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.graph.node(self.graph.output).shape

    def module(self, path: str) -> nn.Module:
        return self.layers[_key(path)]

    def set_module(self, path: str, mod: nn.Module | None) -> None:
        if mod is None:
            del self.layers[_key(path)]
        else:
            self.layers[_key(path)] = mod

    def const(self, node: CNode) -> torch.Tensor:
        """A const node's tensor (without the batch dim), or its scalar as a 0-d tensor."""
        if "value" in node.attrs:
            return torch.tensor(float(node.attrs["value"]))
        t = getattr(self.consts, _key(node.attrs["key"]))
        return t[0] if node.attrs.get("drop_batch") else t

    def set_const(self, key: str, value: torch.Tensor) -> None:
        """Replace a constant (same kind: parameter or buffer), e.g. after pruning cut it."""
        old = getattr(self.consts, _key(key))
        if isinstance(old, nn.Parameter):
            setattr(self.consts, _key(key), nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad))
        else:
            self.consts.register_buffer(_key(key), value.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.input_shape:
            raise PqlrError(f"model input must be (B, {', '.join(map(str, self.input_shape))}), got {tuple(x.shape)}")
        return self._run(x, check=False)

    def _run(self, x: torch.Tensor, check: bool) -> torch.Tensor:
        env: dict[str, torch.Tensor] = {}
        for n in self.graph.nodes:
            if n.op == "input":
                env[n.name] = x
            elif n.op == "const":
                env[n.name] = self.const(n).to(x.device, x.dtype)
            elif not check:
                env[n.name] = FLOAT[n.op](self, n, [env[i] for i in n.inputs])
            else:
                try:
                    env[n.name] = FLOAT[n.op](self, n, [env[i] for i in n.inputs])
                except Exception as e:  # a crafted spec: any failure is one line naming the node
                    raise PqlrError(f"node {n.name} ({n.op}) does not run: {type(e).__name__}: {e}") from None
            if check:
                got = tuple(env[n.name].shape[0 if n.op == "const" else 1:])
                if got != tuple(n.shape):
                    raise PqlrError(f"node {n.name} ({n.op}) computes shape {got}, the graph says {tuple(n.shape)}")
        return env[self.graph.output]

    @torch.no_grad()
    def check(self) -> None:
        """Run one zero sample node by node: every node runs and has the shape the graph records."""
        was = self.training
        try:
            self.eval()
            self._run(torch.zeros(1, *self.input_shape), check=True)
        finally:
            self.train(was)

    # ------------------------------------------------------------ saving without code
    def spec(self) -> dict:
        mods = {}
        for path in self.graph.modules():
            m = self.module(path)
            kind = type(m).__name__
            if kind not in MODULE_ARGS:
                raise PqlrError(f"module {path} ({kind}) cannot be saved")
            args = {a: _json(getattr(m, a)) for a in MODULE_ARGS[kind][1]}
            args["bias"] = getattr(m, "bias", None) is not None
            mods[path] = {"type": kind, "args": args}
        consts = {}
        for n in self.graph.nodes:
            if n.op == "const" and "key" in n.attrs:
                t = getattr(self.consts, _key(n.attrs["key"]))
                consts[n.attrs["key"]] = {"shape": list(t.shape), "trainable": isinstance(t, nn.Parameter)}
        return {"format": "pqlr-graph-1", "graph": self.graph.to_dict(), "modules": mods, "consts": consts}

    @classmethod
    def from_spec(cls, spec: dict) -> "GraphModel":
        """A model of that structure with fresh weights (load the state dict after). Only the
        allow-listed module types with checked arguments are built; nothing else is run."""
        if not isinstance(spec, dict) or spec.get("format") != "pqlr-graph-1":
            raise PqlrError("not a PQLR captured-model spec (format pqlr-graph-1)")
        graph = CGraph.from_dict(spec.get("graph"))
        modules = {}
        for path, m in _mapping(spec, "modules").items():
            if not isinstance(m, dict) or m.get("type") not in MODULE_ARGS or not isinstance(m.get("args"), dict):
                raise PqlrError(f"captured-model spec: module {str(path)[:60]!r} has an unknown type")
            ctor, names = MODULE_ARGS[m["type"]]
            args = dict(m["args"])
            unknown = set(args) - set(names) - {"bias"}
            if unknown or not all(isinstance(v, STR_ARGS.get(k, (int, float, bool, list))) for k, v in args.items()):
                raise PqlrError(f"captured-model spec: module {path}: bad arguments {sorted(unknown)[:3]}")
            if m["type"] == "LayerNorm":
                args.pop("bias", None)
            args = {k: tuple(v) if isinstance(v, list) else v for k, v in args.items()}
            try:
                modules[path] = ctor(**args)
            except (TypeError, ValueError, RuntimeError) as e:
                raise PqlrError(f"captured-model spec: module {path}: {e}") from None
        consts = {}
        for k, c in _mapping(spec, "consts").items():
            shape = c.get("shape") if isinstance(c, dict) else None
            if not isinstance(shape, list) or not all(isinstance(s, int) and 0 <= s < 2**24 for s in shape) \
                    or math.prod(shape) > MAX_CONST:
                raise PqlrError(f"captured-model spec: constant {str(k)[:60]!r} has a bad shape")
            t = torch.zeros(shape)
            consts[k] = nn.Parameter(t) if c.get("trainable") else t
        try:
            gm = cls(graph, modules, consts)
            gm.check()
        except PqlrError as e:
            raise PqlrError(f"captured-model spec: {e}") from None
        return gm


def _mapping(spec: dict, key: str) -> dict:
    v = spec.get(key) or {}
    if not isinstance(v, dict):
        raise PqlrError(f"captured-model spec: {key!r} must be a mapping")
    return v


def _json(v):
    if isinstance(v, torch.Size):
        return list(v)
    if isinstance(v, tuple):
        return list(v)
    return v
