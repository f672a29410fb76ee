"""Tensor datasets: `npz:` archives (explicit and seeded splits, conversions, classes, anomaly sets, every
refusal) and `images:` folders (resize, channels, layouts, refusals), through load_dataset."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from pqlr.data import KwsData, TensorData, load_dataset
from pqlr.data.tensors import stratified_split
from pqlr.errors import PqlrError


def save(path, **arrays) -> str:
    np.savez(path, **arrays)
    return str(path)


def blobs(n_per_class: int, k: int = 4, shape=(3, 4, 4), seed: int = 0):
    """k classes of n_per_class samples: float32 x of `shape`, class c around the value c."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n_per_class).astype(np.int64)
    x = (y.reshape(-1, *([1] * len(shape))) + 0.1 * rng.standard_normal((len(y), *shape))).astype(np.float32)
    return x, y


# ------------------------------------------------------------------------------------------ npz

def test_npz_explicit_splits_and_classes(tmp_path):
    x, y = blobs(5)
    xv, yv = blobs(2, seed=1)
    xt, yt = blobs(3, seed=2)
    p = save(tmp_path / "d.npz", x=x, y=y, x_val=xv, y_val=yv, x_test=xt, y_test=yt,
             classes=np.array(["a", "b", "c", "d"]))
    data = load_dataset(f"npz:{p}")
    assert isinstance(data, TensorData) and data.task == "classify" and data.name == "npz"
    assert data.classes == ["a", "b", "c", "d"] and data.n_classes == 4 and data.input_shape == (3, 4, 4)
    assert [len(data.train), len(data.val), len(data.test)] == [20, 8, 12]
    assert data.train.x.dtype == torch.float32 and data.train.labels.dtype == torch.int64
    assert torch.equal(data.test.x, torch.from_numpy(xt)) and data.test.labels.tolist() == yt.tolist()
    assert data.info["counts"]["val"] == [2, 2, 2, 2] and "task classify" in data.summary()
    xi, yi = data.train[7]
    assert xi.shape == (3, 4, 4) and yi == 1


def test_npz_seeded_stratified_split(tmp_path):
    x, y = blobs(40)
    p = save(tmp_path / "d.npz", x=x, y=y)
    a, b = load_dataset(f"npz:{p}", seed=3), load_dataset(f"npz:{p}", seed=3)
    c = load_dataset(f"npz:{p}", seed=4)
    assert [len(a.train), len(a.val), len(a.test)] == [128, 16, 16]                  # 80/10/10
    assert a.info["counts"]["test"] == [4, 4, 4, 4] and a.info["counts"]["train"] == [32] * 4
    assert a.classes == ["0", "1", "2", "3"]                                          # default names
    rows = [a.train.paths, a.val.paths, a.test.paths]
    assert sorted(sum(rows, [])) == sorted(f"x[{i}]" for i in range(160))            # disjoint, complete
    assert all(getattr(a, s).paths == getattr(b, s).paths for s in ("train", "val", "test"))
    assert a.test.paths != c.test.paths
    i = int(a.test.paths[0][2:-1])
    assert torch.equal(a.test.x[0], torch.from_numpy(x[i])) and int(a.test.labels[0]) == y[i]
    assert any("80/10/10" in n for n in a.info["notes"])


def test_npz_only_test_given_draws_val_and_converts_dtypes(tmp_path):
    x, y = blobs(20, k=2, shape=(6,))
    xt, yt = blobs(3, k=2, shape=(6,), seed=1)
    p = save(tmp_path / "d.npz", x=x.astype(np.float64), y=y.astype(np.int32), x_test=xt, y_test=yt)
    data = load_dataset(f"npz:{p}")
    assert [len(data.train), len(data.val), len(data.test)] == [36, 4, 6]             # 90/10 of x/y
    assert data.train.x.dtype == torch.float32 and data.val.labels.dtype == torch.int64
    assert data.input_shape == (6,)
    assert load_dataset(f"npz:{p}", per_class=5).info["sizes"] == {"train": 8, "val": 2, "test": 6}


def test_npz_input_shape_is_checked(tmp_path):
    x, y = blobs(5)
    p = save(tmp_path / "d.npz", x=x, y=y)
    assert load_dataset(f"npz:{p}", input_shape=(3, 4, 4)).input_shape == (3, 4, 4)
    with pytest.raises(PqlrError, match=r"samples have shape \(3, 4, 4\) but the model wants \(1, 4, 4\)"):
        load_dataset(f"npz:{p}", input_shape=(1, 4, 4))


def test_npz_anomaly_set_keeps_anomalies_out_of_train(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((120, 8)).astype(np.float32)
    y = np.r_[np.zeros(100), np.ones(20)].astype(np.int64)
    p = save(tmp_path / "a.npz", x=x, y=y, task=np.array("anomaly"))
    data = load_dataset(f"npz:{p}")
    assert data.task == "anomaly" and data.classes == ["normal", "anomalous"]
    assert data.train.labels.sum() == 0 and len(data.train) == 80
    assert int(data.val.labels.sum()) == 10 and int(data.test.labels.sum()) == 10
    assert data.test.task == "anomaly"
    assert load_dataset(f"npz:{p}", task="classify").task == "classify"                  # explicit task wins
    with pytest.raises(PqlrError, match="task anomaly wants 2 classes"):
        load_dataset(f"npz:{save(tmp_path / 'b.npz', x=x, y=y, classes=np.array(['a', 'b', 'c']))}", task="anomaly")


def _truncated(tmp_path):
    x, y = blobs(5)
    good = save(tmp_path / "good.npz", x=x, y=y)
    data = open(good, "rb").read()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    return str(tmp_path / "t.npz")


BAD_NPZ = {
    "missing x": (lambda x, y: dict(y=y), r"no array 'x' \(arrays: y\)"),
    "missing y": (lambda x, y: dict(x=x), r"no array 'y'"),
    "x uint8": (lambda x, y: dict(x=(x * 10).astype(np.uint8), y=y), r"array 'x' has dtype uint8; want float32"),
    "x float16": (lambda x, y: dict(x=x.astype(np.float16), y=y), r"array 'x' has dtype float16"),
    "y float": (lambda x, y: dict(x=x, y=y.astype(np.float32)), r"array 'y' has dtype float32; want int64"),
    "ragged labels": (lambda x, y: dict(x=x, y=y[:-1]), r"array 'y' has shape \(19,\); want \(20,\)"),
    "2-D labels": (lambda x, y: dict(x=x, y=y[:, None]), r"array 'y' has shape \(20, 1\)"),
    "1-D x": (lambda x, y: dict(x=x[:, 0, 0, 0], y=y), r"array 'x' has shape \(20,\); want \(N, ...\)"),
    "NaN": (lambda x, y: dict(x=np.where(np.arange(20)[:, None, None, None] == 3, np.nan, x).astype(np.float32), y=y),
            r"array 'x' has NaN/inf values in 1 sample\(s\), first at row 3"),
    "inf val": (lambda x, y: dict(x=x, y=y, x_val=np.full((2, 3, 4, 4), np.inf, np.float32), y_val=y[:2]),
                r"array 'x_val' has NaN/inf"),
    "object": (lambda x, y: dict(x=np.array([x[0], "a"], dtype=object), y=y[:2]), r"'x' is an object array"),
    "x_val alone": (lambda x, y: dict(x=x, y=y, x_val=x), r"x_val and y_val come together"),
    "val shape": (lambda x, y: dict(x=x, y=y, x_test=x[:, :1], y_test=y), r"x_test samples have shape \(1, 4, 4\)"),
    "negative label": (lambda x, y: dict(x=x, y=y - 1), r"array 'y' has negative label -1"),
    "label range": (lambda x, y: dict(x=x, y=y, classes=np.array(["a", "b"])), r"y has label 3 but there are only 2"),
    "repeated class": (lambda x, y: dict(x=x, y=y, classes=np.array(["a", "a", "b", "c"])), r"repeated names"),
    "numeric classes": (lambda x, y: dict(x=x, y=y, classes=np.arange(4)), r"array 'classes' has dtype int64"),
    "bad task": (lambda x, y: dict(x=x, y=y, task=np.array("regress")), r"array 'task' must be one of"),
    "empty x": (lambda x, y: dict(x=x[:0], y=y[:0]), r"array 'x' has no samples"),
    "huge label": (lambda x, y: dict(x=x, y=np.where(y == 3, 10**12, y)), r"labels run up to 1000000000000 for 20"),
    "one class": (lambda x, y: dict(x=x, y=np.zeros_like(y)), r"one class only \(\['0'\]\)"),
    "too few to split": (lambda x, y: dict(x=x[::5], y=y[::5]), r"the test split is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_npz_refusals_name_file_and_array(case, tmp_path):
    x, y = blobs(5)
    make, needle = BAD_NPZ[case]
    p = save(tmp_path / "bad.npz", **make(x, y))
    with pytest.raises(PqlrError, match=needle) as e:
        load_dataset(f"npz:{p}")
    assert p in str(e.value) and "\n" not in str(e.value)


def test_npz_refuses_unreadable_files(tmp_path):
    with pytest.raises(PqlrError, match="no such file"):
        load_dataset(f"npz:{tmp_path / 'nope.npz'}")
    with pytest.raises(PqlrError, match=r"t\.npz: not (a readable|an) \.npz archive"):
        load_dataset(f"npz:{_truncated(tmp_path)}")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(PqlrError, match=r"text\.npz: not an \.npz archive \(np\.savez writes a zip"):
        load_dataset(f"npz:{tmp_path / 'text.npz'}")
    np.save(tmp_path / "one.npy", np.zeros((3, 2), np.float32))
    with pytest.raises(PqlrError, match=r"single \.npy array"):
        load_dataset(f"npz:{tmp_path / 'one.npy'}")
    with pytest.raises(PqlrError, match="needs a path"):
        load_dataset("npz:")
    with pytest.raises(PqlrError, match="apply to audio datasets only"):
        load_dataset(f"npz:{tmp_path / 'one.npy'}", words=["a"])


def test_stratified_split_keeps_one_for_train_and_is_complete():
    y = np.array([0] * 10 + [1] * 3 + [2])
    parts = stratified_split(y, {"val": 0.1, "test": 0.1}, 0)
    assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(14))
    assert 13 in parts["train"].tolist()                                   # a class of one stays in train
    assert [int((y[parts[s]] == 0).sum()) for s in ("train", "val", "test")] == [8, 1, 1]


def test_audio_specs_unchanged_and_shaped():
    assert KwsData.input_shape.fget(None) == (1, 49, 10)
    with pytest.raises(PqlrError, match="applies to npz: datasets only"):
        load_dataset("kws_english:2", task="anomaly")
    with pytest.raises(PqlrError, match="task 'x' unknown"):
        load_dataset("kws_english:2", task="x")


# ------------------------------------------------------------------------------------ images

COLOURS = {"cat": (255, 0, 0), "dog": (0, 255, 0), "eel": (0, 0, 255)}


def write_tree(root, per_class: int = 5, fmt: str = "PNG") -> None:
    """root/<class>/<i>.png: solid-colour images of varied size and mode, one JPEG per class, a note file."""
    for c, rgb in COLOURS.items():
        os.makedirs(root / c, exist_ok=True)
        for i in range(per_class):
            im = Image.new("RGB", (10 + i, 7 + 2 * i), rgb)
            if i == 1:
                im = im.convert("RGBA")
            ext = "jpg" if i == 2 else fmt.lower()
            im.save(root / c / f"{i}.{ext}", "JPEG" if ext == "jpg" else fmt)
        (root / c / "README.txt").write_text("not an image")


def test_images_load_resize_and_split(tmp_path):
    write_tree(tmp_path)
    data = load_dataset(f"images:{tmp_path}", input_shape=(3, 8, 6), progress=False)
    assert data.name == "images" and data.classes == ["cat", "dog", "eel"] and data.input_shape == (3, 8, 6)
    assert [len(data.train), len(data.val), len(data.test)] == [9, 3, 3]
    for split in (data.train, data.val, data.test):
        for x, label in zip(split.x, split.labels.tolist()):
            want = torch.tensor(COLOURS[data.classes[label]], dtype=torch.float32) / 255.0
            assert torch.allclose(x.mean(dim=(1, 2)), want, atol=0.02)        # JPEG is near, PNG exact
    again = load_dataset(f"images:{tmp_path}", input_shape=(3, 8, 6), progress=False)
    assert again.test.paths == data.test.paths and all(p.endswith((".png", ".jpg")) for p in data.test.paths)
    assert load_dataset(f"images:{tmp_path}", progress=False).input_shape == (3, 32, 32)      # default


def test_images_gray_and_bilinear(tmp_path):
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        os.makedirs(tmp_path / c)
        for i in range(10):
            Image.fromarray(rng.integers(0, 256, (12, 9, 3), dtype=np.uint8)).save(tmp_path / c / f"{i}.png")
    data = load_dataset(f"images:{tmp_path}", input_shape=(1, 5, 7), progress=False)
    assert data.train.x.shape[1:] == (1, 5, 7)
    path = tmp_path / data.train.paths[0]
    want = np.asarray(Image.open(path).convert("L").resize((7, 5), Image.Resampling.BILINEAR), np.float32) / 255
    assert np.allclose(data.train.x[0, 0].numpy(), want)
    assert 0.0 <= float(data.train.x.min()) and float(data.train.x.max()) <= 1.0


def test_images_train_val_test_layout(tmp_path):
    write_tree(tmp_path / "train", per_class=10)
    write_tree(tmp_path / "test", per_class=2)
    data = load_dataset(f"images:{tmp_path}", input_shape=(3, 4, 4), progress=False)
    assert [len(data.train), len(data.val), len(data.test)] == [27, 3, 6]          # val: 10% of train/
    assert all(p.startswith("test") for p in data.test.paths)
    write_tree(tmp_path / "val", per_class=1)
    data = load_dataset(f"images:{tmp_path}", input_shape=(3, 4, 4), progress=False)
    assert [len(data.train), len(data.val), len(data.test)] == [30, 3, 6]


def test_images_refusals(tmp_path):
    with pytest.raises(PqlrError, match="no such folder"):
        load_dataset(f"images:{tmp_path / 'nope'}")
    (tmp_path / "flat").mkdir()
    with pytest.raises(PqlrError, match="no class folders"):
        load_dataset(f"images:{tmp_path / 'flat'}")
    write_tree(tmp_path / "t")
    (tmp_path / "t" / "fox").mkdir()
    (tmp_path / "t" / "fox" / "notes.txt").write_text("x")
    with pytest.raises(PqlrError, match=r"class folder .*fox has no \.png/\.jpg/\.jpeg images"):
        load_dataset(f"images:{tmp_path / 't'}", progress=False)
    (tmp_path / "t" / "fox" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(PqlrError, match=r"fox/broken\.png: not a readable image"):
        load_dataset(f"images:{tmp_path / 't'}", progress=False)
    for shape in ((2, 8, 8), (3, 8), (3, 0, 8), (3, 100_000, 100_000)):
        with pytest.raises(PqlrError, match=r"input shape must be \(C, H, W\)"):
            load_dataset(f"images:{tmp_path / 't'}", input_shape=shape)
    write_tree(tmp_path / "s" / "train")
    with pytest.raises(PqlrError, match="no test/ folder"):
        load_dataset(f"images:{tmp_path / 's'}")
    with pytest.raises(PqlrError, match="does not apply"):
        load_dataset(f"images:{tmp_path / 's'}", task="anomaly")
