"""Fixtures for the data tests: tiny generated images and dataset folders."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def pixels(size: tuple[int, int], seed: int, channels: int = 3) -> np.ndarray:
    """Smooth random uint8 pixels (w, h) -> (h, w[, c]); smooth so JPEG keeps them close."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(30, 225, size=(channels,))
    ramp = np.linspace(0, 25, w)[None, :, None] + np.linspace(0, 25, h)[:, None, None]
    arr = np.clip(base[None, None, :] + ramp, 0, 255).astype(np.uint8)
    return arr[..., 0] if channels == 1 else arr


def make_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (16, 12), fmt: str | None = None,
               seed: int = 0, **save_kw) -> Path:
    """Write a small image of ``mode`` to ``path`` (format from the extension unless ``fmt``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = Image.fromarray(pixels(size, seed))
    if mode == "RGB":
        img = rgb
    elif mode in ("L", "LA", "RGBA", "CMYK"):
        img = rgb.convert(mode)
    elif mode == "P":
        img = rgb.quantize(16)
    elif mode == "I;16":
        arr = (pixels(size, seed, 1).astype(np.uint32) * 257).astype(np.uint16)
        img = Image.fromarray(arr)
    else:
        raise ValueError(mode)
    img.save(path, format=fmt, **save_kw)
    return path


def make_flat(root: Path, classes=("a", "b", "c"), per_class: int = 10, ext: str = ".png") -> Path:
    """A folder with one sub-folder per class, ``per_class`` distinct images each."""
    for ci, cls in enumerate(classes):
        for i in range(per_class):
            make_image(root / cls / f"img{i:02d}{ext}", seed=ci * 1000 + i)
    return root


def make_split_layout(root: Path, splits=("train", "val", "test"), classes=("a", "b"),
                      per_split: int = 3) -> Path:
    """A folder with train/ (and val/, test/ ...) each holding class sub-folders."""
    for si, split in enumerate(splits):
        make_flat(root / split, classes, per_split)
        for ci, cls in enumerate(classes):  # make contents distinct across splits
            for i in range(per_split):
                make_image(root / split / cls / f"img{i:02d}.png", seed=si * 100000 + ci * 1000 + i)
    return root


def zip_folder(folder: Path, zip_path: Path, prefix: str = "") -> Path:
    """Zip every file below ``folder``, entry names prefixed by ``prefix``."""
    with zipfile.ZipFile(zip_path, "w") as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                zf.write(file, prefix + file.relative_to(folder).as_posix())
    return zip_path


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A private work directory, so tests never touch the user's cache."""
    return tmp_path / "work"


@pytest.fixture
def flat(tmp_path: Path) -> Path:
    """Three classes (a, b, c) of ten PNG images each."""
    return make_flat(tmp_path / "flat")


@pytest.fixture
def image():
    """The :func:`make_image` helper."""
    return make_image


@pytest.fixture
def flat_tree():
    """The :func:`make_flat` helper."""
    return make_flat


@pytest.fixture
def split_tree():
    """The :func:`make_split_layout` helper."""
    return make_split_layout


@pytest.fixture
def zipper():
    """The :func:`zip_folder` helper."""
    return zip_folder


@pytest.fixture
def pixels_of():
    """The :func:`pixels` helper (the exact content :func:`make_image` writes for RGB)."""
    return pixels
