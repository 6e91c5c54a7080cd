"""load_dataset on zip archives: layouts, zip-slip, links, bombs and corrupt archives."""

from __future__ import annotations

import stat
import zipfile

import pytest

from transfer_automl.data import load_dataset
from transfer_automl.errors import InputError


def test_zip_of_flat_layout(flat, work, tmp_path, zipper):
    ds = load_dataset(zipper(flat, tmp_path / "d.zip"), workdir=work)
    assert ds.class_names == ("a", "b", "c") and ds.report.n_images == 30
    assert ds.root.startswith(str(work))
    assert ds.report.source == str(tmp_path / "d.zip")


def test_zip_with_single_top_folder_is_descended(flat, work, tmp_path, zipper):
    ds = load_dataset(zipper(flat, tmp_path / "d.zip", prefix="flowers/"), workdir=work)
    assert ds.class_names == ("a", "b", "c") and ds.root.endswith("/flowers")


@pytest.mark.parametrize("prefix", ["", "top/"])
@pytest.mark.parametrize("splits", [("train", "val", "test"), ("train", "test")])
def test_zip_of_split_layout(tmp_path, work, split_tree, zipper, prefix, splits):
    root = split_tree(tmp_path / "d", splits, per_split=4)
    ds = load_dataset(zipper(root, tmp_path / "d.zip", prefix=prefix), workdir=work)
    assert ds.report.given_splits and len(ds.test) == 8
    assert len(ds.val) == (8 if "val" in splits else 2)


def test_zip_with_macos_junk(flat, work, tmp_path, zipper):
    path = zipper(flat, tmp_path / "d.zip", prefix="top/")
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("__MACOSX/top/a/._img00.png", b"junk")
        zf.writestr("top/.DS_Store", b"junk")
    ds = load_dataset(path, workdir=work)
    assert ds.root.endswith("/top") and ds.report.ignored == 1 and ds.report.skipped == ()


def test_zip_is_extracted_once(flat, work, tmp_path, zipper):
    path = zipper(flat, tmp_path / "d.zip")
    first = load_dataset(path, workdir=work)
    marker = next(work.glob("zip-*/.complete"))
    mtime = marker.stat().st_mtime_ns
    assert load_dataset(path, workdir=work) == first
    assert marker.stat().st_mtime_ns == mtime


def write_zip(path, entries):
    with zipfile.ZipFile(path, "w") as zf:
        for entry, data in entries:
            zf.writestr(entry, data)
    return path


@pytest.mark.parametrize("name", ["../evil.png", "a/../../evil.png", "/etc/evil.png", "a\\..\\..\\evil.png"])
def test_zip_slip_is_refused(tmp_path, work, name):
    path = write_zip(tmp_path / "d.zip", [("a/1.png", b"x"), (name, b"x")])
    with pytest.raises(InputError, match="zip-slip") as exc:
        load_dataset(path, workdir=work)
    assert "\n" not in str(exc.value)
    assert not (tmp_path / "evil.png").exists() and not (work.parent / "evil.png").exists()


def test_zip_symlink_entry_is_refused(tmp_path, work):
    info = zipfile.ZipInfo("a/link.png")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf:
        zf.writestr("a/1.png", b"x")
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(InputError, match="symbolic link 'a/link.png'"):
        load_dataset(tmp_path / "d.zip", workdir=work)


def test_zip_bomb_caps(flat, work, tmp_path, zipper):
    path = zipper(flat, tmp_path / "d.zip")
    with pytest.raises(InputError, match="more than max_zip_bytes=1000"):
        load_dataset(path, workdir=work, max_zip_bytes=1000)
    with pytest.raises(InputError, match="30 entries, more than max_zip_entries=10"):
        load_dataset(path, workdir=work, max_zip_entries=10)
    assert not list(work.glob("zip-*"))


def test_zip_bomb_with_lying_header_is_caught_while_extracting(tmp_path, work):
    path = write_zip(tmp_path / "d.zip", [("a/1.bin", b"\0" * 5000)])
    data = bytearray(path.read_bytes())
    # shrink the declared uncompressed size in the central directory (offset 24 of the record)
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24:cd + 28] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(InputError):
        load_dataset(path, workdir=work, max_zip_bytes=100)


@pytest.mark.parametrize("kind", ["garbage", "truncated", "bad-crc"])
def test_corrupt_zip(flat, work, tmp_path, zipper, kind):
    path = tmp_path / "d.zip"
    if kind == "garbage":
        path.write_bytes(b"this is not a zip at all")
    else:
        data = bytearray(zipper(flat, path).read_bytes())
        if kind == "truncated":
            data = data[: len(data) // 2]
        else:
            with zipfile.ZipFile(path) as zf:
                info = zf.infolist()[0]
            start = info.header_offset + 30 + len(info.filename) + 10
            data[start] ^= 0xFF
        path.write_bytes(bytes(data))
    with pytest.raises(InputError, match="not a readable zip archive") as exc:
        load_dataset(path, workdir=work)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("entries, match", [
    ([("a/x", b"x"), ("a/x/1.png", b"x")], "both as a file and as a folder"),
    ([("a/1.png", b"x"), ("y/", b""), ("y", b"x")], "both as a file and as a folder"),
    ([("a/x/1.png", b"x"), ("a/x", b"x")], "both as a file and as a folder"),
    ([("a/1.png", b"x"), ("a/1.png", b"y")], "twice"),
    ([("a/" + "n" * 256 + ".png", b"x")], "over 255 bytes"),
    ([("a/" + "é" * 128 + ".png", b"x")], "over 255 bytes"),  # 256 bytes in UTF-8
])
def test_zip_entries_that_cannot_coexist_are_one_clear_error(tmp_path, work, entries, match):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
        path = write_zip(tmp_path / "d.zip", entries)
    with pytest.raises(InputError, match=match) as exc:
        load_dataset(path, workdir=work)
    assert "\n" not in str(exc.value)


def test_zip_entry_with_a_colon_is_a_relative_name(tmp_path, work):
    from PIL import Image
    import io

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buf, "PNG")
    entries = [(f"{c}/{i}.png", buf.getvalue()) for c in ("d:s", "b") for i in range(3)]
    data = load_dataset(write_zip(tmp_path / "d.zip", entries), workdir=work)
    assert set(data.class_names) == {"d:s", "b"}
    with pytest.raises(InputError, match="zip-slip"):
        load_dataset(write_zip(tmp_path / "e.zip", [("C:/x/1.png", b"x")]), workdir=work)
