"""The .bin model file: round trip, corruption and truncation (Python reader and the C reader)."""
import json
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

import graphs
from pqlr.deploy import binfmt
from pqlr.deploy.tiles import make_plan, plan_tiles
from pqlr.errors import PqlrError
from pqlr.runtime.build import compile_c

DRIVER = Path(__file__).resolve().parent / "c" / "bin_reader_main.c"
SRC = Path(binfmt.__file__).resolve().parents[1] / "runtime" / "src"
C_READER = [SRC / "pqlr_binfmt.c", SRC / "pqlr_flash_read.c", SRC / "pqlr_flash_mmap_read.c",
            SRC / "pqlr_flash_file_read.c"]


def graph_equal(a, b) -> bool:
    if a.tensors != b.tensors or a.inputs != b.inputs or a.outputs != b.outputs or a.meta != b.meta:
        return False
    for x, y in zip(a.nodes, b.nodes, strict=True):
        if (x.name, x.op, x.inputs, x.outputs, x.attrs) != (y.name, y.op, y.inputs, y.outputs, y.attrs):
            return False
        if list(x.params) != list(y.params):
            return False
        for k in x.params:
            if x.params[k].dtype != y.params[k].dtype or not np.array_equal(x.params[k], y.params[k]):
                return False
    return True


def resign(data: bytes) -> bytes:
    """Recompute every CRC after a deliberate edit (to reach the checks behind the CRCs)."""
    d = bytearray(data)
    f = list(binfmt.HEADER.unpack_from(d))
    for off_i, size_i, crc_i in ((4, 5, 6), (7, 8, 10), (11, 12, 13)):
        off, size = f[off_i], f[size_i]
        if off + size <= len(d):
            f[crc_i] = zlib.crc32(bytes(d[off:off + size]))
    d[:64] = binfmt.HEADER.pack(*f[:16], 0)
    d[60:64] = struct.pack("<I", zlib.crc32(bytes(d[:60])))
    return bytes(d)


@pytest.fixture(scope="module")
def reader():
    return compile_c([DRIVER, *C_READER], sanitize=True, name="bin_reader")


@pytest.fixture(scope="module")
def files(tmp_path_factory, cnn_graph):
    tmp = tmp_path_factory.mktemp("bins")
    plans = {"untiled": make_plan(cnn_graph, None, streamed=False),
             "tiled": plan_tiles(cnn_graph, 900, ram_budget=1000),
             "shared": plan_tiles(cnn_graph, 900, n_tiles=2, double_buffer=True)}
    out = {}
    for name, plan in plans.items():
        binfmt.write_bin(tmp / f"{name}.bin", cnn_graph, plan, {"model": name, "version": (1, 2)})
        out[name] = (tmp / f"{name}.bin", plan)
    return out


def test_round_trip(files, cnn_graph):
    for name, (path, plan) in files.items():
        g, tiles, meta = binfmt.read_bin(path)
        assert graph_equal(g, cnn_graph), name
        assert meta == {"model": name, "version": (1, 2)}
        assert tiles.parts == plan.parts and tiles.tile_sizes == plan.tile_sizes
        assert (tiles.double_buffer, tiles.streamed) == (plan.double_buffer, plan.streamed)
        assert binfmt.encode_bin(g, tiles, meta) == path.read_bytes()     # byte-stable


def test_s16_graph_round_trips():
    g = graphs.cnn(seed=3, wbits=(1, 2, 8))
    g.meta["note"] = {"nested": [1, (2, 3)], "f": 0.1}
    back, _, _ = binfmt.decode_bin(binfmt.encode_bin(g))
    assert graph_equal(back, g)


def test_header_layout(files):
    data = files["tiled"][0].read_bytes()
    assert data[:4] == b"PQLR" and len(binfmt.HEADER.pack(*([b"PQLR"] + [0] * 16))) == 64
    f = binfmt.HEADER.unpack_from(data)
    assert f[3] == len(data) and all(off % 4 == 0 for off in (f[4], f[7], f[11]))
    assert f[9] == len(files["tiled"][1].parts) and f[14] == files["tiled"][1].n_tiles


def corruptions(data: bytes, rng) -> list[tuple[str, bytes]]:
    """Truncations, bit flips in each section, and re-signed edits that pass every CRC."""
    f = binfmt.HEADER.unpack_from(data)
    cases = [(f"trunc{n}", data[:n]) for n in (0, 3, 63, 64, f[7], f[11] + 1, len(data) - 1)]
    for lo, hi, name in ((0, 64, "header"), (f[4], f[4] + f[5], "schedule"), (f[7], f[7] + f[8], "index"),
                         (f[11], f[11] + f[12], "tiles")):
        for _ in range(3):
            d = bytearray(data)
            d[int(rng.integers(lo, hi))] ^= 1 << int(rng.integers(0, 8))
            cases.append((f"flip-{name}", bytes(d)))
    def edit(field, value):
        g = list(f)
        g[field] = value
        return resign(binfmt.HEADER.pack(*g[:16], 0) + data[64:])
    cases += [("version", edit(1, 9)), ("size", edit(3, len(data) + 4)),
              ("sched-out", edit(5, len(data))), ("index-count", edit(9, f[9] + 1)),
              ("tiles-off", edit(11, len(data) + 8)), ("tiles-unaligned", edit(11, f[11] + 2))]
    for field, value in ((4, 0xFFFFFFF0), (5, 1 << 31), (6, 7), (2, 1), (3, 5), (1, 999)):
        d = bytearray(data)                      # index entry 0 fields: offset, size, ch range, layer
        struct.pack_into("<I" if field > 1 else "<H", d, f[7] + {0: 0, 1: 2, 2: 4, 3: 8, 4: 12, 5: 16, 6: 20}[field], value)
        cases.append((f"entry{field}", resign(bytes(d))))
    return cases


def test_python_reader_rejects_corruption(files):
    rng = np.random.default_rng(0)
    data = files["tiled"][0].read_bytes()
    for name, bad in corruptions(data, rng):
        with pytest.raises(PqlrError, match="corrupt|not a PQLR|version"):
            binfmt.decode_bin(bad)


def test_python_reader_survives_resigned_schedule_garbage(files):
    """Random edits inside the schedule that pass the CRCs: a clean PqlrError or a valid graph."""
    rng = np.random.default_rng(1)
    data = files["tiled"][0].read_bytes()
    f = binfmt.HEADER.unpack_from(data)
    for _ in range(60):
        d = bytearray(data)
        for _ in range(int(rng.integers(1, 4))):
            d[int(rng.integers(f[4], f[4] + f[5]))] = int(rng.integers(0, 256))
        try:
            binfmt.decode_bin(resign(bytes(d)))
        except PqlrError:
            pass


def test_read_bin_names_the_file(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(b"PQLR" + bytes(10))
    with pytest.raises(PqlrError, match="x.bin.*shorter"):
        binfmt.read_bin(p)
    with pytest.raises(PqlrError, match="no such"):
        binfmt.read_bin(tmp_path / "missing.bin")
    p.write_bytes(json.dumps({}).encode() * 40)
    with pytest.raises(PqlrError, match="not a PQLR"):
        binfmt.read_bin(p)


def run_reader(reader, paths):
    proc = subprocess.run([str(reader), *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_c_reader_matches_python(reader, files):
    for name, (path, plan) in files.items():
        _, _, _, index = binfmt.decode_bin_index(path.read_bytes())
        lines = run_reader(reader, [path])
        for mode in ("file", "mmap"):
            i = lines.index(f"{path} {mode} open 0 entries {len(index)}")
            for k, e in enumerate(index):
                assert lines[i + 1 + k] == (f"tile {k} {e.layer} {e.tile} {e.ch_begin} {e.ch_end} "
                                            f"{e.offset} {e.size} 0 {e.crc}")
        assert not any("accepted" in line for line in lines)


def test_c_reader_rejects_corruption_without_overreads(reader, files, tmp_path):
    data = files["shared"][0].read_bytes()
    cases = corruptions(data, np.random.default_rng(2))
    paths = []
    for k, (name, bad) in enumerate(cases):
        paths.append(tmp_path / f"{k}-{name}.bin")
        paths[-1].write_bytes(bad)
    lines = run_reader(reader, paths)          # ASan/UBSan abort on any out-of-bounds access
    for path in paths:
        if path.name.endswith(("entry2.bin", "entry3.bin")):
            continue    # a re-signed, in-bounds channel range: only the schedule (Python) can tell
        for mode in ("file", "mmap"):
            (i,) = [j for j, line in enumerate(lines) if line.startswith(f"{path} {mode} open ")]
            status = int(lines[i].split()[3])
            if status == 0:                    # header and sections fine: an entry must fail
                n = int(lines[i].split()[5])
                tail = [lines[i + 1 + k].split() for k in range(n)]
                assert any(t[2] == "entry" or t[8] != "0" for t in tail), (path, tail)
            else:
                assert status in (-2, -3), (path, status)
