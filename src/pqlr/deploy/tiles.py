"""Weight tiles under a RAM budget: weights stay in flash and are read one tile at a time.

A *weight layer* is a node with a packed `params["weight"]` of shape (C_out, row_bytes): conv2d,
fully_connected (rows = output channels) and depthwise_conv2d. A layer is split by output-channel
ranges into parts; consecutive small layers may share one tile (one flash read loads them all).
The kernels compute an output-channel range [ch_begin, ch_end) in place in the full output tensor
with `weights` pointing at row ch_begin (pqlr_nn.h), so a split needs no staging buffer.

RAM at run time (bytes):  arena (activations + scratch)  +  n_buf * tile_buffer
  n_buf = 2 with double buffering (prefetch tile k+1 while computing tile k), else 1.
`plan_tiles` picks the smallest tile size that meets the budget (or forces a tile count) and raises
BudgetError naming the minimum RAM when nothing fits.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import BudgetError, PqlrError
from ..ir.graph import Graph
from .plan import _align, plan_graph, split_layers   # one alignment rule for arena and tile buffers

SPLITTABLE_OPS = frozenset({"conv2d", "depthwise_conv2d", "fully_connected"})


@dataclass(frozen=True)
class TilePart:
    layer: int        # node index in graph.nodes
    tile: int         # tile number (parts of one tile are contiguous in flash)
    ch_begin: int     # output channels [ch_begin, ch_end) of that layer's weight rows
    ch_end: int
    offset: int       # byte offset of the part inside its tile (multiple of 4)
    size: int         # bytes = (ch_end - ch_begin) * row_bytes


@dataclass
class TilePlan:
    parts: list[TilePart]
    double_buffer: bool = False
    streamed: bool = True          # weights read through pqlr_flash_read (False: const arrays)
    tile_sizes: list[int] = field(default_factory=list)   # bytes of each tile

    @property
    def n_tiles(self) -> int:
        return len(self.tile_sizes)

    @property
    def buffer_bytes(self) -> int:
        """One tile buffer: the largest tile, aligned."""
        return _align(max(self.tile_sizes, default=0))

    @property
    def ram_bytes(self) -> int:
        """Tile buffer(s): RAM on top of the arena."""
        if not self.streamed:
            return 0
        return self.buffer_bytes * (2 if self.double_buffer else 1)

    def layer_parts(self, layer: int) -> list[TilePart]:
        return [p for p in self.parts if p.layer == layer]


def weight_layers(graph: Graph) -> list[int]:
    """Indices of nodes whose packed weights go into tiles."""
    out = []
    for i, node in enumerate(graph.nodes):
        w = node.params.get("weight")
        if w is None:
            continue
        if w.ndim != 2:
            raise PqlrError(f"layer {node.name}: weight must be packed (C_out, row_bytes), got shape {w.shape}")
        out.append(i)
    return out


def _row_bytes(graph: Graph, i: int) -> int:
    return int(graph.nodes[i].params["weight"].shape[1])


def _rows(graph: Graph, i: int) -> int:
    return int(graph.nodes[i].params["weight"].shape[0])


def _pack(graph: Graph, tile_bytes: int | None) -> tuple[list[TilePart], list[int]]:
    """Split/merge weight layers into tiles of at most `tile_bytes` (None: one tile per layer)."""
    parts: list[TilePart] = []
    sizes: list[int] = []
    cur = -1
    for i in weight_layers(graph):
        rows, rb = _rows(graph, i), _row_bytes(graph, i)
        total = rows * rb
        if tile_bytes is None or (total <= tile_bytes and cur >= 0 and _align(sizes[cur]) + total <= tile_bytes):
            if tile_bytes is None or cur < 0:
                sizes.append(0)
                cur = len(sizes) - 1
            at = _align(sizes[cur])
            parts.append(TilePart(i, cur, 0, rows, at, total))
            sizes[cur] = at + total
            continue
        if total <= tile_bytes or graph.nodes[i].op not in SPLITTABLE_OPS:
            if total > tile_bytes:
                raise BudgetError(f"layer {graph.nodes[i].name} ({graph.nodes[i].op}) needs a whole "
                                  f"{total} B tile")
            sizes.append(total)
            cur = len(sizes) - 1
            parts.append(TilePart(i, cur, 0, rows, 0, total))
            continue
        per = tile_bytes // rb
        if per < 1:
            raise BudgetError(f"layer {graph.nodes[i].name}: one weight row is {rb} B > tile {tile_bytes} B")
        n = -(-rows // per)
        bounds = [rows * k // n for k in range(n + 1)]          # balanced channel ranges
        for b, e in zip(bounds, bounds[1:]):
            sizes.append((e - b) * rb)
            parts.append(TilePart(i, len(sizes) - 1, b, e, 0, (e - b) * rb))
        cur = -1     # a split layer's last tile is not shared
    return parts, sizes


def make_plan(graph: Graph, tile_bytes: int | None, double_buffer: bool = False,
              streamed: bool = True) -> TilePlan:
    parts, sizes = _pack(graph, tile_bytes)
    return TilePlan(parts, double_buffer, streamed, sizes)


def _min_tile(graph: Graph) -> int:
    """Smallest tile size any plan can use: the largest unsplittable unit."""
    need = 0
    for i in weight_layers(graph):
        unit = _row_bytes(graph, i) if graph.nodes[i].op in SPLITTABLE_OPS else _rows(graph, i) * _row_bytes(graph, i)
        need = max(need, unit)
    return need


def plan_tiles(graph: Graph, arena_bytes: int, ram_budget: int | None = None, n_tiles: int | None = None,
               double_buffer: bool = False) -> TilePlan:
    """Choose tiles so that arena + tile buffer(s) <= ram_budget.

    No budget and no count: weights are not streamed (linked as const arrays; one tile per layer
    in the .bin). `n_tiles`: the smallest tile size giving at most that many tiles."""
    layers = weight_layers(graph)
    if ram_budget is None and n_tiles is None:
        return make_plan(graph, None, double_buffer, streamed=False)
    if not layers:
        plan = make_plan(graph, None, double_buffer, streamed=True)
    else:
        lo = _min_tile(graph)
        hi = max(lo, sum(_align(_rows(graph, i) * _row_bytes(graph, i)) for i in layers))
        ram = lambda t: arena_bytes + make_plan(graph, t, double_buffer).ram_bytes  # noqa: E731
        if n_tiles is not None:           # smallest tile size giving at most n_tiles tiles
            if n_tiles < 1:
                raise PqlrError(f"n_tiles must be >= 1, got {n_tiles}")
            while lo < hi:
                mid = (lo + hi) // 2
                if make_plan(graph, mid, double_buffer).n_tiles <= n_tiles:
                    hi = mid
                else:
                    lo = mid + 1
            plan = make_plan(graph, lo, double_buffer)
        else:                             # largest tile size that fits: fewest flash reads
            if ram(lo) > ram_budget:
                raise BudgetError(f"RAM budget {ram_budget} B cannot hold arena {arena_bytes} B plus "
                                  f"weight tiles; the smallest tile plan needs {ram(lo)} B")
            while lo < hi:
                mid = (lo + hi + 1) // 2
                if ram(mid) <= ram_budget:
                    lo = mid
                else:
                    hi = mid - 1
            plan = make_plan(graph, lo, double_buffer)
    if ram_budget is not None and arena_bytes + plan.ram_bytes > ram_budget:
        raise BudgetError(f"RAM budget {ram_budget} B cannot hold arena {arena_bytes} B plus "
                          f"{plan.ram_bytes} B of tile buffers ({plan.n_tiles} tiles)")
    return plan


def tile_bytes_of(graph: Graph, plan: TilePlan) -> list[bytes]:
    """The flash bytes of each tile (parts at their offsets, zero padding between)."""
    out = []
    for t, size in enumerate(plan.tile_sizes):
        buf = bytearray(size)
        for p in plan.parts:
            if p.tile == t:
                w = np.ascontiguousarray(graph.nodes[p.layer].params["weight"][p.ch_begin:p.ch_end])
                buf[p.offset:p.offset + p.size] = w.view(np.uint8).tobytes()
        out.append(bytes(buf))
    return out


def plan_with_tiles(graph: Graph, planner: str = "greedy", ram_budget: int | None = None,
                    n_tiles: int | None = None, double_buffer: bool = False):
    """(ArenaPlan, TilePlan) planned together: the tile plan depends on the arena size, and a
    pointwise layer the tiles split cannot run in place; re-plan (those layers not in place) until
    no in-place pointwise layer is split. Ends: the set of excluded layers only grows."""
    split: frozenset[int] = frozenset()
    while True:
        arena = plan_graph(graph, planner, split=split)
        tiles = plan_tiles(graph, arena.arena_bytes, ram_budget, n_tiles, double_buffer)
        bad = {i for i in split_layers(tiles) if i in arena.in_place_layers and graph.nodes[i].op == "conv2d"}
        if not bad:
            return arena, tiles
        split = split | bad
