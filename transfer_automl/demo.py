"""The built-in demo dataset: scikit-learn's handwritten digits written out as an image folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

DEMO_SIZE = 32


def write_digits(out_dir: str | os.PathLike, size: int = DEMO_SIZE) -> Path:
    """Write the 1,797 8x8 digit images as ``out_dir/<digit>/<n>.png`` (``size`` px, RGB).

    Existing complete output is reused.
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    out = Path(out_dir)
    done = out / ".complete"
    if done.exists():
        return out
    digits = load_digits()
    for i, (pixels, label) in enumerate(zip(digits.images, digits.target)):
        folder = out / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        grey = (np.asarray(pixels) * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(grey, mode="L").resize((size, size), Image.Resampling.BILINEAR)
        image.convert("RGB").save(folder / f"{i:04d}.png")
    done.write_text("ok")
    return out


def demo_space():
    """The default space on EfficientNet-Lite0 at small resolutions: the digits are 32 px
    images, so 224 px inputs would only cost time."""
    from transfer_automl.space import default_space

    return default_space(["efficientnet_lite0"]).restrict(resolution=(128, 160))
