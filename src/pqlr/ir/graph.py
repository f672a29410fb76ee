"""The integer graph: tensors with quantization parameters, and a topologically ordered
list of nodes. Produced by `ir.lower`, executed by `ir.interp` (NumPy oracle) and by the
generated C (`deploy.codegen`). Shapes exclude the batch dimension; feature maps are HWC
(channels last, as in CMSIS-NN and TFLite Micro)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import PqlrError

DTYPES = {"s8": np.int8, "s16": np.int16, "s32": np.int32}


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]          # without batch; (H, W, C) for feature maps
    dtype: str = "s8"               # storage: s8 (also holds 4-bit values), s16, s32
    bits: int = 8                   # value range actually used: 4, 8 or 16
    scale: float = 1.0              # real = (q - zero_point) * scale
    zero_point: int = 0

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(DTYPES[self.dtype]).itemsize


@dataclass
class Node:
    name: str                       # the source layer's name (for messages and reports)
    op: str                         # one of ir.ops.OPS
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)       # ints, floats, tuples
    params: dict[str, np.ndarray] = field(default_factory=dict)  # weights, bias, m, n, tables


@dataclass
class Graph:
    tensors: dict[str, Tensor]
    nodes: list[Node]
    inputs: list[str]
    outputs: list[str]
    meta: dict[str, Any] = field(default_factory=dict)   # classes, feature config, ...

    def tensor(self, name: str) -> Tensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise PqlrError(f"graph has no tensor named {name!r}") from None

    def validate(self) -> None:
        """Every input is produced before use; every tensor is declared."""
        ready = set(self.inputs)
        for node in self.nodes:
            for t in node.inputs:
                if t not in ready:
                    raise PqlrError(f"node {node.name} ({node.op}) reads {t!r} before it is produced")
            for t in node.outputs:
                if t not in self.tensors:
                    raise PqlrError(f"node {node.name} writes undeclared tensor {t!r}")
                ready.add(t)
        for t in self.outputs:
            if t not in ready:
                raise PqlrError(f"graph output {t!r} is never produced")

    def weight_bytes(self) -> int:
        """Deployed parameter bytes: packed weights + biases + multipliers/shifts + tables."""
        return int(sum(p.nbytes for n in self.nodes for p in n.params.values()))
