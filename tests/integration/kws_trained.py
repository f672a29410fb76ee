"""A real small KWS model for the integration tests: DS-CNN-S (the MLPerf Tiny reference, 23 K params,
2.66 M MACs) trained in float on the synthetic `kws_english` set (3 epochs, no augmentation, seed 0),
PTQ int8 (weights per channel, activations asymmetric, 200 calibration utterances), lowered to the
integer IR and written as a PQLR package with the fixed-point C frontend.

`trained_kws(folder)` builds it once per process. The float weights are also kept on disk under the
build cache, keyed by the sha256 of every pqlr source file, the training settings and the data set's
own sha256, behind a file lock: parallel test workers train once, and any change to pqlr retrains."""
from __future__ import annotations

import copy
import fcntl
import hashlib
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import pqlr
from pqlr.compress.quantize import QuantConfig, quantize_
from pqlr.data import FeatureConfig, load_dataset
from pqlr.deploy.frontend import FrontendQuant
from pqlr.deploy.package import write_package
from pqlr.ir.graph import Graph
from pqlr.compress.lower import lower
from pqlr.models import build_model, load_model, save_model
from pqlr.runtime.build import cache_dir
from pqlr.train import DEFAULT_CACHE, TrainConfig, evaluate, train

DATASET = "kws_english"
MODEL = "ds-cnn-s"
WAKE = "hey_kimi"
FEATURES = FeatureConfig()                         # 49 MFCC frames x 10, 20 ms hops
TRAIN = TrainConfig(epochs=3, batch_size=64, lr=5e-3, augment=False, seed=0)
QUANT = QuantConfig(wbits=8, abits=8, method="ptq", calib=200)


@dataclass
class TrainedKws:
    data: object                 # pqlr.data.KwsData (train/val/test AudioDatasets, int16 clips)
    model: torch.nn.Module       # the float model (eval mode)
    graph: Graph                 # the integer IR of its PTQ int8 twin
    quant: FrontendQuant         # the graph input's (scale, zero point): what the C frontend emits
    package: Path                # write_package output: src/ (model + runtime + frontend), freertos/
    float_test_accuracy: float
    trained_now: bool            # False: float weights came from the disk cache
    seconds: float


@contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _source_digest() -> str:
    h = hashlib.sha256()
    root = Path(pqlr.__file__).resolve().parent
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def _float_model(data) -> tuple[torch.nn.Module, bool]:
    """Train (single-threaded: fast and deterministic on a shared machine) or load the cached weights."""
    key = hashlib.sha256("|".join([_source_digest(), MODEL, repr(TRAIN), repr(FEATURES), torch.__version__,
                                   data.info["sha256"]]).encode()).hexdigest()[:16]
    folder = cache_dir() / "trained-kws"
    path = folder / f"{DATASET}-{MODEL}-{key}.safetensors"
    with _locked(folder / f"{key}.lock"):
        if path.is_file() and path.with_suffix(".json").is_file():
            model, _ = load_model(path)
            return model.eval(), False
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            model = build_model(MODEL, data.n_classes, seed=TRAIN.seed)
            train(model, data, TRAIN, features=FEATURES, progress=False)
        finally:
            torch.set_num_threads(threads)
        save_model(path, model, {"dataset": DATASET, "train": TRAIN.to_dict()})
        return model.eval(), True


def _calibration(data) -> list[torch.Tensor]:
    """The first QUANT.calib training utterances of a seeded shuffle, as feature batches (B, 1, 49, 10)."""
    x, _ = DEFAULT_CACHE.get(data.train, FEATURES)
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[:QUANT.calib]
    return [x[idx[i:i + 64]] for i in range(0, len(idx), 64)]


_BUILT: dict[str, TrainedKws] = {}


def trained_kws(folder: Path) -> TrainedKws:
    """The trained, quantized, lowered and packaged model (built once per process; the package goes
    to `folder`/package the first time)."""
    if "kws" in _BUILT:
        return _BUILT["kws"]
    t0 = time.time()
    data = load_dataset(DATASET, progress=False)
    if data.classes[0] != WAKE:
        raise AssertionError(f"{DATASET}: class 0 is {data.classes[0]!r}, expected {WAKE!r}")
    model, trained_now = _float_model(data)
    float_acc = float(evaluate(model, data.test, FEATURES).accuracy)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        qmodel = quantize_(copy.deepcopy(model), QUANT, step="prepare", calib=_calibration(data),
                           input_shape=(1, *FEATURES.shape))
        quantize_(qmodel, QUANT, step="convert")
    finally:
        torch.set_num_threads(threads)
    graph = lower(qmodel, classes=data.classes, feature=FEATURES)
    graph.meta["wake_class"] = data.classes.index(WAKE)
    t_in = graph.tensor(graph.inputs[0])
    quant = FrontendQuant(t_in.scale, t_in.zero_point)
    package = Path(folder) / "package"
    write_package(package, graph, meta={"classes": list(data.classes), "dataset": DATASET,
                                        "wake_class": graph.meta["wake_class"]},
                  frontend=(FEATURES, quant))
    _BUILT["kws"] = TrainedKws(data, model, graph, quant, package, float_acc, trained_now,
                               round(time.time() - t0, 1))
    return _BUILT["kws"]


def labels(split) -> np.ndarray:
    return np.asarray(split.labels, dtype=np.int64)
