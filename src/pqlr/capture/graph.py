"""The captured graph: a user's model as a list of canonical ops in PyTorch semantics.

Every compression stage reads this one graph: BatchNorm folding, pruning groups, low-rank, the
quantized program (fake-quant and lowering) and the MAC/parameter counts. Shapes exclude the batch
and are in PyTorch's own order (a Conv2d feature map is (C, H, W), a Conv1d map (C, T), a Linear
input (..., K)); where the batch dimension was dim 0 of a PyTorch tensor, `dim` attributes here are
one less (dim 1 of (B, C, T) is dim 0 of (C, T)). The canonical ops and their attributes are listed
in capture/optable.py (and docs/ops.md, generated from it).

A node that owns weights names a module path (`module`): its parameters live in the GraphModel's
ModuleDict (capture/module.py), not in the node, so a pass that cuts channels edits the module and
the node shapes. `source` is "file.py:line: code" of the user's code, for messages.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from ..errors import PqlrError
from .optable import OPS


@dataclass
class CNode:
    name: str                        # unique; the fx node name (a module path for module calls)
    op: str                          # canonical op (capture.optable.OPS)
    inputs: list[str]                # names of the nodes whose outputs it reads, in order
    shape: tuple[int, ...]           # output shape without the batch, PyTorch order
    module: str = ""                 # path of the module holding its weights ("" for none)
    attrs: dict[str, Any] = field(default_factory=dict)
    source: str = ""                 # where the user's code made it

    def __post_init__(self):
        self.inputs = list(self.inputs)
        self.shape = tuple(int(s) for s in self.shape)


@dataclass
class CGraph:
    nodes: list[CNode]               # topological order; nodes[0] is the "input" node
    output: str                      # the node whose value the model returns

    # ------------------------------------------------------------ lookups
    def node(self, name: str) -> CNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise PqlrError(f"graph has no node {name!r}")

    def index(self, name: str) -> int:
        for i, n in enumerate(self.nodes):
            if n.name == name:
                return i
        raise PqlrError(f"graph has no node {name!r}")

    @property
    def input(self) -> CNode:
        return self.nodes[0]

    def consumers(self, name: str) -> list[CNode]:
        return [n for n in self.nodes if name in n.inputs]

    def by_op(self, *ops: str) -> list[CNode]:
        return [n for n in self.nodes if n.op in ops]

    def modules(self) -> list[str]:
        """Module paths in first-use order (each once)."""
        seen: dict[str, None] = {}
        for n in self.nodes:
            if n.module:
                seen.setdefault(n.module)
        return list(seen)

    # ------------------------------------------------------------ edits (passes)
    def replace_uses(self, old: str, new: str) -> None:
        """Every reader of `old` reads `new` instead (and the output, if it was `old`)."""
        for n in self.nodes:
            n.inputs = [new if i == old else i for i in n.inputs]
        if self.output == old:
            self.output = new

    def remove(self, name: str) -> None:
        """Drop a node that nothing reads any more."""
        if self.consumers(name) or self.output == name:
            raise PqlrError(f"node {name!r} is still read; rewire its readers first")
        self.nodes.pop(self.index(name))

    def insert_after(self, anchor: str, nodes: Iterable[CNode]) -> None:
        i = self.index(anchor) + 1
        self.nodes[i:i] = list(nodes)

    def unique_name(self, base: str) -> str:
        names = {n.name for n in self.nodes}
        if base not in names:
            return base
        k = 1
        while f"{base}_{k}" in names:
            k += 1
        return f"{base}_{k}"

    def validate(self) -> None:
        """Names unique, every input produced earlier, the first node the only input, the output exists."""
        seen: set[str] = set()
        for i, n in enumerate(self.nodes):
            if n.name in seen:
                raise PqlrError(f"graph node name {n.name!r} appears twice")
            if (n.op == "input") != (i == 0):
                raise PqlrError(f"graph node {n.name!r}: the input must be the first node and the only one")
            for t in n.inputs:
                if t not in seen:
                    raise PqlrError(f"graph node {n.name!r} reads {t!r} before it is produced")
            seen.add(n.name)
        if self.output not in seen:
            raise PqlrError(f"graph output {self.output!r} is not a node")

    # ------------------------------------------------------------ JSON
    def to_dict(self) -> dict:
        return {"nodes": [asdict(n) for n in self.nodes], "output": self.output}

    @classmethod
    def from_dict(cls, d: dict) -> "CGraph":
        """From to_dict() output (e.g. a checkpoint's JSON): only known ops, all fields checked."""
        if not isinstance(d, dict) or set(d) != {"nodes", "output"} or not isinstance(d["nodes"], list):
            raise PqlrError("captured graph: expected {'nodes': [...], 'output': name}")
        nodes = []
        for raw in d["nodes"]:
            if not isinstance(raw, dict) or not {"name", "op", "inputs", "shape"} <= set(raw) or \
                    set(raw) - {"name", "op", "inputs", "shape", "module", "attrs", "source"}:
                raise PqlrError(f"captured graph: bad node record {str(raw)[:80]}")
            if not isinstance(raw["op"], str) or raw["op"] not in OPS:
                raise PqlrError(f"captured graph: unknown op {str(raw['op'])[:40]!r}")
            if not isinstance(raw["inputs"], list) or not isinstance(raw["shape"], list) or \
                    not all(isinstance(v, str) for v in [raw["name"], raw.get("module", ""), *raw["inputs"]]) or \
                    not all(isinstance(s, int) and s >= 0 for s in raw["shape"]) or \
                    not isinstance(raw.get("attrs", {}), dict):
                raise PqlrError(f"captured graph: bad field types in node {str(raw.get('name'))[:40]!r}")
            nodes.append(CNode(raw["name"], raw["op"], raw["inputs"], tuple(raw["shape"]), raw.get("module", ""),
                               _tuples(raw.get("attrs", {})), str(raw.get("source", ""))))
        if not isinstance(d["output"], str) or not nodes:
            raise PqlrError("captured graph: no nodes or no output")
        g = cls(nodes, d["output"])
        g.validate()
        return g

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def _tuples(v: Any) -> Any:
    """JSON lists back to the tuples attrs use (lists of lists stay tuples of tuples)."""
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    if isinstance(v, dict):
        return {str(k): _tuples(x) for k, x in v.items()}
    return v
