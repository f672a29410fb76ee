"""Capture: a user's nn.Module and its input shape -> a CGraph of canonical ops (capture.optable).

Why torch.fx (symbolic tracing) and not torch.export: fx keeps every call of a module as one node
naming the module's path, so BatchNorm folding, channel pruning and low-rank factorization edit the
user's own Conv2d / Linear modules (and the captured model trains with those very objects), while
torch.export decomposes modules into aten ops and lifts their parameters out, which would force
re-deriving every layer from aten patterns. fx traces in milliseconds without running the model;
shapes then come from running the traced graph once on an example batch (twice: batch 2 and 3, so a
value that follows the batch size is told apart from a constant). Both refuse data-dependent
control flow; we report the user's line.

The batch is dim 0 of every activation and must stay there: every op here works per sample. Shapes
in the CGraph exclude it and every `dim` attribute is counted without it.
"""
from __future__ import annotations

import math
import os
import re
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from ..errors import PqlrError, UnsupportedError
from .graph import CGraph, CNode
from .handlers import HANDLERS
from .optable import FUNCTIONS, METHODS, MODULES

DOCS = "docs/ops.md"
_TORCH_DIR = os.path.dirname(torch.__file__)


class _Tracer(fx.Tracer):
    """PyTorch's tracer, recording the user's source line of every node; the module types PQLR knows
    are leaves (called as one node), as are all other torch.nn modules (refused by name later)."""

    def __init__(self):
        super().__init__()
        self.record_stack_traces = True

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return type(m) in MODULES or super().is_leaf_module(m, qualname)


class _Recorder(fx.Interpreter):
    """Runs the traced graph and keeps every node's value."""

    def __init__(self, gm):
        super().__init__(gm)
        self.values: dict[str, Any] = {}

    def run_node(self, n):
        v = super().run_node(n)
        self.values[n.name] = v
        return v


def source_of(node: fx.Node) -> str:
    """"file.py:line: code" of the innermost user frame that made this node ("" if unknown)."""
    trace = node.meta.get("stack_trace") or ""
    frames = re.findall(r'File "([^"]+)", line (\d+), in [^\n]*\n\s*([^\n]*)', trace)
    user = [f for f in frames if not os.path.abspath(f[0]).startswith(_TORCH_DIR)]
    if not user:
        return ""
    file, line, code = user[-1]
    return f"{os.path.basename(file)}:{line}: {code.strip()}"


class _Capture:
    """fx graph + recorded values -> CNodes. env maps an fx node name to what it stands for:
    ("t", cnode name) a tensor, ("param", path) a model parameter/buffer, ("seq", [entries]) a list
    of tensors (split/chunk), ("py", None) a Python value (read from the recordings)."""

    def __init__(self, model: nn.Module, gm: fx.GraphModule, vals: tuple[dict, dict], batches: tuple[int, int]):
        self.model, self.gm, self.vals, self.batches = model, gm, vals, batches
        self.named = dict(model.named_modules())
        self.nodes: list[CNode] = []
        self.env: dict[str, tuple] = {}
        self.modules: dict[str, nn.Module] = {}
        self.consts: dict[str, torch.Tensor] = {}
        self.fx: fx.Node | None = None

    # ------------------------------------------------------------ errors and values
    def refuse(self, what: str) -> UnsupportedError:
        n = self.fx
        src = source_of(n) if n is not None else ""
        where = f"node {n.name}" if n is not None else "model"
        return UnsupportedError(f"{where}{f' ({src})' if src else ''}: {what}; supported operations: {DOCS}")

    def value(self, a, batch_ok: bool = False):
        """A Python argument (possibly an fx node computing a shape/size) as a concrete value."""
        if isinstance(a, fx.Node):
            kind = self.env.get(a.name, ("?",))[0]
            if kind != "py":
                raise self.refuse(f"a tensor is used where a number is expected ({a.name})")
            v2, v3 = self.vals[0][a.name], self.vals[1][a.name]
            if v2 != v3 and not batch_ok:
                raise self.refuse(f"the value of {a.name} depends on the batch size ({v2} vs {v3})")
            return v2
        if isinstance(a, (list, tuple)):
            return type(a)(self.value(x, batch_ok) for x in a)
        if isinstance(a, slice):
            return slice(self.value(a.start), self.value(a.stop), self.value(a.step))
        return a

    def tensor(self, a) -> str:
        """The CNode name of a tensor argument."""
        if not isinstance(a, fx.Node) or self.env.get(a.name, ("?",))[0] != "t":
            raise self.refuse(f"expected an activation tensor, got {a!r}")
        return self.env[a.name][1]

    def full_rank(self, a) -> int:
        return self.vals[0][a.name].dim()

    def out_shape(self, name: str | None = None) -> tuple[int, ...]:
        """The recorded output shape of the current fx node without the batch (checked at both batches)."""
        name = name or self.fx.name
        v2, v3 = self.vals[0][name], self.vals[1][name]
        if not (isinstance(v2, torch.Tensor) and isinstance(v3, torch.Tensor)):
            raise self.refuse("does not produce a tensor")
        if v2.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            raise self.refuse(f"produces a {v2.dtype} tensor (only floating-point activations deploy)")
        b2, b3 = self.batches
        if v2.dim() == 0 or v2.shape[0] != b2 or v3.shape[0] != b3 or v2.shape[1:] != v3.shape[1:]:
            raise self.refuse(f"output shape {tuple(v2.shape)} does not keep the batch in dim 0 "
                              "(every op must work per sample)")
        return tuple(int(s) for s in v2.shape[1:])

    def dim(self, d, rank: int, what: str = "dim") -> int:
        """A PyTorch dim of a rank-`rank` batched tensor -> the dim without the batch."""
        d = int(self.value(d))
        d = d + rank if d < 0 else d
        if not 0 <= d < rank:
            raise self.refuse(f"{what} {d} out of range for a rank-{rank} tensor")
        if d == 0:
            raise self.refuse(f"{what} 0 is the batch dimension (every op must work per sample)")
        return d - 1

    def emit(self, op: str, inputs: list[str], shape=None, module: str = "", name: str | None = None, **attrs) -> tuple:
        base = name or (self.fx.target if self.fx.op == "call_module" else self.fx.name)
        names = {n.name for n in self.nodes}
        cname, k = base, 1
        while cname in names:
            cname, k = f"{base}_{k}", k + 1
        node = CNode(cname, op, inputs, self.out_shape() if shape is None else shape, module, attrs,
                     source_of(self.fx) if self.fx is not None else "")
        self.nodes.append(node)
        return ("t", cname)

    def const(self, a, other_rank: int) -> str:
        """A parameter/buffer or a Python number used as an operand -> a const CNode (its name).
        A tensor constant as wide as the activation (same rank incl. the batch) must have 1 there."""
        if isinstance(a, fx.Node) and self.env.get(a.name, ("?",))[0] == "param":
            path = self.env[a.name][1]
            t = self.consts[path]
            drop = t.dim() == other_rank
            if drop and t.shape[0] != 1:
                raise self.refuse(f"constant {path} of shape {tuple(t.shape)} would broadcast over the batch")
            shape = tuple(t.shape[1:]) if drop else tuple(t.shape)
            return self.emit("const", [], shape, name=path, key=path, drop_batch=drop)[1]
        v = self.value(a)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            raise self.refuse(f"operand {v!r} is not a finite number or a tensor")
        return self.emit("const", [], (), name=f"{self.fx.name}_const", value=float(v))[1]

    # ------------------------------------------------------------ the walk
    def run(self, input_shape: tuple[int, ...]) -> CGraph:
        out = None
        for n in self.gm.graph.nodes:
            self.fx = n
            if n.op == "placeholder":
                if self.nodes:
                    raise self.refuse("the model takes more than one input (PQLR deploys one input tensor)")
                self.env[n.name] = self.emit("input", [], tuple(input_shape), name="input")
            elif n.op == "get_attr":
                t = _fetch(self.model, n.target)
                if not isinstance(t, torch.Tensor):
                    raise self.refuse(f"attribute {n.target} is not a tensor")
                self.consts[n.target] = t
                self.env[n.name] = ("param", n.target)
            elif n.op == "call_module":
                mod = self.named[n.target]
                h = MODULES.get(type(mod))
                if h is None:
                    raise self.refuse(f"module {n.target} ({type(mod).__name__}) is not supported")
                self.env[n.name] = HANDLERS[h](self, n, mod)
            elif n.op in ("call_function", "call_method"):
                h = (FUNCTIONS.get(n.target) if n.op == "call_function" else METHODS.get(n.target))
                if h is None:
                    what = n.target if isinstance(n.target, str) else getattr(n.target, "__name__", str(n.target))
                    raise self.refuse(f"{'Tensor.' if n.op == 'call_method' else ''}{what} is not supported")
                self.env[n.name] = HANDLERS[h](self, n, None)
            elif n.op == "output":
                res = n.args[0]
                if not isinstance(res, fx.Node) or self.env.get(res.name, ("?",))[0] != "t":
                    raise self.refuse("the model must return one tensor (PQLR deploys one output)")
                out = self.env[res.name][1]
        self.fx = None
        return _prune_dead(CGraph(self.nodes, out))


def _fetch(model: nn.Module, path: str):
    obj = model
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def _prune_dead(g: CGraph) -> CGraph:
    """Drop nodes the output does not depend on (e.g. unused parts of a split)."""
    live, todo = set(), [g.output]
    by = {n.name: n for n in g.nodes}
    while todo:
        k = todo.pop()
        if k not in live:
            live.add(k)
            todo += by[k].inputs
    g.nodes = [n for n in g.nodes if n.name in live or n.op == "input"]
    g.validate()
    return g


# ---------------------------------------------------------------- the entry point
def trace(model: nn.Module, input_shape) -> tuple[CGraph, dict[str, nn.Module], dict[str, torch.Tensor]]:
    """(graph, modules by path, constants by path) of `model` on one sample of `input_shape`
    (without the batch). Runs the model twice on random input in eval mode (mode restored)."""
    input_shape = tuple(int(s) for s in input_shape)
    if not input_shape or min(input_shape) < 1:
        raise PqlrError(f"input shape {input_shape}: give one sample's shape, e.g. (1, 49, 10) or (3, 32, 32)")
    if type(model).__module__.startswith("torch.nn") and not isinstance(model, nn.Sequential):
        if type(model) not in MODULES:
            raise UnsupportedError(f"model {type(model).__name__}: module {type(model).__name__} is not supported; "
                                   f"supported operations: {DOCS}")
        model = nn.Sequential(model)                    # a bare supported layer: trace it as one node
    was_training = model.training
    model.eval()
    try:
        try:
            gm = fx.GraphModule(model, _Tracer().trace(model))
        except UnsupportedError:
            raise
        except Exception as e:                          # fx: control flow on a traced value, Proxy misuse
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise UnsupportedError(f"model {type(model).__name__} cannot be captured by torch.fx: {msg} "
                                   f"(data-dependent Python control flow or a non-torch call on a tensor; "
                                   f"see {DOCS})") from None
        vals, batches = [], (2, 3)
        gen = torch.Generator().manual_seed(0)
        for b in batches:
            rec = _Recorder(gm)
            try:
                with torch.no_grad():
                    rec.run(torch.randn((b, *input_shape), generator=gen))
            except Exception as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise PqlrError(f"model {type(model).__name__} fails on an input of shape (B, "
                                f"{', '.join(map(str, input_shape))}): {first}") from None
            vals.append(rec.values)
        return _finish(_Capture(model, gm, tuple(vals), batches), input_shape)
    finally:
        model.train(was_training)


def _finish(c: _Capture, input_shape):
    g = c.run(input_shape)
    used = {n.module for n in g.nodes if n.module}
    keys = {n.attrs["key"] for n in g.nodes if n.op == "const" and "key" in n.attrs}
    return g, {p: m for p, m in c.modules.items() if p in used}, {k: t for k, t in c.consts.items() if k in keys}
