"""Datasets beyond audio: `npz:PATH` (arrays) and `images:PATH` (a folder per class), as TensorData.

A TensorData has the KwsData interface (name, classes, train/val/test, info, summary(), n_classes)
plus `input_shape` (one sample's shape) and `task` ("classify" | "anomaly"). Its splits are
TensorSplits: `x` (N, *input_shape) float32 and `labels` (N,) int64 torch tensors, used by training
as they are (no front end, no waveform augmentation).

npz archive (read with allow_pickle=False, never unpickled):
  x (N, ...) float32 [float64 converted], y (N,) int64 [int32 converted]   required
  x_val/y_val, x_test/y_test                                               optional pairs
  classes (K,) str                                                         optional, default "0".."K-1"
  task () str: "classify" | "anomaly"                                      optional, default "classify"
Splits that are not given are drawn from x/y: a seeded stratified 80/10/10 (90/10 when one is given).
For task "anomaly" labels are 0 = normal, 1 = anomalous, and drawn splits keep the anomalies out of
train (normal samples split 80/10/10, anomalous ones shared between val and test).

Image folder: ROOT/<class>/*.png|jpg|jpeg, or ROOT/train|val|test/<class>/... (val/ optional: when
absent a seeded stratified 10% of train). Images are converted to RGB (L for 1 channel), resized
bilinearly to (H, W), scaled to [0, 1] and laid out (C, H, W).
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm

from ..errors import PqlrError

TASKS = ("classify", "anomaly")
SPLITS = ("train", "val", "test")
IMAGE_EXTS = (".png", ".jpg", ".jpeg")
DEFAULT_IMAGE_SHAPE = (3, 32, 32)
ANOMALY_CLASSES = ["normal", "anomalous"]


class TensorSplit(torch.utils.data.Dataset):
    """One split in memory: x (N, *shape) float32, labels (N,) int64; item i -> (x[i], label int).

    `task` tells evaluate() how to score it ("classify": accuracy, "anomaly": ROC AUC of the
    reconstruction error); `paths` names where each sample came from (file, or npz array + row)."""

    def __init__(self, x: torch.Tensor, labels: torch.Tensor, paths=None, task: str = "classify"):
        x, labels = torch.as_tensor(x), torch.as_tensor(labels)
        if x.dtype != torch.float32 or x.dim() < 2:
            raise PqlrError(f"TensorSplit wants x (N, ...) float32, got {x.dtype} {tuple(x.shape)}")
        if labels.dtype != torch.int64 or labels.shape != (x.shape[0],):
            raise PqlrError(f"TensorSplit wants labels ({x.shape[0]},) int64, got {labels.dtype} {tuple(labels.shape)}")
        if task not in TASKS:
            raise PqlrError(f"task {task!r} unknown (use {', '.join(TASKS)})")
        self.x, self.labels, self.task = x.contiguous(), labels, task
        self.paths = [str(p) for p in paths] if paths is not None else [f"#{i}" for i in range(len(labels))]
        if len(self.paths) != len(labels):
            raise PqlrError(f"TensorSplit: {len(labels)} samples but {len(self.paths)} paths")

    @property
    def shape(self) -> tuple[int, ...]:
        """One sample's shape."""
        return tuple(self.x.shape[1:])

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i):
        return self.x[i], int(self.labels[i])

    def counts(self, n_classes: int) -> list[int]:
        return torch.bincount(self.labels, minlength=n_classes).tolist()

    def subset(self, index) -> "TensorSplit":
        index = torch.as_tensor(np.asarray(index, dtype=np.int64))
        return TensorSplit(self.x[index], self.labels[index], [self.paths[int(i)] for i in index], self.task)

    def __repr__(self) -> str:
        return f"TensorSplit({len(self)} x {self.shape} float32, task {self.task})"


@dataclass
class TensorData:
    name: str                    # "npz", "images"
    classes: list[str]           # label i -> classes[i]
    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    info: dict = field(default_factory=dict)   # source, counts/sizes per split, notes, seed
    task: str = "classify"       # "classify" | "anomaly" (labels 0 normal, 1 anomalous)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample's shape, e.g. (3, 32, 32) or (640,)."""
        return self.train.shape

    def summary(self) -> str:
        lines = [f"{self.name}: {self.n_classes} classes, task {self.task}, input {self.input_shape}, "
                 + ", ".join(f"{s} {len(getattr(self, s))}" for s in SPLITS)]
        lines.append("classes: " + " ".join(self.classes))
        for note in self.info.get("notes", []):
            lines.append(f"note: {note}")
        return "\n".join(lines)


# ---------------------------------------------------------------- splits

def stratified_split(labels: np.ndarray, fracs: dict[str, float], seed: int) -> dict[str, np.ndarray]:
    """Seeded stratified split of indices 0..N-1: for each class, a shuffle (seeded by (seed, class))
    gives round-half-up(frac * n) items to each split in `fracs` (in order, leaving train >= 1 item);
    the rest go to "train".
    -> {"train": sorted indices, **{name: sorted indices}}."""
    out = {name: [] for name in ("train", *fracs)}
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[np.random.default_rng([seed, int(c)]).permutation(len(idx))]
        start = 0
        for name, frac in fracs.items():
            k = min(int(np.floor(frac * len(idx) + 0.5)), max(0, len(idx) - start - 1))   # keep >= 1 for train
            out[name].append(idx[start:start + k])
            start += k
        out["train"].append(idx[start:])
    return {k: np.sort(np.concatenate(v)).astype(np.int64) if v else np.zeros(0, np.int64) for k, v in out.items()}


def cap_per_class(labels: np.ndarray, per_class: int | None, seed: int) -> np.ndarray:
    """Sorted indices keeping at most `per_class` items of each class (seeded choice); all when None."""
    if per_class is None:
        return np.arange(len(labels), dtype=np.int64)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        keep.append(idx[np.random.default_rng([seed, int(c), 7]).permutation(len(idx))[:per_class]])
    return np.sort(np.concatenate(keep)).astype(np.int64) if keep else np.zeros(0, np.int64)


def _draw_missing(pool: np.ndarray, missing: list[str], task: str, seed: int) -> tuple[dict, str]:
    """Split the labels `pool` of x/y into train + the `missing` splits. -> (indices per split, note)."""
    fracs = {name: 0.1 for name in missing}
    if task == "anomaly":
        normal, anomalous = np.flatnonzero(pool == 0), np.flatnonzero(pool != 0)
        parts = stratified_split(pool[normal], fracs, seed)
        parts = {k: normal[v] for k, v in parts.items()}
        order = anomalous[np.random.default_rng([seed, 99]).permutation(len(anomalous))]
        for j, name in enumerate(missing):               # anomalies: shared between the drawn val/test
            parts[name] = np.sort(np.concatenate([parts[name], order[j::len(missing)]]))
        note = (f"{'/'.join(missing)} drawn from x/y (seed {seed}): normal samples split "
                f"{'80/10/10' if len(missing) == 2 else '90/10'}, anomalous ones only in {'/'.join(missing)}")
        return parts, note
    parts = stratified_split(pool, fracs, seed)
    note = (f"{'/'.join(missing)} drawn from x/y: seeded stratified "
            f"{'80/10/10' if len(missing) == 2 else '90/10'} split (seed {seed})")
    return parts, note


def _finish(name: str, classes: list[str], arrays: dict, paths: dict, task: str, info: dict) -> TensorData:
    """arrays: split -> (x float32 ndarray, y int64 ndarray) -> TensorData with counts/sizes in info."""
    where = f"{name}: {info['source']}"
    if task == "classify" and len(classes) < 2:
        raise PqlrError(f"{where}: one class only ({classes}); a classifier needs at least 2")
    for s in ("train", "test"):                            # an empty val split only skips validation
        if len(arrays[s][1]) == 0:
            hint = " (images in nested subfolders are not read)" if name == "images" else ""
            raise PqlrError(f"{where}: the {s} split is empty: too few samples to draw it from{hint}")
    splits = {s: TensorSplit(torch.from_numpy(np.ascontiguousarray(arrays[s][0])),
                             torch.from_numpy(np.ascontiguousarray(arrays[s][1])), paths[s], task) for s in SPLITS}
    data = TensorData(name, classes, splits["train"], splits["val"], splits["test"], info, task)
    for s in SPLITS:
        info.setdefault("counts", {})[s] = splits[s].counts(len(classes))
        info.setdefault("sizes", {})[s] = len(splits[s])
    info.setdefault("noise_dir", None)
    info["input_shape"] = list(data.input_shape)
    return data


# ---------------------------------------------------------------- npz

def _read_array(npz, path: str, key: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise PqlrError(f"npz: {path}: array {key!r} is an object array (pickled); PQLR never unpickles, "
                            f"save plain numeric/str arrays") from None
        raise PqlrError(f"npz: {path}: array {key!r} is unreadable ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise PqlrError(f"npz: {path}: array {key!r} is unreadable, the file may be truncated ({e})") from None


def _is_npy(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(6) == b"\x93NUMPY"


def _features(path: str, key: str, a: np.ndarray) -> np.ndarray:
    if a.dtype == np.float64:
        with np.errstate(over="ignore"):
            a = a.astype(np.float32)
    if a.dtype != np.float32:
        raise PqlrError(f"npz: {path}: array {key!r} has dtype {a.dtype}; want float32 (float64 is converted)"
                        + ("; scale integer images to [0, 1] floats" if a.dtype.kind in "iub" else ""))
    if a.ndim < 2:
        raise PqlrError(f"npz: {path}: array {key!r} has shape {a.shape}; want (N, ...) with one sample per row")
    if a.shape[0] == 0:
        raise PqlrError(f"npz: {path}: array {key!r} has no samples")
    bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
    if bad.any():
        raise PqlrError(f"npz: {path}: array {key!r} has NaN/inf values in {int(bad.sum())} sample(s), "
                        f"first at row {int(np.flatnonzero(bad)[0])}")
    return a


def _labels(path: str, key: str, a: np.ndarray, n: int) -> np.ndarray:
    if a.dtype == np.int32:
        a = a.astype(np.int64)
    if a.dtype != np.int64:
        raise PqlrError(f"npz: {path}: array {key!r} has dtype {a.dtype}; want int64 labels (int32 is converted)")
    if a.shape != (n,):
        raise PqlrError(f"npz: {path}: array {key!r} has shape {a.shape}; want ({n},), one label per sample")
    if n and a.min() < 0:
        raise PqlrError(f"npz: {path}: array {key!r} has negative label {int(a.min())}")
    return a


def _text(path: str, key: str, a: np.ndarray) -> np.ndarray:
    if a.dtype.kind == "S":
        a = a.astype(str)
    if a.dtype.kind != "U":
        raise PqlrError(f"npz: {path}: array {key!r} has dtype {a.dtype}; want an array of str")
    return a


def load_npz(path: str, *, input_shape=None, task: str | None = None, seed: int = 0,
             per_class: int | None = None) -> TensorData:
    """Arrays from an .npz archive (layout in the module docstring) -> TensorData.

    input_shape: when given, the samples' shape must equal it. task: overrides the archive's `task`.
    per_class: keep at most this many samples per class in each array (seeded)."""
    if not os.path.isfile(path):
        raise PqlrError(f"npz: {path}: no such file")
    if not zipfile.is_zipfile(path):
        if _is_npy(path):
            raise PqlrError(f"npz: {path}: is a single .npy array, not an .npz archive (save with np.savez(x=..., y=...))")
        raise PqlrError(f"npz: {path}: not an .npz archive (np.savez writes a zip of arrays x, y, ...)")
    try:
        npz = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise PqlrError(f"npz: {path}: not a readable .npz archive ({e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise PqlrError(f"npz: {path}: is a single .npy array, not an .npz archive (save with np.savez(x=..., y=...))")
    with npz:
        keys = set(npz.files)
        for need in ("x", "y"):
            if need not in keys:
                raise PqlrError(f"npz: {path}: no array {need!r} (arrays: {', '.join(sorted(keys)) or 'none'}); "
                                f"need x (N, ...) float32 and y (N,) int64")
        for s in ("val", "test"):
            if (f"x_{s}" in keys) != (f"y_{s}" in keys):
                raise PqlrError(f"npz: {path}: x_{s} and y_{s} come together; only one of them is present")
        stored_task = None
        if "task" in keys:
            t = _text(path, "task", _read_array(npz, path, "task"))
            stored_task = str(t.reshape(-1)[0]) if t.size == 1 else None
            if stored_task not in TASKS:
                raise PqlrError(f"npz: {path}: array 'task' must be one of {', '.join(TASKS)}, got {t.tolist()!r}")
        task = task or stored_task or "classify"
        if task not in TASKS:
            raise PqlrError(f"task {task!r} unknown (use {', '.join(TASKS)})")
        given = {"train": ("x", "y")}
        given.update({s: (f"x_{s}", f"y_{s}") for s in ("val", "test") if f"x_{s}" in keys})
        arrays = {}
        for s, (kx, ky) in given.items():
            x = _features(path, kx, _read_array(npz, path, kx))
            arrays[s] = (x, _labels(path, ky, _read_array(npz, path, ky), x.shape[0]))
        classes = None
        if "classes" in keys:
            classes = list(_text(path, "classes", _read_array(npz, path, "classes")).reshape(-1))
        extra = sorted(keys - {"x", "y", "x_val", "y_val", "x_test", "y_test", "classes", "task"})
    shape = arrays["train"][0].shape[1:]
    for s, (x, _) in arrays.items():
        if x.shape[1:] != shape:
            raise PqlrError(f"npz: {path}: {given[s][0]} samples have shape {x.shape[1:]} but x samples have {shape}")
    if input_shape is not None and tuple(input_shape) != tuple(shape):
        raise PqlrError(f"npz: {path}: samples have shape {tuple(shape)} but the model wants {tuple(input_shape)}")
    top = max(int(y.max()) for _, y in arrays.values())
    total = sum(len(y) for _, y in arrays.values())
    if classes is None and top >= max(total, 2):
        raise PqlrError(f"npz: {path}: labels run up to {top} for {total} samples; labels are class indices "
                        f"0..K-1 (or give the class names in an array 'classes')")
    if classes is None:
        classes = list(ANOMALY_CLASSES) if task == "anomaly" else [str(i) for i in range(top + 1)]
    classes = [str(c) for c in classes]
    if len(set(classes)) != len(classes):
        raise PqlrError(f"npz: {path}: array 'classes' has repeated names: {classes}")
    for s, (_, y) in arrays.items():
        if int(y.max()) >= len(classes):
            raise PqlrError(f"npz: {path}: {given[s][1]} has label {int(y.max())} but there are only "
                            f"{len(classes)} classes {classes}")
    if task == "anomaly" and len(classes) != 2:
        raise PqlrError(f"npz: {path}: task anomaly wants 2 classes (0 normal, 1 anomalous), got {classes}")
    notes = [f"arrays not used: {', '.join(extra)}"] if extra else []
    rows = {s: cap_per_class(y, per_class, seed) for s, (_, y) in arrays.items()}
    arrays = {s: (x[rows[s]], y[rows[s]]) for s, (x, y) in arrays.items()}
    paths = {s: [f"{given[s][0]}[{i}]" for i in rows[s]] for s in given}
    if per_class is not None:
        notes.append(f"at most {per_class} samples per class kept in each array (seed {seed})")
    missing = [s for s in ("val", "test") if s not in given]
    if missing:
        x, y = arrays["train"]
        parts, note = _draw_missing(y, missing, task, seed)
        notes.append(note)
        pool_paths = paths["train"]
        for s, idx in parts.items():
            arrays[s] = (x[idx], y[idx])
            paths[s] = [pool_paths[i] for i in idx]
    info = {"source": os.path.abspath(path), "notes": notes, "seed": seed}
    return _finish("npz", classes, arrays, paths, task, info)


# ---------------------------------------------------------------- image folders

def _image_files(folder: str) -> list[str]:
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS) and not f.startswith("."))


def _class_folders(root: str) -> list[str]:
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith((".", "_")))


def read_image(path: str, input_shape=DEFAULT_IMAGE_SHAPE) -> np.ndarray:
    """One image file -> (C, H, W) float32 in [0, 1]: RGB (C=3) or L (C=1), bilinear resize to (H, W)."""
    from PIL import Image, UnidentifiedImageError
    bad = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)

    c, h, w = input_shape
    try:
        with Image.open(path) as im:
            im = im.convert("RGB" if c == 3 else "L")
            if im.size != (w, h):
                im = im.resize((w, h), Image.Resampling.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 255.0
    except bad as e:
        raise PqlrError(f"images: {path}: not a readable image ({e})") from None
    return a[None] if c == 1 else np.ascontiguousarray(a.transpose(2, 0, 1))


MAX_IMAGE_SIDE = 4096                    # pixels: a microcontroller model's input is far smaller


def _check_image_shape(input_shape) -> tuple[int, int, int]:
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or min(shape[1:]) < 1 or max(shape[1:]) > MAX_IMAGE_SIDE:
        raise PqlrError(f"images: input shape must be (C, H, W) with C = 1 or 3 and 1 <= H, W <= {MAX_IMAGE_SIDE}, "
                        f"got {tuple(input_shape)}")
    return shape


def load_images(root: str, *, input_shape=DEFAULT_IMAGE_SHAPE, seed: int = 0, per_class: int | None = None,
                progress: bool = True, task: str | None = None) -> TensorData:
    """A folder of class folders of PNG/JPEG images (layout in the module docstring) -> TensorData.

    input_shape (C, H, W): C = 3 (RGB) or 1 (gray); every image is resized to (H, W).
    per_class: at most this many images per class in each folder (seeded choice)."""
    shape = _check_image_shape(input_shape)
    if task not in (None, "classify"):
        raise PqlrError(f"images: task {task!r} does not apply (image folders are classification sets)")
    if not os.path.isdir(root):
        raise PqlrError(f"images: {root}: no such folder")
    layout = {s: os.path.join(root, s) for s in SPLITS if os.path.isdir(os.path.join(root, s))}
    notes = []
    if layout:
        for s in ("train", "test"):
            if s not in layout:
                raise PqlrError(f"images: {root} has {'/'.join(sorted(layout))}/ but no {s}/ folder "
                                f"(give train/ and test/, val/ optional; or one folder per class)")
        classes = _class_folders(layout["train"])
        for s, folder in layout.items():
            extra = sorted(set(_class_folders(folder)) - set(classes))
            if extra:
                raise PqlrError(f"images: {folder} has class folders {extra} that train/ does not have")
    else:
        layout = {"train": root}
        classes = _class_folders(root)
    if not classes:
        raise PqlrError(f"images: {layout['train']}: no class folders (want one folder of images per class)")
    listing = {}                                         # split -> [(path, label)]
    for s, folder in layout.items():
        items = []
        for k, c in enumerate(classes):
            d = os.path.join(folder, c)
            files = _image_files(d) if os.path.isdir(d) else []
            if not files and (s == "train" or os.path.isdir(d)):
                raise PqlrError(f"images: class folder {d} has no .png/.jpg/.jpeg images")
            labels = np.full(len(files), k)
            items += [(os.path.join(d, files[i]), k) for i in cap_per_class(labels, per_class, seed)]
        listing[s] = items
    if per_class is not None:
        notes.append(f"at most {per_class} images per class kept in each folder (seed {seed})")
    missing = [s for s in ("val", "test") if s not in listing]
    if missing:
        parts, note = _draw_missing(np.array([k for _, k in listing["train"]]), missing, "classify", seed)
        notes.append(note.replace("x/y", "the class folders"))
        pool = listing["train"]
        listing.update({s: [pool[i] for i in idx] for s, idx in parts.items()})
    arrays, paths = {}, {}
    for s in SPLITS:
        items = listing[s]
        x = np.zeros((len(items), *shape), dtype=np.float32)
        for i, (p, _) in enumerate(tqdm(items, desc=f"images {s}", disable=not progress or not items, unit="img")):
            x[i] = read_image(p, shape)
        arrays[s] = (x, np.array([k for _, k in items], dtype=np.int64))
        paths[s] = [os.path.relpath(p, root) for p, _ in items]
    notes.append(f"images as {'RGB' if shape[0] == 3 else 'gray'} {shape[1]}x{shape[2]} (bilinear), scaled to [0, 1]")
    info = {"source": os.path.abspath(root), "notes": notes, "seed": seed}
    return _finish("images", classes, arrays, paths, "classify", info)
