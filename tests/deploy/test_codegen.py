"""Generated C == the NumPy oracle, bit for bit; deterministic output; arena high-water <= plan."""
import numpy as np
import pytest

import graphs
from pqlr.deploy.codegen import GENERATED, generate
from pqlr.deploy.host import run_host
from pqlr.deploy.package import write_package
from pqlr.deploy.plan import plan_graph
from pqlr.errors import UnsupportedError
from pqlr.ir.interp import run_graph

GRAPHS = {"cnn": lambda: graphs.cnn(), "cnn_add": lambda: graphs.with_add(graphs.cnn(seed=5, wbits=(8, 4, 4))),
          "tokens": lambda: graphs.tokens(), "w1a16": lambda: graphs.s16()}


@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_generated_c_matches_oracle(name, tmp_path):
    g = GRAPHS[name]()
    x = graphs.random_input(g, 24, seed=7)
    ref = run_graph(g, x)
    assert len(np.unique(ref)) > 3                      # a real computation, not a constant
    pkg = write_package(tmp_path / name, g)
    y, high_water = run_host(pkg.out_dir, g, x, margin=512)
    assert y.dtype == ref.dtype and np.array_equal(y, ref)
    assert 0 < high_water <= pkg.arena.arena_bytes       # painted arena: never past the plan


def test_sanitized_build_matches_oracle(tmp_path):
    g = graphs.with_add(graphs.cnn(seed=2))
    x = graphs.random_input(g, 6, seed=3)
    pkg = write_package(tmp_path / "p", g, n_tiles=3, double_buffer=True)
    y, _ = run_host(pkg.out_dir, g, x, sanitize=True)    # exact-size arena under ASan/UBSan
    assert np.array_equal(y, run_graph(g, x))


def test_generation_is_deterministic(cnn_graph, tmp_path):
    a = write_package(tmp_path / "a", cnn_graph, ram_budget=1100)
    b = write_package(tmp_path / "b", graphs.cnn(), ram_budget=1100)
    names = sorted(p.relative_to(a.out_dir) for p in a.files)
    assert names == sorted(p.relative_to(b.out_dir) for p in b.files)
    for rel in names:
        assert (a.out_dir / rel).read_bytes() == (b.out_dir / rel).read_bytes(), rel
    assert generate(cnn_graph) == generate(graphs.cnn())


def test_generated_files_and_macros(cnn_graph):
    files = generate(cnn_graph, plan_graph(cnn_graph))
    assert set(files) == {"model.c", "model.h", "model_data.c", "model_data.h", "tiles.c", "tiles.h"}
    assert all(text.startswith(GENERATED + "\n") for text in files.values())
    h = files["model.h"]
    for macro, value in (("PQLR_INPUT_BYTES", 180), ("PQLR_OUTPUT_BYTES", 5), ("PQLR_ARENA_BYTES", 900),
                         ("PQLR_NUM_LAYERS", 5), ("PQLR_NUM_CLASSES", 5), ("PQLR_TILE_BUFFER_BYTES", 0)):
        assert f"#define {macro} {value}\n" in h
    assert "pqlr_status pqlr_invoke(const int8_t *input, int8_t *output, uint8_t *arena);" in h
    assert "const int8_t pqlr_l0_weight[" in files["model_data.c"] and "PROGMEM" in files["model_data.c"]
    body = files["model.c"]
    assert body.count("PQLR_LAYER_BEGIN(") == 6 and body.count("PQLR_LAYER_END(") == 6   # + the fallback
    assert "pqlr_flash_read" not in body                 # untiled: weights are const arrays


def test_unknown_op_is_refused(cnn_graph):
    import copy

    g = copy.deepcopy(cnn_graph)
    g.nodes[2].op = "frobnicate"
    with pytest.raises(UnsupportedError, match="rq1.*frobnicate"):
        generate(g)
