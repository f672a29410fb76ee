"""Memory layouts of the lowering: every program tensor (PyTorch order, no batch) lives in the IR as
a tensor in some permutation of its axes (`perm`: IR axis j holds PyTorch axis perm[j]). Convolutions
and pooling want channels last ((C, H, W) -> (H, W, C), (C, T) -> (T, C)); linear, LayerNorm and
softmax want their axis last; matmul wants PyTorch order. `Layouts.need(t, perm)` supplies a tensor
in the layout a step needs: for free (a reshape node over the same bytes) when the two orders agree
once size-1 axes are ignored, with a transpose node otherwise; each made once (cached)."""
from __future__ import annotations

from ..errors import UnsupportedError
from ..ir.graph import Graph, Node, Tensor
from .qmodel import QuantModel

MAX_RANK = 4


def channels_last(r: int) -> tuple[int, ...]:
    """Channels-last order of a rank-r PyTorch tensor: (C, H, W) -> (H, W, C)."""
    return tuple(range(1, r)) + (0,) if r > 1 else (0,)


def identity(r: int) -> tuple[int, ...]:
    return tuple(range(r))


def nonunit(shape, perm) -> tuple[int, ...]:
    return tuple(p for p in perm if shape[p] != 1)


class Layouts:
    """Program tensor -> (IR tensor, perm); makes the IR tensor a step needs in the layout it needs."""

    def __init__(self, qm: QuantModel, g: Graph):
        self.qm, self.g = qm, g
        self.at: dict[str, tuple[str, tuple[int, ...]]] = {}
        self.cache: dict[tuple[str, tuple[int, ...]], str] = {}

    def shape(self, t: str) -> tuple[int, ...]:
        return tuple(self.qm.program.tensors[t].shape)

    def tensor(self, t: str, ir_name: str, perm) -> Tensor:
        """Declare the IR tensor of program tensor t in layout perm."""
        scale, zp, bits = self.qm.qparams(t)
        shape = tuple(self.shape(t)[p] for p in perm) or (1,)
        if len(shape) > MAX_RANK:
            raise UnsupportedError(f"tensor {t}: rank {len(shape)} (the kernels take rank <= {MAX_RANK})")
        ten = Tensor(ir_name, shape, "s16" if bits == 16 else "s8", bits, float(scale), int(zp))
        self.g.tensors[ir_name] = ten
        return ten

    def define(self, t: str, perm, ir_name: str | None = None) -> Tensor:
        """Program tensor t is produced (by the caller's node) as IR tensor ir_name in layout perm."""
        perm = tuple(perm)
        name = ir_name or t
        ten = self.tensor(t, name, perm)
        self.at[t] = (name, perm)
        self.cache[(t, perm)] = name
        return ten

    def alias(self, t: str, src: str, perm) -> None:
        """t is the same bytes as src's IR tensor, in layout perm (a permute: no data moves)."""
        self.at[t] = (self.at[src][0], tuple(perm))

    def perm(self, t: str) -> tuple[int, ...]:
        return self.at[t][1]

    def need(self, t: str, perm) -> str:
        """The IR tensor holding program tensor t in layout perm (made if needed)."""
        name, have = self.at[t]
        perm = tuple(perm)
        if have == perm:
            return name
        if (t, perm) in self.cache:
            return self.cache[(t, perm)]
        s = self.shape(t)
        new = f"{t}@{''.join(map(str, perm))}"
        self.tensor(t, new, perm)
        if nonunit(s, have) == nonunit(s, perm):          # same bytes: relabel the shape
            self.g.nodes.append(Node(f"{new}.reshape", "reshape", [name], [new]))
        else:                                               # move the bytes
            sq_have, sq_want = nonunit(s, have), nonunit(s, perm)
            if len(sq_have) > MAX_RANK:
                raise UnsupportedError(f"tensor {t}: a transpose of rank {len(sq_have)} is needed")
            src = name
            if len(sq_have) != len(have):                   # drop unit axes first
                src = f"{new}.in"
                self.g.tensors[src] = Tensor(src, tuple(s[p] for p in sq_have), *self._q(name))
                self.g.nodes.append(Node(f"{src}.reshape", "reshape", [name], [src]))
            q = tuple(sq_have.index(a) for a in sq_want)
            dst = new if len(sq_want) == len(perm) else f"{new}.out"
            if dst != new:
                self.g.tensors[dst] = Tensor(dst, tuple(s[p] for p in sq_want), *self._q(name))
            self.g.nodes.append(Node(f"{new}.transpose", "transpose", [src], [dst], {"perm": q}))
            if dst != new:
                self.g.nodes.append(Node(f"{new}.reshape", "reshape", [dst], [new]))
        self.cache[(t, perm)] = new
        return new

    def _q(self, name: str):
        t = self.g.tensors[name]
        return t.dtype, t.bits, t.scale, t.zero_point
