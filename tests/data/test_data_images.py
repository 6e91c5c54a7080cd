"""Decoding, conversion and rejection of single files (transfer_automl.data._images)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from transfer_automl.data import read_image
from transfer_automl.data._images import process_file
from transfer_automl.errors import UnusableImage
from transfer_automl.errors import InputError

CASES = [  # name, extension, mode, Pillow format, used in place?
    ("jpeg-rgb", ".jpg", "RGB", None, True),
    ("jpeg-grey", ".jpeg", "L", None, True),
    ("png-rgb", ".png", "RGB", None, True),
    ("png-grey", ".png", "L", None, True),
    ("bmp", ".bmp", "RGB", None, False),
    ("webp", ".webp", "RGB", None, False),
    ("gif", ".gif", "P", None, False),
    ("png-rgba", ".png", "RGBA", None, False),
    ("png-la", ".png", "LA", None, False),
    ("png-palette", ".png", "P", None, False),
    ("jpeg-cmyk", ".jpg", "CMYK", None, False),
    ("png-16bit", ".png", "I;16", None, False),
    ("png-named-jpg", ".jpg", "RGB", "PNG", False),
    ("jpeg-named-png", ".png", "RGB", "JPEG", False),
    ("jpeg-no-extension", "", "RGB", "JPEG", False),
]


@pytest.mark.parametrize("name,ext,mode,fmt,in_place", CASES, ids=[c[0] for c in CASES])
def test_every_format_and_mode_decodes_to_rgb(tmp_path, image, name, ext, mode, fmt, in_place):
    src = image(tmp_path / f"x{ext}", mode, size=(16, 12), fmt=fmt)
    dst = tmp_path / "out.png"
    info = process_file(src, dst)
    assert info.needs_conversion is (not in_place)
    assert (info.height, info.width) == (12, 16)
    arr = read_image(src)
    assert arr.shape == (12, 16, 3) and arr.dtype == np.uint8
    if in_place:
        assert not dst.exists()
    else:
        with Image.open(dst) as out:
            assert (out.format, out.mode) == ("PNG", "RGB")
            np.testing.assert_array_equal(np.asarray(out), arr)


def test_lossless_rgb_is_exact(tmp_path, image, pixels_of):
    np.testing.assert_array_equal(read_image(image(tmp_path / "a.bmp", seed=3)), pixels_of((16, 12), 3))


def test_gif_uses_first_frame(tmp_path):
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    arr = read_image(path)
    assert tuple(arr[5, 5]) == (255, 0, 0)


def test_rgba_and_la_composite_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent black -> white
    rgba[0, 0] = (0, 0, 0, 255)  # opaque black stays black
    rgba[1, 1] = (0, 0, 0, 128)  # half transparent black -> mid grey
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    arr = read_image(tmp_path / "a.png")
    assert tuple(arr[3, 3]) == (255, 255, 255)
    assert tuple(arr[0, 0]) == (0, 0, 0)
    assert 120 <= arr[1, 1, 0] <= 135
    Image.fromarray(rgba[..., 2:], "LA").save(tmp_path / "b.png")
    assert tuple(read_image(tmp_path / "b.png")[3, 3]) == (255, 255, 255)


def test_palette_with_transparency_composites_on_white(tmp_path):
    img = Image.new("P", (4, 4), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.putpixel((0, 0), 1)
    img.save(tmp_path / "p.png", transparency=0)
    img.save(tmp_path / "p.gif", transparency=0)
    for name in ("p.png", "p.gif"):
        arr = read_image(tmp_path / name)
        assert tuple(arr[2, 2]) == (255, 255, 255)
        assert tuple(arr[0, 0]) == (255, 0, 0)
        assert process_file(tmp_path / name, None).needs_conversion


def test_grey_png_with_trns_is_converted(tmp_path):
    Image.new("L", (4, 4), 0).save(tmp_path / "t.png", transparency=0)
    assert process_file(tmp_path / "t.png", None).needs_conversion
    assert tuple(read_image(tmp_path / "t.png")[0, 0]) == (255, 255, 255)


def test_16bit_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 128 * 257, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    arr = read_image(tmp_path / "d.png")
    assert arr[0, :, 0].tolist() == [0, 1, 128, 255]


def test_cmyk_jpeg_colours_survive(tmp_path, image, pixels_of):
    arr = read_image(image(tmp_path / "c.jpg", "CMYK", seed=5, quality=95))
    assert np.abs(arr.astype(int) - pixels_of((16, 12), 5)).mean() < 8


def test_exif_orientation_is_applied(tmp_path, image):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    src = image(tmp_path / "rot.jpg", size=(16, 12), exif=exif.tobytes())
    info = process_file(src, tmp_path / "rot.png")
    assert info.needs_conversion and (info.height, info.width) == (16, 12)
    assert read_image(src).shape == (16, 12, 3)
    with Image.open(tmp_path / "rot.png") as out:
        assert out.size == (12, 16)


def test_truncated_jpeg_is_unusable(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnusableImage, match="truncated"):
        process_file(tmp_path / "cut.jpg", None)


@pytest.mark.parametrize(
    "content,reason",
    [(b"", "empty file"), (b"hello, not a picture", "not an image")],
    ids=["zero-bytes", "text-named-jpg"],
)
def test_non_images_are_unusable(tmp_path, content, reason):
    (tmp_path / "x.jpg").write_bytes(content)
    with pytest.raises(UnusableImage, match=reason):
        process_file(tmp_path / "x.jpg", None)
    with pytest.raises(InputError, match="Cannot read image"):
        read_image(tmp_path / "x.jpg")


def test_unsupported_format_is_named(tmp_path, image):
    src = image(tmp_path / "x.tif")
    with pytest.raises(UnusableImage, match="unsupported image format TIFF"):
        process_file(src, None)


def test_read_image_missing_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "nope.png")


def test_greyscale_detection(tmp_path):
    grey = np.repeat(np.arange(16, dtype=np.uint8)[None, :, None] * 10, 8, axis=0).repeat(3, axis=2)
    Image.fromarray(grey).save(tmp_path / "g.png")
    Image.fromarray(grey).save(tmp_path / "g.jpg", quality=80)
    colour = grey.copy()
    colour[..., 0] = 250
    Image.fromarray(colour).save(tmp_path / "c.png")
    assert process_file(tmp_path / "g.png", None).greyscale
    assert process_file(tmp_path / "g.jpg", None).greyscale
    assert not process_file(tmp_path / "c.png", None).greyscale
