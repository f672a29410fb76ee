"""The .bin model file: header, schedule/parameters, tile index table, weight tiles (docs/binfmt.md).

All integers little-endian; every section starts at a multiple of 4; CRC32 is zlib's (IEEE 802.3).

  header (64 B)   "PQLR" u16 version u16 flags u32 file_size
                  u32 schedule_offset u32 schedule_size u32 schedule_crc
                  u32 index_offset    u32 index_size    u32 index_count  u32 index_crc
                  u32 tiles_offset    u32 tiles_size    u32 tiles_crc
                  u32 n_tiles u32 tile_buffer_bytes  u32 header_crc (of bytes 0..59)
  schedule        u32 json_size, compact UTF-8 JSON (tensors, nodes, attrs, meta), zero pad to 4,
                  then the parameter blob: every non-weight param (bias, multipliers, tables) raw,
                  each at a 4-aligned offset the JSON gives
  index           index_count entries of 24 B: u16 layer u16 tile u32 ch_begin u32 ch_end
                  u32 offset (absolute in the file) u32 size u32 crc (of the part's bytes)
  tiles           packed weight rows of each part, tiles back to back
flags: bit 0 = double buffered, bit 1 = weights streamed from flash.
"""
from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import PqlrError
from ..io import write_bytes
from ..ir.graph import DTYPES, Graph, Node, Tensor
from .tiles import TilePart, TilePlan, make_plan, tile_bytes_of, weight_layers

MAGIC = b"PQLR"
VERSION = 1
HEADER = struct.Struct("<4sHHI" + "III" + "IIII" + "III" + "III")
ENTRY = struct.Struct("<HHIIIII")
assert HEADER.size == 64 and ENTRY.size == 24
FLAG_DOUBLE_BUFFER, FLAG_STREAMED = 1, 2
_DTYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
           "uint16": np.uint16, "uint32": np.uint32, "float32": np.float32, "float64": np.float64}


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def _pad4(n: int) -> int:
    return (n + 3) // 4 * 4


# ---------------------------------------------------------------- JSON values (tuples kept)
def _enc(v: Any) -> Any:
    if isinstance(v, tuple):
        return {"__tuple__": [_enc(x) for x in v]}
    if isinstance(v, list):
        return [_enc(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _enc(x) for k, x in v.items()}
    if isinstance(v, np.ndarray):
        return {"__array__": v.tolist(), "dtype": str(v.dtype)}
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise PqlrError(f"cannot store value of type {type(v).__name__} in a .bin file")


def _dec(v: Any) -> Any:
    if isinstance(v, list):
        return [_dec(x) for x in v]
    if isinstance(v, dict):
        if set(v) == {"__tuple__"}:
            return tuple(_dec(x) for x in v["__tuple__"])
        if set(v) == {"__array__", "dtype"}:
            return np.array(v["__array__"], dtype=_np_dtype(v["dtype"]))
        return {k: _dec(x) for k, x in v.items()}
    return v


def _np_dtype(name: Any):
    if name not in _DTYPES:
        raise PqlrError(f"corrupt .bin: unknown array dtype {name!r}")
    return _DTYPES[name]


# ---------------------------------------------------------------- writing
def _schedule(graph: Graph, tiled: set[int], meta: dict) -> bytes:
    blob = bytearray()
    nodes = []
    for i, n in enumerate(graph.nodes):
        params = {}
        for k, a in n.params.items():
            a = np.ascontiguousarray(a)
            d = {"dtype": str(a.dtype), "shape": list(a.shape)}
            if not (k == "weight" and i in tiled):
                blob += bytes(_pad4(len(blob)) - len(blob))
                d.update(offset=len(blob), nbytes=a.nbytes)
                blob += a.tobytes()
            params[k] = d
        nodes.append({"name": n.name, "op": n.op, "inputs": n.inputs, "outputs": n.outputs,
                      "attrs": _enc(n.attrs), "params": params})
    doc = {"tensors": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "bits": t.bits,
                        "scale": float(t.scale), "zero_point": int(t.zero_point)} for t in graph.tensors.values()],
           "nodes": nodes, "inputs": graph.inputs, "outputs": graph.outputs,
           "graph_meta": _enc(graph.meta), "meta": _enc(meta)}
    js = json.dumps(doc, separators=(",", ":")).encode("utf-8")
    head = struct.pack("<I", len(js)) + js
    return head + bytes(_pad4(len(head)) - len(head)) + bytes(blob)


def encode_bin(graph: Graph, tiles: TilePlan | None = None, meta: dict | None = None) -> bytes:
    """The bytes of a .bin file (see the module docstring)."""
    graph.validate()
    plan = tiles if tiles is not None else make_plan(graph, None, streamed=False)
    sched = _schedule(graph, set(weight_layers(graph)), meta or {})
    tile_data = tile_bytes_of(graph, plan)
    s_off = HEADER.size
    i_off = _pad4(s_off + len(sched))
    t_off = _pad4(i_off + ENTRY.size * len(plan.parts))
    tile_at, at = [], t_off
    for data in tile_data:
        tile_at.append(at)
        at = _pad4(at + len(data))
    tiles_blob = bytearray(at - t_off)
    for start, data in zip(tile_at, tile_data):
        tiles_blob[start - t_off:start - t_off + len(data)] = data
    index = b"".join(
        ENTRY.pack(p.layer, p.tile, p.ch_begin, p.ch_end, tile_at[p.tile] + p.offset, p.size,
                   crc32(tile_data[p.tile][p.offset:p.offset + p.size])) for p in plan.parts)
    body = bytearray(t_off + len(tiles_blob) - s_off)
    body[0:len(sched)] = sched
    body[i_off - s_off:i_off - s_off + len(index)] = index
    body[t_off - s_off:] = tiles_blob
    flags = (FLAG_DOUBLE_BUFFER if plan.double_buffer else 0) | (FLAG_STREAMED if plan.streamed else 0)
    fields = [MAGIC, VERSION, flags, HEADER.size + len(body),
              s_off, len(sched), crc32(sched), i_off, len(index), len(plan.parts), crc32(index),
              t_off, len(tiles_blob), crc32(bytes(tiles_blob)), plan.n_tiles, plan.buffer_bytes]
    head = HEADER.pack(*fields, 0)
    head = head[:60] + struct.pack("<I", crc32(head[:60]))
    return head + bytes(body)


def write_bin(path: str | os.PathLike, graph: Graph, tiles: TilePlan | None = None,
              meta: dict | None = None) -> None:
    """Write the .bin atomically."""
    write_bytes(path, encode_bin(graph, tiles, meta))


# ---------------------------------------------------------------- reading (every offset checked)
def _section(data: bytes, name: str, off: int, size: int, crc: int, lo: int) -> bytes:
    if off % 4 or off < lo or off > len(data) or size > len(data) - off:
        raise PqlrError(f"corrupt .bin: {name} section [{off}, +{size}) is unaligned or outside the file ({len(data)} B)")
    sec = data[off:off + size]
    if crc32(sec) != crc:
        raise PqlrError(f"corrupt .bin: {name} section CRC mismatch")
    return sec


def _parse_schedule(sec: bytes) -> tuple[dict, bytes]:
    if len(sec) < 4:
        raise PqlrError("corrupt .bin: schedule section shorter than its length field")
    (n,) = struct.unpack_from("<I", sec)
    if n > len(sec) - 4:
        raise PqlrError(f"corrupt .bin: schedule JSON length {n} exceeds the section")
    try:
        doc = json.loads(sec[4:4 + n].decode("utf-8"))
        if not isinstance(doc, dict):
            raise ValueError("not an object")
    except (UnicodeDecodeError, ValueError) as e:
        raise PqlrError(f"corrupt .bin: schedule is not valid JSON ({e})") from None
    return doc, sec[_pad4(4 + n):]


def _graph_from(doc: dict, blob: bytes) -> tuple[Graph, dict[int, dict]]:
    try:
        tensors = {t["name"]: Tensor(t["name"], tuple(int(x) for x in t["shape"]), t["dtype"], int(t["bits"]),
                                     float(t["scale"]), int(t["zero_point"])) for t in doc["tensors"]}
        for t in tensors.values():
            if t.dtype not in DTYPES or any(d < 0 for d in t.shape):
                raise PqlrError(f"corrupt .bin: tensor {t.name} has dtype {t.dtype!r}, shape {t.shape}")
        nodes, pending = [], {}
        for i, nd in enumerate(doc["nodes"]):
            params = {}
            for k, d in nd["params"].items():
                dt, shape = np.dtype(_np_dtype(d["dtype"])), tuple(int(x) for x in d["shape"])
                count = int(np.prod(shape, dtype=np.int64))
                if "offset" not in d:
                    if k != "weight" or len(shape) != 2:
                        raise PqlrError(f"corrupt .bin: param {nd['name']}.{k} has no data")
                    pending[i] = {"dtype": dt, "shape": shape}
                    params[k] = None        # filled from the tiles, keeping the param order
                    continue
                off, nb = int(d["offset"]), int(d["nbytes"])
                if off < 0 or nb != count * dt.itemsize or off + nb > len(blob):
                    raise PqlrError(f"corrupt .bin: param {nd['name']}.{k} [{off}, +{nb}) outside the blob")
                params[k] = np.frombuffer(blob, dtype=dt, count=count, offset=off).reshape(shape).copy()
            nodes.append(Node(nd["name"], nd["op"], list(nd["inputs"]), list(nd["outputs"]),
                              _dec(nd["attrs"]), params))
        graph = Graph(tensors, nodes, list(doc["inputs"]), list(doc["outputs"]), _dec(doc["graph_meta"]))
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
        raise PqlrError(f"corrupt .bin: schedule is malformed ({type(e).__name__}: {e})") from None
    graph.validate()
    return graph, pending


@dataclass(frozen=True)
class IndexEntry:
    """One row of the tile index table (offset is absolute in the file)."""
    layer: int
    tile: int
    ch_begin: int
    ch_end: int
    offset: int
    size: int
    crc: int


def decode_bin(data: bytes) -> tuple[Graph, TilePlan, dict]:
    graph, plan, meta, _ = decode_bin_index(data)
    return graph, plan, meta


def decode_bin_index(data: bytes) -> tuple[Graph, TilePlan, dict, list[IndexEntry]]:
    """decode_bin plus the raw tile index entries (for tiles.c)."""
    if len(data) < HEADER.size:
        raise PqlrError(f"corrupt .bin: {len(data)} B is shorter than the {HEADER.size} B header")
    f = HEADER.unpack_from(data)
    if f[0] != MAGIC:
        raise PqlrError(f"not a PQLR model file (magic {f[0]!r})")
    if crc32(data[:60]) != f[16]:
        raise PqlrError("corrupt .bin: header CRC mismatch")
    if f[1] != VERSION:
        raise PqlrError(f".bin version {f[1]} not supported (this PQLR reads version {VERSION})")
    if f[3] != len(data):
        raise PqlrError(f"corrupt .bin: header says {f[3]} B, file has {len(data)} B (truncated?)")
    sched = _section(data, "schedule", f[4], f[5], f[6], HEADER.size)
    index = _section(data, "index", f[7], f[8], f[10], HEADER.size)
    _section(data, "tiles", f[11], f[12], f[13], HEADER.size)
    if f[8] != f[9] * ENTRY.size:
        raise PqlrError(f"corrupt .bin: index size {f[8]} B != {f[9]} entries x {ENTRY.size} B")
    doc, blob = _parse_schedule(sched)
    graph, pending = _graph_from(doc, blob)
    parts, rows = [], {i: [] for i in pending}
    tiles_lo, tiles_hi = f[11], f[11] + f[12]
    for k in range(f[9]):
        layer, tile, cb, ce, off, size, crc = ENTRY.unpack_from(index, k * ENTRY.size)
        if layer not in pending:
            raise PqlrError(f"corrupt .bin: tile entry {k} names layer {layer}, which has no tiled weight")
        dt, shape = pending[layer]["dtype"], pending[layer]["shape"]
        if not (cb < ce <= shape[0]) or size != (ce - cb) * shape[1] * dt.itemsize:
            raise PqlrError(f"corrupt .bin: tile entry {k} channels [{cb}, {ce}) / {size} B do not match layer {layer}")
        if off < tiles_lo or size > tiles_hi - off or tile >= f[14]:
            raise PqlrError(f"corrupt .bin: tile entry {k} [{off}, +{size}) outside the tiles section")
        part = data[off:off + size]
        if crc32(part) != crc:
            raise PqlrError(f"corrupt .bin: tile entry {k} (layer {layer}) CRC mismatch")
        rows[layer].append((cb, ce, np.frombuffer(part, dtype=dt).reshape(ce - cb, shape[1])))
        parts.append(IndexEntry(layer, tile, cb, ce, off, size, crc))
    for layer, got in rows.items():
        ranges = [(cb, ce) for cb, ce, _ in got]
        ends = [0] + [ce for _, ce in ranges]
        if not ranges or [cb for cb, _ in ranges] != ends[:-1] or ends[-1] != pending[layer]["shape"][0]:
            raise PqlrError(f"corrupt .bin: tiles of layer {layer} do not cover its {pending[layer]['shape'][0]} channels")
        graph.nodes[layer].params["weight"] = np.concatenate([r for _, _, r in got]).copy()
    return graph, _tile_plan(parts, f), _dec(doc.get("meta", {})), parts


def _tile_plan(parts: list, f: tuple) -> TilePlan:
    starts: dict[int, int] = {}
    for e in parts:
        starts[e.tile] = min(starts.get(e.tile, e.offset), e.offset)
    tps = [TilePart(e.layer, e.tile, e.ch_begin, e.ch_end, e.offset - starts[e.tile], e.size) for e in parts]
    sizes = [0] * f[14]
    for p in tps:
        sizes[p.tile] = max(sizes[p.tile], p.offset + p.size)
    return TilePlan(tps, bool(f[2] & FLAG_DOUBLE_BUFFER), bool(f[2] & FLAG_STREAMED), sizes)


def read_bin(path: str | os.PathLike) -> tuple[Graph, TilePlan, dict]:
    """Read and check a .bin: (graph, tile plan, meta). Any inconsistency -> PqlrError naming it."""
    path = Path(path)
    if not path.is_file():
        raise PqlrError(f"{path}: no such model file")
    try:
        return decode_bin(path.read_bytes())
    except PqlrError as e:
        raise PqlrError(f"{path}: {e}") from None
