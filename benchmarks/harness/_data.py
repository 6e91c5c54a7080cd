"""Where benchmark datasets come from: the shared folder, a path, or tiny generated ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np

# ``../shared/datasets`` beside the repository (benchmarks/harness/ -> repo -> its parent).
SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
QUICK_DATASETS = ("colours", "stripes")


def resolve(name: str | Path, root: Path = SHARED) -> Path | None:
    """A dataset folder: ``name`` itself when it is a folder, else ``root / name``; None if
    neither exists."""
    path = Path(name)
    if path.is_dir():
        return path
    path = Path(root) / str(name)
    return path if path.is_dir() else None


def dataset_folders(root: Path, names: list[str] | None = None) -> list[Path]:
    """The dataset folders under ``root`` (sorted; hidden ones left out), or the named ones.

    Raises:
        SystemExit: if a named dataset is neither a folder nor under ``root``.
    """
    if not names:
        if not Path(root).is_dir():
            return []
        return sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))
    found = {n: resolve(n, root) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        raise SystemExit(f"unknown datasets {missing}: not folders and not under {root}")
    return list(found.values())


def write_quick_datasets(root: Path, per_class: int = 12, size: int = 32) -> Path:
    """Generate (once) the tiny datasets ``--quick`` runs on, under ``root``; returns ``root``.

    ``colours``: three classes of noisy, mostly red / green / blue images. ``stripes``:
    three classes of horizontal, vertical and diagonal stripes. Both are easy, so a quick run's
    scores are well above chance when the code path works.
    """
    root = Path(root)
    if (root / ".complete").exists():
        return root
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    patterns = {"horizontal": yy, "vertical": xx, "diagonal": xx + yy}
    for i in range(per_class):
        for c, name in enumerate(("blue", "green", "red")):
            img = rng.integers(0, 90, (size, size, 3))
            img[..., 2 - c] += 150
            _save(img, root / "colours" / name / f"{i:03d}.png", Image)
        for name, grid in patterns.items():
            period = int(rng.integers(4, 9))
            wave = (((grid + rng.integers(period)) // (period // 2)) % 2) * 160
            img = rng.integers(0, 60, (size, size, 3)) + wave[..., None]
            _save(img, root / "stripes" / name / f"{i:03d}.png", Image)
    (root / ".complete").write_text("ok")
    return root


def write_shapes(out: Path, per_class: int = 150, size: int = 96) -> Path:
    """Synthetic geometric shapes (circle, rectangle, triangle, ellipse), one per image, of
    random colour, size and position on a white background; deterministic. Needs
    scikit-image (a test dependency)."""
    from PIL import Image
    from skimage.draw import random_shapes

    out = Path(out)
    done = out / ".complete"
    if done.exists():
        return out
    rng = np.random.default_rng(0)
    for shape in ("circle", "rectangle", "triangle", "ellipse"):
        (out / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image, _ = random_shapes((size, size), max_shapes=1, min_shapes=1, shape=shape,
                                     min_size=size // 3, max_size=size - 8,
                                     rng=int(rng.integers(2**31)), channel_axis=-1)
            Image.fromarray(image).save(out / shape / f"{i:03d}.png")
    done.write_text("ok")
    return out


def quick_space():
    """The search space of ``--quick`` searches: the default space at 64 px, 3 epochs."""
    from transfer_automl.space import default_space

    return default_space().fix(resolution=64, epochs=3)


def _save(pixels: np.ndarray, path: Path, image_module) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image_module.fromarray(pixels.clip(0, 255).astype(np.uint8)).save(path)
