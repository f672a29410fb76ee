"""Real handwritten digits, offline, for the `npz:` and `images:` datasets of PQLR.

Source: scikit-learn's copy of the UCI "Optical Recognition of Handwritten Digits" test set,
`sklearn.datasets.load_digits()`: 1,797 real 8x8 images (pixel counts 0..16) of digits 0-9 written by
43 people, shipped inside the scikit-learn package (no network).

Writes, under --out DIR:
  digits_<size>.npz   x (N, C, size, size) float32 in [0, 1] (pixels / 16, bilinear resize with Pillow
                      in float, gray replicated to C channels), y (N,) int64, classes "0".."9", and
                      x_test/y_test: a fixed seeded stratified split, 80% in x/y, 20% in x_test/y_test
                      (pqlr draws a validation split from x/y)
  images/train/<digit>/<index>.png, images/test/<digit>/<index>.png
                      the same images as 8-bit PNGs (RGB for C = 3, gray for C = 1), same split; index is
                      the row in load_digits()

Use: python examples/data/make_digits.py --out /tmp/digits [--size 32] [--channels 3]
     pqlr train --model my_cnn.py:Net --dataset npz:/tmp/digits/digits_32.npz ...
     pqlr train --model my_cnn.py:Net --dataset images:/tmp/digits/images --input-shape 3x32x32 ...
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

SEED = 0
TEST_SHARE = 0.2


def digits_arrays(size: int = 32, channels: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """-> x (1797, channels, size, size) float32 in [0, 1], y (1797,) int64."""
    from PIL import Image
    from sklearn.datasets import load_digits

    if channels not in (1, 3) or size < 1:
        raise SystemExit(f"make_digits: want --channels 1 or 3 and --size >= 1, got {channels}, {size}")
    d = load_digits()
    images = d.images.astype(np.float32) / 16.0                          # (N, 8, 8) in [0, 1]
    out = np.empty((len(images), size, size), dtype=np.float32)
    for i, im in enumerate(images):
        f = Image.fromarray(im)                                          # float32 2-D: mode "F"
        out[i] = np.asarray(f if size == 8 else f.resize((size, size), Image.Resampling.BILINEAR))
    x = np.repeat(np.clip(out, 0.0, 1.0)[:, None], channels, axis=1)
    return np.ascontiguousarray(x), d.target.astype(np.int64)


def split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fixed stratified split: -> (train rows, test rows), sorted."""
    from pqlr.data.tensors import stratified_split
    parts = stratified_split(y, {"test": TEST_SHARE}, SEED)
    return parts["train"], parts["test"]


def make(out: str, size: int = 32, channels: int = 3, images: bool = True) -> str:
    """Write the npz (and the PNG tree unless images=False) under `out`; -> the npz path."""
    from PIL import Image

    x, y = digits_arrays(size, channels)
    tr, te = split(y)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"digits_{size}.npz")
    np.savez_compressed(path, x=x[tr], y=y[tr], x_test=x[te], y_test=y[te],
                        classes=np.array([str(d) for d in range(10)]))
    if images:
        for name, rows in (("train", tr), ("test", te)):
            for d in range(10):
                os.makedirs(os.path.join(out, "images", name, str(d)), exist_ok=True)
            for i in rows:
                pix = np.round(x[i] * 255.0).astype(np.uint8)                  # (C, H, W)
                im = Image.fromarray(pix.transpose(1, 2, 0) if channels == 3 else pix[0])   # RGB or L
                im.save(os.path.join(out, "images", name, str(int(y[i])), f"{i:04d}.png"))
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder to write digits_<size>.npz and images/ into")
    p.add_argument("--size", type=int, default=32, help="image side after bilinear resize (default 32)")
    p.add_argument("--channels", type=int, default=3, choices=(1, 3), help="3 = RGB (gray replicated), 1 = gray")
    p.add_argument("--no-images", action="store_true", help="write only the npz")
    a = p.parse_args(argv)
    path = make(a.out, a.size, a.channels, images=not a.no_images)
    print(f"wrote {path}" + ("" if a.no_images else f" and {os.path.join(a.out, 'images')}/"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
