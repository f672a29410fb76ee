"""Arena planner: offsets for every activation tensor and kernel scratch buffer, computed offline.

TFLite Micro style: a planner takes buffers `add_buffer(size, first_use, last_use)` (lifetimes in
node steps, inclusive) and hands out `offset(id)` and `max_size()`. Two planners:
  * LinearPlanner  -- every buffer gets its own range; trivially correct, the yardstick.
  * GreedyPlanner  -- buffers in a chosen order go to the lowest offset that does not overlap any
                      already-placed buffer whose lifetime intersects (first fit into gaps); three
                      orders (largest, longest-lived, earliest first), the smallest arena wins.

`plan_graph(graph)` builds the buffer set of an integer Graph:
  * graph inputs live in the caller's `input` buffer and graph outputs in `output`: not in the arena;
    a reshape of the input is a view of that buffer (`input_views`): no arena, no code;
  * every other tensor is live from the node that writes it to the last node that reads it;
  * the scratch of node i (OPS[op].scratch_bytes) is a buffer live at step i only;
  * in-place: an element-wise node (IN_PLACE_OPS) writes over its first input when that input is an
    arena tensor of the same byte size read by no later node; the output then shares the input's
    buffer (one buffer, lifetime = union). The reference kernels of these ops read element i before
    writing element i and never read another element after it, which makes this legal (reshape is
    a byte copy that does nothing when in == out).
  * in-place convolutions: a pointwise conv2d (1x1, stride 1, no padding) or a "same"-size stride-1
    depthwise_conv2d with s8 activations (ops_nn.in_place_scratch_bytes is not None) whose input
    is an arena tensor read by no later node shares that input's buffer too (size = max of the two:
    a pointwise layer may change the channel count). It then runs the in-place kernel
    (pqlr_conv2d_1x1_inplace_s8 / pqlr_depthwise_conv2d_inplace_s8) with a small planned scratch
    (one pixel's outputs / pad_top + 1 input rows). `run_node(graph, plan, i)` is node i as the
    generated C runs it (a copy marked attrs["in_place"]). A pointwise layer whose weights are split
    into several tile parts (`split_layers`) cannot run in place: a first channel part would
    overwrite input pixels a later part still reads; `plan_with_tiles` plans arena and tiles together.
    DS-CNN-S W8A8: 16,000 B -> 8,640 B (one 25x5x64 tensor + a 2-row depthwise line buffer).
All offsets are multiples of ALIGN bytes.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Collection

from ..errors import PqlrError, UnsupportedError
from ..ir.graph import Graph, Node
from ..ir.ops import OPS
from ..ir.ops_nn import IN_PLACE_KERNELS, in_place_scratch_bytes

ALIGN = 4
IN_PLACE_OPS = frozenset({"lut", "requantize", "add", "sub", "mul", "prelu", "channel_affine", "reshape"})


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class Buffer:
    size: int          # bytes (before alignment)
    first_use: int     # node step that writes it first
    last_use: int      # node step that reads it last (inclusive)

    def __post_init__(self):
        if self.size < 0 or self.first_use < 0 or self.last_use < self.first_use:
            raise PqlrError(f"bad buffer: size {self.size}, lifetime [{self.first_use}, {self.last_use}]")

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first_use <= other.last_use and other.first_use <= self.last_use


class Planner:
    """Interface: add buffers, then read offsets and the arena size."""

    def __init__(self):
        self.buffers: list[Buffer] = []
        self._offsets: list[int] | None = None

    def add_buffer(self, size: int, first_use: int, last_use: int) -> int:
        self.buffers.append(Buffer(int(size), int(first_use), int(last_use)))
        self._offsets = None
        return len(self.buffers) - 1

    def offset(self, buffer_id: int) -> int:
        if self._offsets is None:
            self._offsets = self._plan()
        return self._offsets[buffer_id]

    def max_size(self) -> int:
        if not self.buffers:
            return 0
        return max(self.offset(i) + _align(b.size) for i, b in enumerate(self.buffers))

    def _plan(self) -> list[int]:
        raise NotImplementedError


class LinearPlanner(Planner):
    """Each buffer after the previous one: never overlaps, never reuses memory."""

    def _plan(self) -> list[int]:
        offsets, at = [], 0
        for b in self.buffers:
            offsets.append(at)
            at += _align(b.size)
        return offsets


class GreedyPlanner(Planner):
    """First fit: each buffer goes into the lowest gap between time-overlapping placed buffers. The
    placement order decides how well gaps get used; three orders are tried (largest first -- TFLite
    Micro's --, longest-lived first, earliest first) and the smallest arena kept (ties: the first)."""

    ORDERS = (lambda b: (-b.size, 0), lambda b: (-(b.last_use - b.first_use), -b.size),
              lambda b: (b.first_use, -b.size))

    def _plan(self) -> list[int]:
        best, best_size = None, None
        for key in self.ORDERS:
            order = sorted(range(len(self.buffers)), key=lambda i: (*key(self.buffers[i]), i))
            offsets = self._first_fit(order)
            size = max((o + _align(b.size) for o, b in zip(offsets, self.buffers)), default=0)
            if best_size is None or size < best_size:
                best, best_size = offsets, size
        return best

    def _first_fit(self, order: list[int]) -> list[int]:
        offsets = [0] * len(self.buffers)
        placed: list[int] = []
        for i in order:
            b = self.buffers[i]
            busy = sorted((offsets[j], offsets[j] + _align(self.buffers[j].size))
                          for j in placed if self.buffers[j].overlaps_in_time(b))
            at = 0
            for lo, hi in busy:
                if at + _align(b.size) <= lo:
                    break
                at = max(at, hi)
            offsets[i] = at
            placed.append(i)
        return offsets


@dataclass
class ArenaPlan:
    offsets: dict[str, int]                  # tensor name -> arena offset (arena tensors only)
    scratch: dict[int, tuple[int, int]]      # node index -> (offset, bytes) of its scratch
    arena_bytes: int                         # activations + scratch, aligned
    activation_bytes: int                    # largest sum of live activation bytes at any step
    scratch_bytes: int                       # largest single scratch buffer
    in_place: list[str] = field(default_factory=list)   # nodes that run in place
    in_place_layers: list[int] = field(default_factory=list)   # their indices in graph.nodes
    views: dict[str, str] = field(default_factory=dict)  # tensor -> graph input it is a reshape of


def _scratch_bytes(node, graph) -> int:
    if node.op not in OPS:
        raise UnsupportedError(f"layer {node.name}: op {node.op!r} has no kernel")
    return int(OPS[node.op].scratch_bytes(node, graph))


def _in_place_conv(node: Node, graph: Graph) -> bool:
    return in_place_scratch_bytes(node, graph) is not None


def run_node(graph: Graph, plan: ArenaPlan, i: int) -> Node:
    """graph.nodes[i] as the generated C runs it: for a convolution the plan runs in place, a copy
    with attrs["in_place"] = True (ops_nn then emits the in-place kernel); else the node itself."""
    return _marked(graph.nodes[i], i in plan.in_place_layers)


def _marked(node: Node, in_place: bool) -> Node:
    if in_place and node.op in IN_PLACE_KERNELS:
        return dataclasses.replace(node, attrs={**node.attrs, "in_place": True})
    return node


def split_layers(tiles) -> frozenset[int]:
    """Layers whose weights a streamed TilePlan splits into more than one part."""
    if tiles is None or not tiles.streamed:
        return frozenset()
    return frozenset(i for i in {p.layer for p in tiles.parts} if len(tiles.layer_parts(i)) > 1)


def plan_graph(graph: Graph, planner: str = "greedy", in_place: bool = True,
               split: Collection[int] = ()) -> ArenaPlan:
    """Plan the arena of `graph` (greedy or linear planner; in-place element-wise ops and
    convolutions if allowed). `split`: layer indices whose weights are split into several tile
    parts (split_layers(tiles)); a pointwise conv among them does not run in place."""
    graph.validate()
    views = input_views(graph)
    io = set(graph.inputs) | set(graph.outputs) | set(views)
    last: dict[str, int] = {}
    first: dict[str, int] = {}
    for i, node in enumerate(graph.nodes):
        for t in node.inputs:
            last[t] = i
        for t in node.outputs:
            first.setdefault(t, i)
            last.setdefault(t, i)
    # in-place decisions: output tensor -> tensor whose buffer it reuses
    alias: dict[str, str] = {}
    done_in_place: list[str] = []
    done_layers: list[int] = []
    if in_place:
        for i, node in enumerate(graph.nodes):
            conv = node.op in IN_PLACE_KERNELS
            if (node.op not in IN_PLACE_OPS and not conv) or len(node.outputs) != 1 or not node.inputs:
                continue
            src, dst = node.inputs[0], node.outputs[0]
            if src in io or dst in io or last.get(src) != i or node.inputs.count(src) != 1:
                continue
            if conv:
                if not _in_place_conv(node, graph) or (node.op == "conv2d" and i in split):
                    continue
            elif graph.tensor(src).nbytes != graph.tensor(dst).nbytes:
                continue
            alias[dst] = alias.get(src, src)
            done_in_place.append(node.name)
            done_layers.append(i)
    # one buffer per root tensor, lifetime = union and size = max over its aliases
    span: dict[str, list[int]] = {}
    size: dict[str, int] = {}
    for t in first:
        if t in io:
            continue
        root = alias.get(t, t)
        lo, hi = span.get(root, [first[t], last[t]])
        span[root] = [min(lo, first[t]), max(hi, last[t])]
        size[root] = max(size.get(root, 0), graph.tensor(t).nbytes)
    p = GreedyPlanner() if planner == "greedy" else LinearPlanner() if planner == "linear" else None
    if p is None:
        raise PqlrError(f"unknown planner {planner!r} (use greedy or linear)")
    ids = {root: p.add_buffer(size[root], lo, hi) for root, (lo, hi) in span.items()}
    scratch_ids: dict[int, tuple[int, int]] = {}
    for i, node in enumerate(graph.nodes):
        n = _scratch_bytes(_marked(node, i in done_layers), graph)    # in-place kernels: scratch
        if n > 0:
            scratch_ids[i] = (p.add_buffer(n, i, i), n)
    offsets = {t: p.offset(ids[alias.get(t, t)]) for t in first if t not in io}
    live = [sum(_align(size[r]) for r, (lo, hi) in span.items() if lo <= i <= hi)
            for i in range(len(graph.nodes))]
    return ArenaPlan(
        offsets=offsets,
        scratch={i: (p.offset(b), n) for i, (b, n) in scratch_ids.items()},
        arena_bytes=p.max_size(),
        activation_bytes=max(live, default=0),
        scratch_bytes=max((n for _, n in scratch_ids.values()), default=0),
        in_place=done_in_place,
        in_place_layers=done_layers,
        views=views,
    )


def input_views(graph: Graph) -> dict[str, str]:
    """Reshapes of the graph input (a (1, 49, 10) sample read as (49, 10), say): the same bytes in
    the caller's input buffer, so they take no arena and run as no code; nothing writes them (they
    are left out of in-place decisions). -> {reshaped tensor: graph input}."""
    views: dict[str, str] = {}
    for node in graph.nodes:
        src = node.inputs[0] if node.inputs else None
        if node.op == "reshape" and (src in graph.inputs or src in views) and node.outputs[0] not in graph.outputs:
            views[node.outputs[0]] = views.get(src, src)
    return views
