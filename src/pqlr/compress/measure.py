"""Measuring a compressed model as deployed: lowering to the integer graph, packed weight bytes,
planned arena, compiled code size, MACs, integer accuracy -- and the pipeline's final outputs
(the .bin, the C package, a host bit-exactness check, the hardware estimate)."""
from __future__ import annotations

import copy
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import PqlrError
from ..io import atomic_path

CODE_TARGET = "rv32imac"   # code bytes are .text of the model's objects built for this target


def lower_quantized(qmodel, classes):
    """A converted copy of the fake-quant model, lowered to the integer Graph."""
    from ..data import FeatureConfig
    from ..ir.lower import lower
    from .quantize import quantize_

    frozen = quantize_(copy.deepcopy(qmodel), qmodel.cfg, step="convert")
    return lower(frozen, FeatureConfig().shape, classes=classes, feature=FeatureConfig())


def graph_macs(graph) -> int:
    from ..ir.ops import OPS

    return int(sum(OPS[n.op].macs(n, graph) for n in graph.nodes))


def code_bytes(graph, target: str = CODE_TARGET) -> int | None:
    """.text bytes of the generated model + kernels for `target` (None when its toolchain is missing)."""
    from ..deploy.host import model_sources
    from ..deploy.package import write_package
    from ..hw.toolchains import build_image, model_section_bytes

    with tempfile.TemporaryDirectory(prefix="pqlr-code-") as d:
        write_package(d, graph)
        try:
            image = build_image(target, model_sources(d), [Path(d) / "src"])
        except PqlrError as e:
            if "install" in str(e) or "not found" in str(e):
                return None
            raise
        return int(model_section_bytes(image)["text"])


def input_int8(graph, feats: torch.Tensor) -> np.ndarray:
    """Float features (N, 1, frames, feats) -> the graph's quantized input (N, frames, feats, 1)."""
    from ..primitives import quantize_act

    t = graph.tensor(graph.inputs[0])
    x = feats.numpy()[:, 0, :, :, None]
    return quantize_act(x, t.scale, t.zero_point, t.bits).reshape((len(x), *t.shape))


def measure_quantized(qmodel, ctx) -> dict:
    from ..deploy.plan import plan_graph

    g = lower_quantized(qmodel, ctx.data.classes)
    plan = plan_graph(g)
    code = code_bytes(g)
    ctx.lowered = (qmodel, g, code)
    return {"weight_bytes": g.weight_bytes(), "activation_bytes": plan.arena_bytes,
            "activation_source": "arena planner (activations + scratch)",
            "code_bytes": code, "macs": graph_macs(g),
            "params": int(sum(p.numel() for n, p in qmodel.named_parameters() if n.endswith("weight")))}


def _test_features(ctx):
    from ..data import FeatureConfig
    from ..train import DEFAULT_CACHE

    return DEFAULT_CACHE.get(ctx.data.test, FeatureConfig())


def _estimate(cfg, graph, x, final: dict, pkg, acc_int: float, ctx) -> dict:
    """The target's cost estimate, from instructions counted on its emulator when one runs its ISA."""
    from ..deploy.verify import verify_graph
    from ..hw.estimate import estimate
    from ..hw.profiles import load_profile

    prof = load_profile(cfg.target)
    measured = {}
    if prof.verify_target:
        try:
            run = verify_graph(graph, None, x, prof.verify_target)
            measured = {"instructions": int(run["instructions_per_inference"]),
                        "instructions_source": prof.verify_target}
        except PqlrError as e:      # e.g. the cross toolchain is not installed: fall back to the model
            ctx.notes.append(f"estimate: no {prof.verify_target} measurement ({str(e).splitlines()[0]}); analytic")
    return estimate(prof, macs=final["macs"], weight_bytes=final["weight_bytes"],
                    activation_bytes=pkg.arena.arena_bytes,
                    tile_bytes_streamed=final["weight_bytes"] if pkg.tiles.streamed else 0,
                    accuracy=acc_int, **measured)


def finalize(cfg, ctx, log: Callable[[str], None] = print) -> dict:
    """Lower the final model, write OUTPUT.bin + the OUTPUT/ package, check the C on the host."""
    from ..data import FeatureConfig
    from ..deploy.frontend import FrontendQuant
    from ..deploy.host import run_host
    from ..deploy.package import ram_breakdown, write_package
    from ..ir.interp import run_graph
    from ..ir.lower import accumulator_report
    from ..train import evaluate

    if ctx.lowered is not None and ctx.lowered[0] is ctx.qmodel:   # measured by the last stage
        _, g, code = ctx.lowered
    else:                                                          # e.g. every stage restored by --resume
        g = lower_quantized(ctx.qmodel, ctx.data.classes)
        code = code_bytes(g)
    classes = list(ctx.data.classes)
    g.meta["wake_class"] = classes.index("hey_kimi") if "hey_kimi" in classes else 0
    feats, labels = _test_features(ctx)
    x = input_int8(g, feats)
    y_int = run_graph(g, x)
    acc_int = float((y_int.reshape(len(x), -1).argmax(1) == labels.numpy()).mean())
    acc_fq = float(evaluate(ctx.qmodel, ctx.data.test).accuracy)
    t_in = g.tensor(g.inputs[0])
    meta = {"classes": list(ctx.data.classes), "dataset": cfg.dataset, "accuracy_fakequant": acc_fq,
            "accuracy_int": acc_int, "feature": g.meta.get("feature"), "wake_class": g.meta["wake_class"]}
    out_dir = cfg.out_dir
    pkg = write_package(out_dir, g, ram_budget=cfg.ram, n_tiles=cfg.tiles, meta=meta,
                        bin_name=Path(cfg.output).name,
                        frontend=(FeatureConfig(), FrontendQuant(t_in.scale, t_in.zero_point)))
    with atomic_path(cfg.output) as tmp:
        shutil.copyfile(pkg.bin_path, tmp)
    n_check = min(len(x), 64)
    y_c, arena_hw = run_host(out_dir, g, x[:n_check], bin_path=pkg.bin_path)
    mismatches = int((y_c.reshape(n_check, -1) != y_int[:n_check].reshape(n_check, -1)).any(axis=1).sum())
    if mismatches:
        raise PqlrError(f"generated C disagrees with the integer oracle on {mismatches}/{n_check} test samples")
    ram = ram_breakdown(pkg.arena, pkg.tiles, cfg.ram)
    acc_rows = accumulator_report(g)
    final = {
        "accuracy": acc_fq, "accuracy_int": acc_int,
        "weight_bytes": g.weight_bytes(), "flash_bytes": g.weight_bytes() + (code or 0),
        "bin_bytes": Path(cfg.output).stat().st_size, "code_bytes": code,
        "ram_peak_bytes": ram["total"], "ram": ram, "macs": graph_macs(g),
        "host_check": {"samples": n_check, "mismatches": mismatches, "arena_high_water": arena_hw},
        "accumulator_overflow_possible": [r for r in acc_rows if r.get("overflow_possible")],
        "outputs": {"bin": str(cfg.output), "package": str(out_dir)},
    }
    if cfg.target:
        final["estimate"] = _estimate(cfg, g, x[:2], final, pkg, acc_int, ctx)
    log(f"[final] integer accuracy {100 * acc_int:.2f}% (fake-quant {100 * acc_fq:.2f}%), C == oracle on "
        f"{n_check} samples, RAM {ram['total']:,} B, weights {final['weight_bytes']:,} B -> {cfg.output}")
    return final
