"""NumPy ``(x, y)`` input: validation, scaling to uint8 and writing out as a class folder tree."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from transfer_automl.errors import InputError

logger = logging.getLogger(__name__)
_COMPLETE = ".complete"


def _check_x(x: object) -> np.ndarray:
    """Validate the image array and return it as ``uint8`` (N, H, W) or (N, H, W, 3)."""
    x = np.asarray(x)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if not (x.ndim == 3 or (x.ndim == 4 and x.shape[-1] == 3)):
        raise InputError(
            f"x must have shape (N, H, W, 3), (N, H, W, 1) or (N, H, W); got shape {x.shape}."
        )
    if min(x.shape[1:3], default=0) < 1:
        raise InputError(f"x must hold images of at least 1x1 pixel; got shape {x.shape}.")
    if x.dtype == np.uint8:
        return x
    if x.dtype.kind not in "iuf":
        raise InputError(
            f"x must hold numbers (uint8, or floats in [0, 1] or [0, 255]); got dtype {x.dtype}."
        )
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise InputError("x contains NaN or infinite values; replace them before loading.")
    lo, hi = float(x.min(initial=0)), float(x.max(initial=0))
    if lo < 0 or hi > 255:
        raise InputError(f"x values must lie in [0, 1] or [0, 255]; got range [{lo:g}, {hi:g}].")
    scale = 255.0 if x.dtype.kind == "f" and hi <= 1.0 else 1.0
    return np.rint(x.astype(np.float64) * scale).astype(np.uint8)


def _class_names(y: np.ndarray) -> list[str]:
    """One folder-safe class name per label; integers are zero-padded so names sort numerically."""
    if y.dtype.kind in "iub":
        ints = y.astype(np.int64)
        if ints.min() < 0:
            raise InputError(f"Integer labels y must be >= 0; got {int(ints.min())}.")
        width = len(str(int(ints.max())))
        return [str(int(v)).zfill(width) for v in ints]
    if y.dtype.kind not in "UO":
        raise InputError(f"y must hold integers or strings; got dtype {y.dtype} (cast with y.astype(int)).")
    names = [str(v) for v in y]
    for name in set(names):
        if not isinstance(name, str) or name in ("", ".", "..") or name.startswith(".") \
                or any(c in name for c in "/\\\0"):
            raise InputError(
                f"Label {name!r} cannot be a class name (no '/', '\\\\', leading '.' or empty "
                "names); rename the class."
            )
    return names


def validate_arrays(x: object, y: object) -> tuple[np.ndarray, list[str]]:
    """Check an ``(x, y)`` pair and return uint8 images with one class name per image.

    Raises:
        InputError: Wrong shapes or dtypes, mismatched lengths or fewer than 2 classes.
    """
    images = _check_x(x)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(f"y must be a 1-D array of labels; got shape {y.shape}.")
    if len(y) != len(images):
        raise InputError(f"x and y must have the same length; got {len(images)} images and {len(y)} labels.")
    names = _class_names(y)
    if len(set(names)) < 2:
        raise InputError(f"y must hold at least 2 classes; got {len(set(names))} ({sorted(set(names))}).")
    return images, names


def arrays_to_folder(images: np.ndarray, names: list[str], workdir: Path) -> Path:
    """Write the images as PNG files into ``workdir/arrays-<hash>/<class>/``, once per content.

    Args:
        images: uint8 images, (N, H, W) or (N, H, W, 3).
        names: Class name of each image.
        workdir: The cache folder.

    Returns:
        The folder of class sub-folders.
    """
    digest = hashlib.sha256(str(images.shape).encode())
    digest.update(np.ascontiguousarray(images).data)
    digest.update("\n".join(names).encode())
    dest = workdir / f"arrays-{digest.hexdigest()[:16]}"
    if (dest / _COMPLETE).exists():
        return dest
    tmp = workdir / f".{dest.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for name in set(names):
        (tmp / name).mkdir(parents=True)

    def write(i: int) -> None:
        Image.fromarray(images[i]).save(tmp / names[i] / f"{i:07d}.png", compress_level=1)

    with ThreadPoolExecutor() as pool:
        list(pool.map(write, range(len(images))))
    (tmp / _COMPLETE).touch()
    shutil.rmtree(dest, ignore_errors=True)
    os.replace(tmp, dest)
    logger.info("Wrote %d array images to %s", len(images), dest)
    return dest
