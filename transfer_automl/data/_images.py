"""Decoding and RGB conversion of single image files.

The rest of the project decodes dataset files with ``tf.io.decode_image(channels=3,
expand_animations=False)``. That call ignores EXIF orientation and transparency and cannot read
every format Pillow can, so a file is used in place only when TensorFlow is certain to decode it
into the same RGB image as :func:`to_rgb`; every other usable file is converted to PNG.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from transfer_automl.errors import InputError, UnusableImage

#: Pillow format names accepted as dataset images (MPO is the multi-picture JPEG of cameras).
SUPPORTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "BMP", "GIF", "WEBP"})
_JPEG_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".jfif"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_ORIENTATION_TAG = 0x0112
_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_HIGH_DEPTH_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
# JPEG chroma noise makes grey photos stored as RGB differ slightly between channels.
_GREY_TOLERANCE = 10


@dataclass(frozen=True)
class ImageInfo:
    """What the scan learns about one usable image (size after EXIF rotation)."""

    height: int
    width: int
    greyscale: bool
    needs_conversion: bool


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode the first frame of an image, recognised by content.

    Args:
        path: The file to read.

    Returns:
        The decoded Pillow image (format attribute set).

    Raises:
        UnusableImage: The file is empty, not an image, truncated or of an unsupported format.
    """
    if os.path.getsize(path) == 0:
        raise UnusableImage("empty file (0 bytes)")
    try:
        img = Image.open(path)
    except UnidentifiedImageError:
        raise UnusableImage("not an image (content not recognised)") from None
    except Image.DecompressionBombError as exc:
        raise UnusableImage(f"image too large ({exc})") from None
    if img.format not in SUPPORTED_FORMATS:
        fmt = img.format
        img.close()
        raise UnusableImage(f"unsupported image format {fmt}; convert it to PNG or JPEG")
    try:
        img.load()  # a full decode is the only reliable test for truncation
    except Image.DecompressionBombError as exc:
        img.close()
        raise UnusableImage(f"image too large ({exc})") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        img.close()
        raise UnusableImage(f"truncated or corrupt image ({exc})") from None
    return img


def orientation(img: Image.Image) -> int:
    """The EXIF orientation tag of ``img`` (1, the identity, when absent or invalid)."""
    try:
        value = img.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # malformed EXIF must not make a readable image unusable
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_8bit_grey(img: Image.Image) -> Image.Image:
    """Scale a 16-bit, 32-bit or float greyscale image to 8 bits by its range, not by clipping."""
    arr = np.asarray(img)
    if img.mode == "F":
        arr = arr.astype(np.float64)
        scale = 1.0 if np.nanmax(arr, initial=0.0) <= 1.0 else 255.0
        out = np.clip(np.nan_to_num(arr / scale), 0.0, 1.0) * 255.0
        return Image.fromarray(np.rint(out).astype(np.uint8), mode="L")
    arr = arr.astype(np.int64)
    top = 65535 if img.mode.startswith("I;16") else int(arr.max(initial=0))
    if img.mode == "I" and top <= 255:
        top = 255  # an 'I' image already in the 8-bit range keeps its values
    elif img.mode == "I" and top <= 65535:
        top = 65535
    arr = np.clip(arr, 0, top)
    out = (arr * 255 + top // 2) // max(top, 1)
    return Image.fromarray(out.astype(np.uint8), mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert a decoded image to the RGB image the project trains on.

    Applies EXIF orientation, composites transparency (RGBA, LA, palette or ``tRNS``) on white,
    scales 16-bit and float greyscale to 8 bits, and converts CMYK, palette and the rest to RGB.

    Args:
        img: A loaded Pillow image (first frame for animations).

    Returns:
        An 8-bit ``RGB`` image (``img`` itself when nothing had to change).
    """
    if orientation(img) != 1:
        img = ImageOps.exif_transpose(img)
    if img.mode in _HIGH_DEPTH_MODES:
        return _to_8bit_grey(img).convert("RGB")
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode == "RGB":
        return img
    return img.convert("RGB")


def _png_header(path: str | os.PathLike) -> tuple[int, int]:
    """Bit depth and colour type from a PNG's IHDR chunk ((0, 0) when unreadable)."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE):
        return 0, 0
    return head[24], head[25]


def needs_conversion(img: Image.Image, path: str | os.PathLike) -> bool:
    """Whether TensorFlow could decode ``path`` differently from :func:`to_rgb`.

    Only 8-bit greyscale or RGB JPEG/PNG files, with a matching extension, no EXIF rotation, no
    transparency and a single frame are safe to use in place.
    """
    ext = Path(path).suffix.lower()
    if orientation(img) != 1 or "transparency" in img.info:
        return True
    if getattr(img, "n_frames", 1) != 1:
        return True
    if img.format == "JPEG":
        return not (ext in _JPEG_EXTENSIONS and img.mode in ("L", "RGB"))
    if img.format == "PNG":
        depth, colour_type = _png_header(path)
        return not (ext == ".png" and depth == 8 and colour_type in (0, 2))
    return True


def is_greyscale(img: Image.Image, rgb: Image.Image) -> bool:
    """Whether an image carries no colour: a grey mode, or RGB channels (nearly) equal."""
    if img.mode in _GREY_MODES:
        return True
    factor = max(1, min(rgb.size) // 32)
    small = np.asarray(rgb.reduce(factor) if factor > 1 else rgb, dtype=np.int16)
    spread = np.abs(small[..., 0] - small[..., 1]).max() + np.abs(small[..., 1] - small[..., 2]).max()
    return int(spread) <= _GREY_TOLERANCE


def process_file(path: str | os.PathLike, converted: str | os.PathLike | None) -> ImageInfo:
    """Decode one dataset file, describe it and, when needed, write its RGB PNG copy.

    Args:
        path: The source file.
        converted: Where to write the PNG copy if the file cannot be used in place (an existing
            file there is reused: its folder is keyed by the dataset's content fingerprint).

    Returns:
        The image's :class:`ImageInfo`.

    Raises:
        UnusableImage: The file cannot be used; the message is the reason.
    """
    with open_image(path) as img:
        rgb = to_rgb(img)
        convert = needs_conversion(img, path)
        info = ImageInfo(rgb.height, rgb.width, is_greyscale(img, rgb), convert)
        if convert and converted is not None and not os.path.exists(converted):
            _save_png(rgb, Path(converted))
    return info


def _save_png(rgb: Image.Image, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.{id(rgb)}.tmp")
    rgb.save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, dst)  # atomic, so a concurrent or interrupted load never sees half a file


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as the RGB array the project trains on.

    Applies the same conversion as dataset ingestion (first frame, EXIF orientation,
    transparency on white, 16-bit scaled to 8-bit, CMYK/palette/greyscale to RGB).

    Args:
        path: An image file (JPEG, PNG, BMP, GIF, WebP), recognised by content.

    Returns:
        A ``(height, width, 3)`` ``uint8`` array.

    Raises:
        InputError: The file is missing or is not a usable image.
    """
    if not os.path.isfile(path):
        raise InputError(f"Image {path} does not exist or is not a file; check the path.")
    try:
        with open_image(path) as img:
            return np.array(to_rgb(img), dtype=np.uint8)
    except UnusableImage as exc:
        raise InputError(f"Cannot read image {path}: {exc}.") from None
