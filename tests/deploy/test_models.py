"""End to end on real lowered models: DS-CNN-S (W4A8) and microbert-fast (W8A8) from the zoo,
PTQ-calibrated, lowered to the integer IR, generated as C, tiled and untiled: C == oracle."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from pqlr.deploy.inputs import input_int8  # noqa: E402
from pqlr.compress.quantize import QuantConfig, quantize_  # noqa: E402
from pqlr.deploy.host import run_host  # noqa: E402
from pqlr.deploy.package import write_package  # noqa: E402
from pqlr.ir.interp import run_graph  # noqa: E402
from pqlr.compress.lower import lower  # noqa: E402
from pqlr.models import build_model  # noqa: E402


@pytest.mark.parametrize("name,wbits,double_buffer", [("ds-cnn-s", 4, False), ("microbert-fast", 8, True)])
def test_lowered_model_runs_bit_exact(name, wbits, double_buffer, tmp_path):
    torch.manual_seed(0)
    x = torch.randn(24, 1, 49, 10)
    qm = quantize_(build_model(name, 12, seed=0).eval(),
                   QuantConfig(wbits=wbits, abits=8, method="ptq", init="minmax"), calib=[x],
                   input_shape=(1, 49, 10))
    g = lower(quantize_(qm, None, step="convert"))
    xi = input_int8(g, x[:4])
    ref = run_graph(g, xi)
    assert len(np.unique(ref)) > 8
    const = write_package(tmp_path / "const", g)
    y, hw = run_host(const.out_dir, g, xi, margin=1024)
    assert np.array_equal(y, ref) and 0 < hw <= const.arena.arena_bytes
    budget = const.arena.arena_bytes + g.weight_bytes() // 4
    tiled = write_package(tmp_path / "tiled", g, ram_budget=budget, double_buffer=double_buffer)
    assert tiled.tiles.n_tiles > 1 and tiled.ram_bytes <= budget
    y, _ = run_host(tiled.out_dir, g, xi)
    assert np.array_equal(y, ref)
