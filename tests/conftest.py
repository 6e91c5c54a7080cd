"""Fixtures shared across the suite: a session-wide cache root and tiny generated datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@pytest.fixture(scope="session")
def cache_root(tmp_path_factory) -> Path:
    """One cache root per test session, so the backbone is converted once."""
    return tmp_path_factory.mktemp("cache")


def write_colour_folder(root: Path, per_class: int = 12, size: int = 32, seed: int = 0) -> Path:
    """Three classes of noisy, mostly red / green / blue images, as PNG files."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(("blue", "green", "red")):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 90, (size, size, 3))
            img[..., 2 - c] += 150
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


@pytest.fixture(scope="session")
def colour_folder(tmp_path_factory) -> Path:
    return write_colour_folder(tmp_path_factory.mktemp("colours"))
