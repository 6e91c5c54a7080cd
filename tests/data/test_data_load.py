"""load_dataset on folders: layouts, ignore rules, skipped files, symlinks and errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from transfer_automl.data import Dataset, load_dataset
from transfer_automl.errors import InputError


def all_paths(ds: Dataset) -> list[str]:
    return [*ds.train.paths, *ds.val.paths, *ds.test.paths]


def assert_labels_match_folders(ds: Dataset) -> None:
    for split in (ds.train, ds.val, ds.test):
        for path, label in zip(split.paths, split.labels):
            rel = Path(path)
            assert ds.class_names[label] in rel.parts, (path, label)


def test_flat_layout_is_split_stratified(flat, work):
    ds = load_dataset(flat, workdir=work)
    assert ds.class_names == ("a", "b", "c")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (18, 6, 6)
    for split, per_class in ((ds.train, 6), (ds.val, 2), (ds.test, 2)):
        assert np.bincount(split.labels).tolist() == [per_class] * 3
    assert len(set(all_paths(ds))) == 30
    assert_labels_match_folders(ds)
    rep = ds.report
    assert (rep.n_images, rep.n_classes, rep.given_splits) == (30, 3, False)
    assert rep.class_counts == {"a": 10, "b": 10, "c": 10}
    assert (rep.skipped, rep.ignored, rep.converted) == ((), 0, 0)
    assert rep.mean_size == (12, 16) and rep.greyscale_share == 0.0
    assert ds.root == str(flat.resolve())


def test_split_is_deterministic_for_a_seed(flat, tmp_path):
    one = load_dataset(flat, seed=3, workdir=tmp_path / "w1")
    two = load_dataset(flat, seed=3, workdir=tmp_path / "w2")
    other = load_dataset(flat, seed=4, workdir=tmp_path / "w1")
    assert one == two
    assert one.val.paths != other.val.paths
    # the fingerprint covers split membership, so split-keyed caches never mix two splits
    assert one.fingerprint != other.fingerprint


def test_hidden_files_and_os_junk_are_ignored_not_reported(flat, work, image):
    image(flat / "a" / ".hidden.png")
    image(flat / "a" / "._img00.png")
    for name in (".DS_Store", "Thumbs.db", "desktop.ini"):
        (flat / "b" / name).write_bytes(b"junk")
    image(flat / "__MACOSX" / "a" / "x.png")
    image(flat / ".git" / "x.png")
    ds = load_dataset(flat, workdir=work)
    assert ds.report.ignored == 7
    assert ds.report.skipped == ()
    assert ds.class_names == ("a", "b", "c") and ds.report.n_images == 30


def test_broken_files_are_skipped_and_listed(flat, work):
    (flat / "a" / "notes.jpg").write_text("not an image")
    (flat / "a" / "empty.png").write_bytes(b"")
    data = (flat / "b" / "img00.png").read_bytes()
    (flat / "b" / "cut.png").write_bytes(data[: len(data) // 2])
    (flat / "loose.png").write_bytes(data)
    ds = load_dataset(flat, workdir=work)
    reasons = {s.path: s.reason for s in ds.report.skipped}
    assert reasons["a/notes.jpg"].startswith("not an image")
    assert reasons["a/empty.png"].startswith("empty file")
    assert reasons["b/cut.png"].startswith("truncated")
    assert reasons["loose.png"] == "not inside a class folder"
    assert ds.report.n_images == 30
    assert not any("notes" in p or "cut" in p for p in all_paths(ds))


def test_mixed_formats_are_converted_into_workdir(tmp_path, work, image):
    root = tmp_path / "mixed"
    for i, (ext, mode) in enumerate([(".jpg", "RGB"), (".bmp", "RGB"), (".webp", "RGB"),
                                     (".gif", "P"), (".png", "RGBA"), (".png", "I;16")]):
        image(root / "x" / f"{i}{ext}", mode, seed=i)
        image(root / "y" / f"{i}{ext}", mode, seed=50 + i)
    ds = load_dataset(root, workdir=work)
    assert ds.report.converted == 10
    converted = [p for p in all_paths(ds) if p.startswith(str(work))]
    assert len(converted) == 10 and all(p.endswith(".png") and os.path.exists(p) for p in converted)


def test_nested_subfolders_belong_to_their_class(flat, work, image):
    image(flat / "a" / "deeper" / "more" / "z.png", seed=77)
    assert load_dataset(flat, workdir=work).report.class_counts["a"] == 11


def test_given_train_val_test(tmp_path, work, split_tree):
    root = split_tree(tmp_path / "d", ("train", "val", "test"))
    ds = load_dataset(root, workdir=work)
    assert ds.report.given_splits
    assert (len(ds.train), len(ds.val), len(ds.test)) == (6, 6, 6)
    assert all("/train/" in p for p in ds.train.paths)
    assert all("/val/" in p for p in ds.val.paths)
    assert all("/test/" in p for p in ds.test.paths)
    assert_labels_match_folders(ds)


def test_missing_val_is_carved_from_train(tmp_path, work, split_tree):
    root = split_tree(tmp_path / "d", ("train", "test"), per_split=10)
    ds = load_dataset(root, workdir=work, val_fraction=0.2)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (16, 4, 20)
    assert all("/train/" in p for p in ds.val.paths)
    assert np.bincount(ds.val.labels).tolist() == [2, 2]


def test_train_only_has_empty_test(tmp_path, work, split_tree):
    ds = load_dataset(split_tree(tmp_path / "d", ("train",), per_split=4), workdir=work)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (6, 2, 0)


@pytest.mark.parametrize("alias", ["validation", "Val", "valid"])
def test_validation_aliases(tmp_path, work, split_tree, alias):
    root = split_tree(tmp_path / "d", ("train", alias))
    ds = load_dataset(root, workdir=work)
    assert len(ds.val) == 6 and all(f"/{alias}/" in p for p in ds.val.paths)


def test_given_layout_reports_stray_entries(tmp_path, work, split_tree, image):
    root = split_tree(tmp_path / "d", ("train", "val"))
    image(root / "extra" / "a" / "x.png")
    image(root / "train" / "loose.png")
    ds = load_dataset(root, workdir=work)
    reasons = {s.path: s.reason for s in ds.report.skipped}
    assert reasons == {"extra": "folder is not train/, val/ or test/",
                       "train/loose.png": "not inside a class folder"}


def test_class_missing_from_train_is_an_error(tmp_path, work, split_tree, image):
    root = split_tree(tmp_path / "d", ("train", "val"))
    image(root / "val" / "zebra" / "1.png")
    image(root / "val" / "zebra" / "2.png", seed=1)
    with pytest.raises(InputError, match="'zebra' has no usable images in .*train"):
        load_dataset(root, workdir=work)


def test_val_and_validation_together_is_an_error(tmp_path, work, split_tree):
    root = split_tree(tmp_path / "d", ("train", "val", "validation"))
    with pytest.raises(InputError, match="Both val/ and validation/"):
        load_dataset(root, workdir=work)


def test_tiny_class_rule(tmp_path, work, flat_tree):
    root = flat_tree(tmp_path / "d", ("big",), 20)
    flat_tree(root, ("two",), 2)
    flat_tree(root, ("three",), 3)
    ds = load_dataset(root, workdir=work)
    counts = {split: np.bincount(getattr(ds, split).labels, minlength=3).tolist()
              for split in ("train", "val", "test")}
    # class order: big, three, two
    assert counts == {"train": [14, 1, 1], "val": [3, 1, 1], "test": [3, 1, 0]}


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


def test_missing_path(tmp_path, work):
    with pytest.raises(InputError, match="does not exist") as exc:
        load_dataset(tmp_path / "nope", workdir=work)
    one_line(exc)


def test_file_that_is_not_a_zip(tmp_path, work):
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(InputError, match="is a file but not a zip") as exc:
        load_dataset(tmp_path / "data.csv", workdir=work)
    one_line(exc)


@pytest.mark.parametrize("content", ["nothing", "only-junk", "empty-classes"])
def test_empty_folder(tmp_path, work, content):
    root = tmp_path / "d"
    root.mkdir()
    if content == "only-junk":
        (root / ".DS_Store").write_bytes(b"x")
    if content == "empty-classes":
        (root / "a").mkdir()
        (root / "b").mkdir()
    with pytest.raises(InputError, match="No images found") as exc:
        load_dataset(root, workdir=work)
    one_line(exc)


def test_all_files_unusable(tmp_path, work):
    for cls in ("a", "b"):
        (tmp_path / "d" / cls).mkdir(parents=True)
        (tmp_path / "d" / cls / "x.jpg").write_text("text")
    with pytest.raises(InputError, match="No usable images .* all 2 files were skipped"):
        load_dataset(tmp_path / "d", workdir=work)


def test_single_class(tmp_path, work, flat_tree):
    root = flat_tree(tmp_path / "d", ("only",), 4)
    with pytest.raises(InputError, match=r"Found 1 class \(only\).* at least 2") as exc:
        load_dataset(root, workdir=work)
    assert "pass " in one_line(exc)  # hints that the folder might be one level too high


def test_class_with_one_usable_image(flat, work, image):
    image(flat / "lonely" / "1.png")
    (flat / "lonely" / "2.jpg").write_text("broken")
    with pytest.raises(InputError, match=r"'lonely' \(1\) .* fewer than 2 usable images") as exc:
        load_dataset(flat, workdir=work)
    one_line(exc)


def test_empty_class_folder_is_an_error(flat, work):
    (flat / "empty").mkdir()
    with pytest.raises(InputError, match=r"'empty' \(0\)"):
        load_dataset(flat, workdir=work)


def test_symlink_out_of_tree_is_an_error(flat, work, tmp_path, image):
    outside = image(tmp_path / "elsewhere" / "x.png")
    (flat / "a" / "link.png").symlink_to(outside)
    with pytest.raises(InputError, match="outside the dataset folder") as exc:
        load_dataset(flat, workdir=work)
    one_line(exc)


def test_dir_symlink_out_of_tree_is_an_error(flat, work, tmp_path, flat_tree):
    other = flat_tree(tmp_path / "other", ("z",), 2)
    (flat / "z").symlink_to(other / "z", target_is_directory=True)
    with pytest.raises(InputError, match="symbolic link"):
        load_dataset(flat, workdir=work)


def test_symlinks_inside_tree_are_followed(flat, work):
    (flat / "b" / "alias.png").symlink_to(flat / "a" / "img00.png")
    (flat / "c" / "sub").symlink_to(flat / "a", target_is_directory=True)
    (flat / "c" / "dangling.png").symlink_to(flat / "missing.png")
    (flat / "c" / "loop").symlink_to(flat / "c", target_is_directory=True)
    ds = load_dataset(flat, workdir=work)
    assert ds.report.class_counts == {"a": 10, "b": 11, "c": 20}
    assert sorted(s.reason for s in ds.report.skipped) == ["broken symbolic link", "symbolic link loop"]


def test_symlinked_root_is_fine(flat, work, tmp_path):
    (tmp_path / "alias").symlink_to(flat, target_is_directory=True)
    assert load_dataset(tmp_path / "alias", workdir=work).report.n_images == 30


def test_repeated_load_reuses_cache(flat, work, image):
    image(flat / "a" / "extra.bmp", seed=99)
    first = load_dataset(flat, workdir=work)
    converted = next(p for p in first.train.paths + first.val.paths + first.test.paths
                     if p.endswith("extra.bmp.png"))
    mtime = os.stat(converted).st_mtime_ns
    second = load_dataset(flat, workdir=work)
    assert second == first
    assert os.stat(converted).st_mtime_ns == mtime
    assert len(list(work.glob("*/dataset-*.json"))) == 1


def test_fingerprint_changes_with_one_image(flat, work, image):
    before = load_dataset(flat, workdir=work).fingerprint
    image(flat / "b" / "img03.png", seed=12345)
    after = load_dataset(flat, workdir=work)
    assert after.fingerprint != before
    (flat / "b" / "img03.png").rename(flat / "c" / "moved.png")
    assert load_dataset(flat, workdir=work).fingerprint not in (before, after.fingerprint)


def test_non_regular_file_is_skipped_not_opened(flat, work):
    os.mkfifo(flat / "a" / "pipe.png")  # opening a FIFO would block the run forever
    ds = load_dataset(flat, workdir=work)
    assert [(s.path, s.reason) for s in ds.report.skipped] == [("a/pipe.png", "not a regular file")]


def test_fingerprint_does_not_depend_on_location(flat, tmp_path):
    import shutil

    copy = shutil.copytree(flat, tmp_path / "copy")
    assert load_dataset(flat, workdir=tmp_path / "w1").fingerprint == \
        load_dataset(copy, workdir=tmp_path / "w2").fingerprint
