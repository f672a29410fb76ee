"""`pqlr verify`: the generated C, run on a target (host / RV32IMAC / Cortex-M4 in QEMU), against the
NumPy integer oracle, byte for byte, on real inputs -- plus what it cost (instructions, sizes, RAM).

    verify_graph(graph, tiles, inputs, target, labels)   the core: inputs (N, *input shape) already
                                                          quantized; oracle = ir.interp.run_graph,
                                                          C = deploy.codegen for this graph + tile plan,
                                                          built and run by hw.emulate.run_model
    verify(bin_path, target, inputs= | dataset=, ...)     reads the .bin, makes the inputs from a dataset
                                                          split (Python Frontend -> the input tensor's
                                                          qparams), adds the fake-quant accuracy if known

The check passes when `mismatches` == 0 (no sample's output bytes differ anywhere) and no
soft-float routine is linked in. The generated sources go to a content-addressed folder in the build
cache, so a repeated verify of the same model reuses the compiled image.
"""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Callable

import numpy as np

from ..data import FeatureConfig, KwsData, load_dataset
from ..errors import PqlrError
from ..hw.emulate import TARGETS, run_model
from ..io import write_text
from ..ir.graph import DTYPES, Graph
from ..ir.interp import run_graph
from ..ir.ops import OPS
from ..ir.ops_select import use_variant
from ..runtime import SRC_DIR
from ..runtime.build import cache_dir
from ..data.cache import DEFAULT_CACHE, compute_features
from .binfmt import decode_bin, decode_bin_index, encode_bin
from .codegen import generate
from .inputs import input_int8, input_layout
from .plan import ArenaPlan, plan_graph, split_layers
from .tiles import TilePlan, make_plan

__all__ = ["verify", "verify_graph", "dataset_inputs", "summary"]

SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer")
_FLASH_SOURCES = ("pqlr_flash_read.c", "pqlr_flash_mmap_read.c")


# ---------------------------------------------------------------- the generated sources
def _write_sources(graph: Graph, arena: ArenaPlan, tiles: TilePlan, bin_bytes: bytes | None) -> tuple[list[Path], Path]:
    """Generate the C for (graph, arena plan, tile plan) into a content-addressed cache folder.
    -> (model + runtime .c files model.c needs, include folder). Streamed weights read the .bin
    embedded as a const array (model_flash.c, -DPQLR_EMBED_MODEL_BIN): on the targets it IS the flash."""

    if tiles.streamed and tiles.n_tiles:
        data = bin_bytes if bin_bytes is not None else encode_bin(graph, tiles, dict(graph.meta))
        _, _, _, index = decode_bin_index(data)        # flash offsets exactly as in the file
        files = generate(graph, arena, tiles, index, data)
    else:
        files = generate(graph, arena, tiles)
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    folder = cache_dir() / f"verify-src-{h.hexdigest()[:16]}"
    for name, text in files.items():
        if not (folder / name).is_file() or (folder / name).read_text() != text:
            write_text(folder / name, text)
    model_c = files["model.c"]
    streamed = tiles.streamed and tiles.n_tiles
    runtime = [p for p in sorted(SRC_DIR.glob("pqlr_*.c"))
               if (streamed and p.name in _FLASH_SOURCES)
               or (not p.stem.startswith("pqlr_flash") and f"{p.stem}(" in model_c)]
    return [folder / n for n in sorted(files) if n.endswith(".c")] + runtime, folder


# ---------------------------------------------------------------- the core
def _as_bytes(x: np.ndarray) -> np.ndarray:
    """(N, ...) int8/int16 -> (N, nbytes) int8, little-endian as the targets store it."""
    x = np.ascontiguousarray(x)
    return x.astype(x.dtype.newbyteorder("<")).view(np.int8).reshape(len(x), -1)


def _accuracy(y: np.ndarray, labels: np.ndarray | None) -> float | None:
    """Top-1 accuracy of integer outputs y (N, ...) (argmax of q == argmax of (q - zp) * scale)."""
    if labels is None:
        return None
    return float(np.mean(y.reshape(len(y), -1).argmax(axis=1) == labels))


def _median(values: list[int]) -> int:
    return int(sorted(values)[(len(values) - 1) // 2])


def verify_graph(graph: Graph, tiles: TilePlan | None, inputs: np.ndarray, target: str,
                 labels: np.ndarray | None = None, *, bin_bytes: bytes | None = None, sanitize: bool = False,
                 planner: str = "greedy", timeout_s: float = 600, kernels: str = "reference") -> dict:
    """Run the generated C of `graph` (tiles: its TilePlan; None = weights as const arrays) on
    `target` for every row of `inputs` (N, *input shape) in the input tensor's dtype and compare
    it byte for byte with run_graph. `bin_bytes`: the .bin the tile offsets come from (streamed
    plans; default: encoded from graph + tiles). `sanitize`: ASan/UBSan (host only).
    -> the report dict (see the module docstring and `pqlr verify --help`)."""

    t0 = time.perf_counter()
    if target not in TARGETS:
        raise PqlrError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    if sanitize and target != "host":
        raise PqlrError(f"sanitizers run on the host only, not on {target}")
    graph.validate()
    t_in, t_out = graph.tensor(graph.inputs[0]), graph.tensor(graph.outputs[0])
    x = np.asarray(inputs)
    want = np.dtype(DTYPES[t_in.dtype])
    if x.dtype != want or x.ndim < 1 or tuple(x.shape[1:]) != tuple(t_in.shape) or len(x) == 0:
        raise PqlrError(f"inputs must be a non-empty (N, {', '.join(map(str, t_in.shape))}) {want} array "
                        f"(input tensor {t_in.name}), got {x.dtype} {x.shape}")
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if len(labels) != len(x):
            raise PqlrError(f"{len(labels)} labels for {len(x)} inputs")
    tiles = tiles if tiles is not None else make_plan(graph, None, streamed=False)
    # kernels="opt": the faster kernels (ir.ops_select) have no in-place variants, so plan out of place
    arena = plan_graph(graph, planner, in_place=(kernels == "reference"), split=split_layers(tiles))

    ref = run_graph(graph, x)                                           # (N, *output shape)

    with use_variant(kernels):
        sources, include = _write_sources(graph, arena, tiles, bin_bytes)
    streamed = bool(tiles.streamed and tiles.n_tiles)
    flags = [*(["-DPQLR_EMBED_MODEL_BIN"] if streamed else []), *(SANITIZE_FLAGS if sanitize else ())]
    run = run_model(target, sources, [include], _as_bytes(x), output_bytes=t_out.nbytes,
                    extra_cflags=flags, timeout_s=timeout_s)
    ref_b = _as_bytes(ref)
    diff = ref_b != run.outputs                                         # (N, output bytes)
    bad = np.flatnonzero(diff.any(axis=1))
    y_c = run.outputs.view(np.dtype(DTYPES[t_out.dtype]).newbyteorder("<")).reshape(ref.shape)

    counted = run.counter != "none"
    macs = [int(OPS[n.op].macs(n, graph)) for n in graph.nodes]
    per_inf = _median(run.instructions) if counted else None
    n_buf = (2 if tiles.double_buffer else 1) if streamed else 0
    tile_ram = n_buf * tiles.buffer_bytes
    report = {
        "target": target,
        "samples": int(len(x)),
        "mismatches": int(len(bad)),
        "mismatched_bytes": int(diff.sum()),
        "first_mismatch": None if not len(bad) else {
            "sample": int(bad[0]), "byte": int(np.flatnonzero(diff[bad[0]])[0]),
            "oracle": ref_b[bad[0]].tolist(), "c": run.outputs[bad[0]].tolist()},
        "accuracy_int": _accuracy(ref, labels),
        "accuracy_c": _accuracy(y_c, labels),
        "accuracy_fakequant": None,
        "counter": run.counter,
        "instructions_per_inference": per_inf,
        "macs": int(sum(macs)),
        "instructions_per_mac": (per_inf / sum(macs)) if counted and sum(macs) else None,
        "layers": [{"name": n.name, "op": n.op, "macs": m,
                    "instructions": int(run.layer_instructions[i]) if counted else None}
                   for i, (n, m) in enumerate(zip(graph.nodes, macs))],
        "text_bytes": run.text_bytes, "rodata_bytes": run.rodata_bytes,
        "data_bytes": run.data_bytes, "bss_bytes": run.bss_bytes,
        "stack_peak_bytes": run.stack_peak_bytes if counted else None,
        "arena_peak_bytes": run.arena_peak_bytes,
        "arena_plan_bytes": arena.arena_bytes,
        "tile_buffer_bytes": tile_ram,
        "n_tiles": tiles.n_tiles if streamed else 0,
        # arena = activations + kernel scratch (one planned buffer); tile buffers are static, planned
        "ram_peak_bytes": run.arena_peak_bytes + tile_ram + run.stack_peak_bytes,
        "soft_float_symbols": list(run.soft_float_symbols),
        "sanitized": bool(sanitize),
        "notes": [],
    }
    if not counted:
        report["notes"].append(f"{target}: no instruction counter (instructions and stack are measured "
                               "on rv32imac / cortex-m4 only); ram_peak_bytes excludes the stack")
    if streamed:
        report["notes"].append(f"weights streamed in {tiles.n_tiles} tiles from the .bin embedded as a const "
                               "array (the flash; counted in rodata_bytes)")
    report["seconds"] = round(time.perf_counter() - t0, 3)
    return report


# ---------------------------------------------------------------- inputs from a dataset
def _model_info(meta: dict, graph: Graph, key: str):
    return meta.get(key) if meta.get(key) is not None else graph.meta.get(key)


def dataset_inputs(graph: Graph, meta: dict, data, split: str = "test",
                   limit: int | None = None) -> tuple[np.ndarray, np.ndarray, object, dict]:
    """The first `limit` samples of `data.<split>` as model inputs: audio clips through the model's
    front end (its feature config in the meta), or a tensor dataset's samples as they are.
    -> (inputs (N, *input shape) quantized and laid out as the graph takes them, labels (N,),
        float samples (N, *PyTorch sample shape), info)."""
    classes = _model_info(meta, graph, "classes")
    if classes is not None and list(classes) != list(data.classes):
        raise PqlrError(f"the model's classes {list(classes)} differ from dataset {data.name}'s {list(data.classes)}")
    if split not in ("train", "val", "test"):
        raise PqlrError(f"split must be train, val or test, got {split!r}")
    ds = getattr(data, split)
    if len(ds) == 0:
        raise PqlrError(f"dataset {data.name}: the {split} split is empty")
    n = len(ds) if limit is None else min(int(limit), len(ds))
    fdict = _model_info(meta, graph, "feature")
    if isinstance(data, KwsData):
        if not isinstance(fdict, dict):
            raise PqlrError("the model file has no feature config in its meta; pass quantized inputs instead")
        try:
            fcfg = FeatureConfig(**fdict)
        except TypeError as e:
            raise PqlrError(f"the model file's feature config is invalid ({e})") from None
        if ds.sample_rate != fcfg.sample_rate or ds.clip_samples != fcfg.clip_samples:
            raise PqlrError(f"dataset {data.name} has {ds.clip_samples} samples at {ds.sample_rate} Hz; the model's "
                            f"front end wants {fcfg.clip_samples} at {fcfg.sample_rate} Hz")
        sub = ds.subset(np.arange(n))
        feats, labels = compute_features(sub, fcfg), np.asarray(sub.labels, dtype=np.int64)   # (N, 1, frames, feats)
    else:
        feats, y = DEFAULT_CACHE.get(ds, FeatureConfig())
        feats, labels = feats[:n], y[:n].numpy()
    x = input_int8(graph, feats)
    info = {"dataset": data.name, "split": split, "available": len(ds), "feature": fdict}
    return x, labels, feats, info


# ---------------------------------------------------------------- from a .bin
def verify(bin_path: str | Path, target: str, inputs: np.ndarray | None = None, dataset=None, *,
           labels: np.ndarray | None = None, split: str = "test", limit: int | None = None,
           holdout_speaker: str | None = None, words: list[str] | None = None, per_class: int | None = None,
           data_seed: int = 0, cache_dir: str | None = None,
           fakequant: Callable[[object, np.ndarray], float] | None = None, fakequant_source: str | None = None,
           sanitize: bool = False, timeout_s: float = 600, kernels: str = "reference") -> dict:
    """Verify the model file `bin_path` on `target`. Inputs: `inputs` (N, *input shape), already
    quantized (with optional `labels`), or `dataset` (a spec for data.load_dataset, or loaded data):
    the first `limit` samples of its `split`. The fake-quant accuracy comes from `fakequant(float
    samples, labels)` (e.g. a stage checkpoint's model, pqlr.pipeline.checkpoint), computed on the same
    samples, else from meta["accuracy_fakequant"]."""
    t0 = time.perf_counter()
    path = Path(bin_path)
    if limit is not None and int(limit) < 1:
        raise PqlrError(f"--limit must be >= 1, got {limit}")
    if not path.is_file():
        raise PqlrError(f"{path}: no such model file")
    data_bytes = path.read_bytes()
    try:
        graph, tiles, meta = decode_bin(data_bytes)
    except PqlrError as e:
        raise PqlrError(f"{path}: {e}") from None
    if target not in TARGETS:
        raise PqlrError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    feats, info = None, {}
    if inputs is not None:
        if dataset is not None:
            raise PqlrError("give inputs or a dataset, not both")
        x = np.asarray(inputs)[:limit] if limit is not None else np.asarray(inputs)
        labels = None if labels is None else np.asarray(labels)[:len(x)]
    elif dataset is not None:
        if isinstance(dataset, str):
            dataset = load_dataset(dataset, words=words, holdout_speaker=holdout_speaker, seed=data_seed,
                                   cache_dir=cache_dir, per_class=per_class, progress=False,
                                   input_shape=input_layout(graph)[0])
        x, labels, feats, info = dataset_inputs(graph, meta, dataset, split, limit)
    else:
        raise PqlrError("verify needs inputs or a dataset")
    report = verify_graph(graph, tiles, x, target, labels, bin_bytes=data_bytes, sanitize=sanitize,
                          timeout_s=timeout_s, kernels=kernels)
    report["kernels"] = kernels
    report["model"] = str(path)
    report.update(info)
    if limit is not None and limit > report["samples"]:
        report["notes"].append(f"--limit {limit}: the split has only {report['samples']} samples")
    if fakequant is not None and feats is not None:
        report["accuracy_fakequant"] = float(fakequant(feats, labels))
        report["fakequant_source"] = fakequant_source or "given"
    elif fakequant is not None:
        report["notes"].append("accuracy_fakequant needs dataset inputs (features): not computed")
    elif meta.get("accuracy_fakequant") is not None:
        report["accuracy_fakequant"] = float(meta["accuracy_fakequant"])
        report["fakequant_source"] = "meta"
        report["notes"].append("accuracy_fakequant is from the model file's meta (measured at compress time, "
                               "on its own evaluation set, not these samples)")
    else:
        report["notes"].append("accuracy_fakequant: null (no fake-quant checkpoint given: --fakequant CKPT)")
    report["seconds"] = round(time.perf_counter() - t0, 3)           # data, fake-quant, build and runs
    return report


def summary(r: dict) -> str:
    """A few human lines of a verify report."""
    ok = r["mismatches"] == 0 and not r["soft_float_symbols"]
    pct = lambda v: "n/a" if v is None else f"{100 * v:.2f}%"  # noqa: E731
    lines = [f"verify {r.get('model', 'graph')} on {r['target']}: {'PASS' if ok else 'FAIL'} -- "
             f"{r['mismatches']}/{r['samples']} samples differ ({r['mismatched_bytes']} bytes)",
             f"  accuracy: int {pct(r['accuracy_int'])}  C {pct(r['accuracy_c'])}  "
             f"fake-quant {pct(r['accuracy_fakequant'])}"]
    if r["instructions_per_inference"] is not None:
        lines.append(f"  {r['instructions_per_inference']:,} instructions/inference ({r['counter']}), "
                     f"{r['macs']:,} MACs, {r['instructions_per_mac']:.2f} instr/MAC")
    lines.append(f"  text {r['text_bytes']:,} B  rodata {r['rodata_bytes']:,} B  data {r['data_bytes']:,} B  "
                 f"bss {r['bss_bytes']:,} B")
    lines.append(f"  RAM peak {r['ram_peak_bytes']:,} B = arena {r['arena_peak_bytes']:,} + tile buffers "
                 f"{r['tile_buffer_bytes']:,} + stack {r['stack_peak_bytes'] or 0:,}")
    if r["soft_float_symbols"]:
        lines.append(f"  soft-float routines linked: {', '.join(r['soft_float_symbols'])}")
    lines.append(f"  {r['seconds']:.1f} s")
    return "\n".join(lines)
