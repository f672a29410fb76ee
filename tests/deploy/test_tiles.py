"""Weight tiles under a RAM budget: tiles change memory, never results."""
import numpy as np
import pytest

import graphs
from pqlr.deploy.host import run_host
from pqlr.deploy.package import write_package
from pqlr.deploy.plan import plan_graph
from pqlr.deploy.tiles import plan_tiles, weight_layers
from pqlr.errors import BudgetError
from pqlr.ir.interp import run_graph


def check_plan(g, tiles):
    """Parts cover each weight layer's channels in order; tiles appear in schedule order."""
    for i in weight_layers(g):
        parts = tiles.layer_parts(i)
        assert [p.ch_begin for p in parts] == [0] + [p.ch_end for p in parts[:-1]]
        assert parts[-1].ch_end == g.nodes[i].params["weight"].shape[0]
        rb = g.nodes[i].params["weight"].shape[1]
        assert all(p.size == (p.ch_end - p.ch_begin) * rb and p.offset % 4 == 0 for p in parts)
    order = [p.tile for p in tiles.parts]
    assert order == sorted(order) and set(order) == set(range(tiles.n_tiles))
    for t, size in enumerate(tiles.tile_sizes):
        assert size == max(p.offset + p.size for p in tiles.parts if p.tile == t)


@pytest.mark.parametrize("double_buffer", [False, True])
def test_budget_is_met_and_results_unchanged(cnn_graph, tmp_path, double_buffer):
    arena = plan_graph(cnn_graph).arena_bytes
    x = graphs.random_input(cnn_graph, 16, seed=4)
    ref = run_graph(cnn_graph, x)
    counts = []
    for k, extra in enumerate((64, 150, 400)):
        budget = arena + extra * (2 if double_buffer else 1)
        tiles = plan_tiles(cnn_graph, arena, ram_budget=budget, double_buffer=double_buffer)
        check_plan(cnn_graph, tiles)
        assert arena + tiles.ram_bytes <= budget and tiles.streamed
        counts.append(tiles.n_tiles)
        pkg = write_package(tmp_path / f"b{k}", cnn_graph, ram_budget=budget, double_buffer=double_buffer)
        assert pkg.ram_bytes <= budget and pkg.tiles.parts == tiles.parts
        y, hw = run_host(pkg.out_dir, cnn_graph, x, margin=256)
        assert np.array_equal(y, ref) and hw <= pkg.arena.arena_bytes
        assert "pqlr_l0_weight" not in (pkg.out_dir / "src" / "model_data.c").read_text()
    assert counts[0] > counts[1] > counts[2]          # a larger budget, fewer (larger) tiles


def test_budget_too_small_names_the_minimum(cnn_graph):
    arena = plan_graph(cnn_graph).arena_bytes
    with pytest.raises(BudgetError, match=r"smallest tile plan needs (\d+) B") as e:
        plan_tiles(cnn_graph, arena, ram_budget=arena + 10)
    need = int(e.value.args[0].split("needs ")[1].split(" B")[0])
    tiles = plan_tiles(cnn_graph, arena, ram_budget=need)           # exactly the minimum fits
    assert arena + tiles.ram_bytes == need
    with pytest.raises(BudgetError):
        plan_tiles(cnn_graph, arena, ram_budget=need - 1)


def test_forced_tile_count_and_sharing(tmp_path):
    g = graphs.tokens()
    x = graphs.random_input(g, 8, seed=9)
    ref = run_graph(g, x)
    arena = plan_graph(g).arena_bytes
    one = plan_tiles(g, arena, n_tiles=1)
    assert one.n_tiles == 1 and len(one.parts) == 2      # both fc layers share one tile
    for n in (1, 2, 5):
        tiles = plan_tiles(g, arena, n_tiles=n)
        check_plan(g, tiles)
        assert tiles.n_tiles <= n
        pkg = write_package(tmp_path / f"n{n}", g, n_tiles=n, double_buffer=(n == 5))
        y, _ = run_host(pkg.out_dir, g, x)
        assert np.array_equal(y, ref)


def test_no_budget_means_const_weights(cnn_graph):
    tiles = plan_tiles(cnn_graph, 900)
    assert not tiles.streamed and tiles.ram_bytes == 0
    assert [p.ch_end for p in tiles.parts] == [12, 12, 5]


def test_embedded_model_file(cnn_graph, tmp_path):
    """-DPQLR_EMBED_MODEL_BIN: tiles come from the .bin compiled in (memory-mapped flash hook)."""
    x = graphs.random_input(cnn_graph, 8, seed=12)
    pkg = write_package(tmp_path / "e", cnn_graph, n_tiles=4, double_buffer=True)
    assert (pkg.out_dir / "src" / "model_flash.c").read_text().count("0x") >= pkg.bin_path.stat().st_size
    y, hw = run_host(pkg.out_dir, cnn_graph, x, embed_bin=True, margin=64)
    assert np.array_equal(y, run_graph(cnn_graph, x)) and hw <= pkg.arena.arena_bytes
