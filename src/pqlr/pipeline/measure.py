"""Measuring a compressed model as deployed: lowering to the integer graph, packed weight bytes,
planned arena, compiled code size, MACs, integer accuracy -- and the pipeline's final outputs
(the .bin, the C package, a host bit-exactness check, the hardware estimate)."""
from __future__ import annotations

import copy
import math
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..compress.lower import accumulator_report, lower
from ..compress.quantize import quantize_
from ..data import FeatureConfig, KwsData
from ..deploy.frontend import FrontendQuant
from ..deploy.verify import verify_graph
from ..deploy.host import model_sources, run_host
from ..deploy.inputs import input_int8
from ..deploy.package import ram_breakdown, write_package
from ..deploy.plan import plan_graph
from ..errors import PqlrError
from ..hw.estimate import estimate
from ..hw.profiles import load_profile
from ..hw.toolchains import build_image, model_section_bytes
from ..io import atomic_path
from ..ir.interp import run_graph
from ..ir.ops import OPS
from ..train import DEFAULT_CACHE, evaluate, roc_auc

CODE_TARGET = "rv32imac"   # code bytes are .text of the model's objects built for this target


def audio_feature(data) -> FeatureConfig | None:
    """The front end feeding the model when the data is audio (then the package gets the C front end)."""
    return FeatureConfig() if isinstance(data, KwsData) else None


def lower_quantized(qmodel, classes, feature=None):
    """A converted copy of the fake-quant model, lowered to the integer Graph."""
    frozen = quantize_(copy.deepcopy(qmodel), qmodel.cfg, step="convert")
    return lower(frozen, classes=classes, feature=feature)


WEIGHT_OPS = ("conv2d", "depthwise_conv2d", "fully_connected", "matmul")


def graph_macs(graph) -> int:
    """Every op's work as the kernels count it (element-wise ops: one per element): for latency."""
    return int(sum(OPS[n.op].macs(n, graph) for n in graph.nodes))


def weight_macs(graph) -> int:
    """Multiply-accumulates of conv, linear and matmul layers: what papers count, and what the float
    rows of the report count (capture.stats), so the stages compare."""
    return int(sum(OPS[n.op].macs(n, graph) for n in graph.nodes if n.op in WEIGHT_OPS))


def code_bytes(graph, target: str = CODE_TARGET) -> int | None:
    """.text bytes of the generated model + kernels for `target` (None when its toolchain is missing)."""
    with tempfile.TemporaryDirectory(prefix="pqlr-code-") as d:
        write_package(d, graph)
        try:
            image = build_image(target, model_sources(d), [Path(d) / "src"])
        except PqlrError as e:
            if "install" in str(e) or "not found" in str(e):
                return None
            raise
        return int(model_section_bytes(image)["text"])


def measure_quantized(qmodel, ctx) -> dict:
    g = lower_quantized(qmodel, class_names(ctx), audio_feature(ctx.data))
    plan = plan_graph(g)
    code = code_bytes(g)
    ctx.lowered = (qmodel, g, code)
    return {"weight_bytes": g.weight_bytes(), "activation_bytes": plan.arena_bytes,
            "activation_source": "arena planner (activations + scratch)",
            "code_bytes": code, "macs": weight_macs(g),
            "params": int(sum(p.numel() for n, p in qmodel.named_parameters() if n.endswith("weight")))}


def class_names(ctx) -> list[str] | None:
    """Class names for the graph's outputs (None for a reconstruction model)."""
    return list(ctx.data.classes) if ctx.task == "classify" else None


def test_inputs(ctx) -> tuple[torch.Tensor, torch.Tensor]:
    return DEFAULT_CACHE.get(ctx.data.test, FeatureConfig())


def check_outputs(gm, data, task: str, who: str) -> None:
    """Before training: a classifier predicts one value per class, an autoencoder as many values as
    its input has (what the task's loss and metric need)."""
    out, inp = tuple(gm.output_shape), tuple(data.input_shape)
    if task == "classify" and out != (len(data.classes),):
        raise PqlrError(f"{who} predicts outputs of shape {out}; the dataset has {len(data.classes)} classes "
                        f"(give the model n_classes={len(data.classes)} outputs)")
    if task == "anomaly" and math.prod(out) != math.prod(inp):
        raise PqlrError(f"{who} outputs {out} for inputs {inp}: an anomaly model must reconstruct its input")


def score(ctx, model) -> float:
    """The task's metric on the test split: accuracy (classify) or ROC AUC (anomaly)."""
    return float(evaluate(model, ctx.data.test, task=ctx.task).accuracy)


def val_score(ctx, model) -> float | None:
    """The task's metric on the validation split (what the accuracy budget compares); None without one."""
    if not len(ctx.data.val):
        return None
    labels = getattr(ctx.data.val, "labels", None)
    if ctx.task == "anomaly" and labels is not None and len(torch.unique(labels)) < 2:
        return None                                     # ROC AUC needs normal and anomalous samples
    return float(evaluate(model, ctx.data.val, task=ctx.task).accuracy)


def integer_score(ctx, g, x_float: torch.Tensor, labels: torch.Tensor, y_int: np.ndarray) -> float:
    """The task's metric of the integer outputs: top-1 accuracy, or ROC AUC of the reconstruction error."""
    if ctx.task == "classify":
        return float((y_int.reshape(len(y_int), -1).argmax(1) == labels.numpy()).mean())
    out = g.tensor(g.outputs[0])
    recon = (y_int.reshape(len(y_int), -1).astype(np.float64) - out.zero_point) * out.scale
    err = ((recon - x_float.reshape(len(x_float), -1).numpy()) ** 2).mean(axis=1)
    return float(roc_auc(err, labels.numpy()))


def _estimate(cfg, graph, x, final: dict, pkg, acc_int: float, ctx) -> dict:
    """The target's cost estimate, from instructions counted on its emulator when one runs its ISA."""
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
    feature = audio_feature(ctx.data)
    if ctx.lowered is not None and ctx.lowered[0] is ctx.qmodel:   # measured by the last stage
        _, g, code = ctx.lowered
    else:                                                          # e.g. every stage restored by --resume
        g = lower_quantized(ctx.qmodel, class_names(ctx), feature)
        code = code_bytes(g)
    classes = list(ctx.data.classes)
    g.meta["wake_class"] = classes.index("hey_kimi") if "hey_kimi" in classes else 0
    g.meta["task"] = ctx.task
    feats, labels = test_inputs(ctx)
    x = input_int8(g, feats)
    y_int = run_graph(g, x)
    acc_int = integer_score(ctx, g, feats, labels, y_int)
    acc_fq = score(ctx, ctx.qmodel)
    t_in = g.tensor(g.inputs[0])
    meta = {"classes": classes, "dataset": cfg.dataset, "task": ctx.task, "accuracy_fakequant": acc_fq,
            "accuracy_int": acc_int, "feature": g.meta.get("feature"), "wake_class": g.meta["wake_class"]}
    out_dir = cfg.out_dir
    pkg = write_package(out_dir, g, ram_budget=cfg.ram, n_tiles=cfg.tiles, meta=meta,
                        bin_name=Path(cfg.output).name,
                        frontend=(feature, FrontendQuant(t_in.scale, t_in.zero_point)) if feature else None)
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
        "metric": "accuracy" if ctx.task == "classify" else "roc_auc",
        "accuracy": acc_fq, "accuracy_int": acc_int,
        "weight_bytes": g.weight_bytes(), "flash_bytes": g.weight_bytes() + (code or 0),
        "bin_bytes": Path(cfg.output).stat().st_size, "code_bytes": code,
        "ram_peak_bytes": ram["total"], "ram": ram, "macs": graph_macs(g), "weight_macs": weight_macs(g),
        "layer_wbits": ctx.qmodel.weight_bits(),
        "host_check": {"samples": n_check, "mismatches": mismatches, "arena_high_water": arena_hw},
        "accumulator_overflow_possible": [r for r in acc_rows if r.get("may_saturate")],
        "outputs": {"bin": str(cfg.output), "package": str(out_dir)},
    }
    if cfg.target:
        final["estimate"] = _estimate(cfg, g, x[:2], final, pkg, acc_int, ctx)
    what = "integer accuracy" if ctx.task == "classify" else "integer ROC AUC"
    log(f"[final] {what} {100 * acc_int:.2f}% (fake-quant {100 * acc_fq:.2f}%), C == oracle on "
        f"{n_check} samples, RAM {ram['total']:,} B, weights {final['weight_bytes']:,} B -> {cfg.output}")
    return final
