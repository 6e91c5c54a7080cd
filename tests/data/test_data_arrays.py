"""load_dataset on (x, y) NumPy arrays."""

from __future__ import annotations

import numpy as np
import pytest

from transfer_automl.data import load_dataset, read_image
from transfer_automl.errors import InputError


def arrays(n_per_class=5, classes=3, shape=(8, 10, 3), seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(n_per_class * classes, *shape), dtype=np.uint8)
    y = np.repeat(np.arange(classes), n_per_class)
    return x, y


def test_uint8_arrays_round_trip(work):
    x, y = arrays()
    ds = load_dataset((x, y), workdir=work)
    assert ds.class_names == ("0", "1", "2")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (9, 3, 3)
    assert ds.report.source == "arrays x(15, 8, 10, 3) uint8"
    assert ds.report.converted == 0 and ds.report.mean_size == (8, 10)
    for path, label in zip(ds.train.paths, ds.train.labels):
        i = int(path.rsplit("/", 1)[1].split(".")[0])
        assert y[i] == label
        np.testing.assert_array_equal(read_image(path), x[i])


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_float_arrays_are_scaled(work, scale):
    x, y = arrays()
    ds = load_dataset((x.astype(np.float32) / 255.0 * scale, y), workdir=work)
    path = ds.train.paths[0]
    i = int(path.rsplit("/", 1)[1].split(".")[0])
    np.testing.assert_array_equal(read_image(path), x[i])


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 1)])
def test_greyscale_arrays(work, shape):
    x, y = arrays(shape=shape)
    ds = load_dataset((x, y), workdir=work)
    assert ds.report.greyscale_share == 1.0
    assert read_image(ds.train.paths[0]).shape == (8, 8, 3)


def test_string_labels(work):
    x, _ = arrays(classes=2)
    y = np.array(["dog"] * 5 + ["cat"] * 5)
    ds = load_dataset((x, list(y)), workdir=work)
    assert ds.class_names == ("cat", "dog")
    assert ds.report.class_counts == {"cat": 5, "dog": 5}


def test_integer_labels_are_zero_padded_to_sort_numerically(work):
    x, y = arrays(n_per_class=2, classes=11)
    ds = load_dataset((x, y), workdir=work)
    assert ds.class_names[:3] == ("00", "01", "02") and ds.class_names[-1] == "10"


def test_same_arrays_reuse_the_workdir(work):
    x, y = arrays()
    assert load_dataset((x, y), workdir=work) == load_dataset((x.copy(), y.copy()), workdir=work)
    assert len(list(work.glob("arrays-*"))) == 1


@pytest.mark.parametrize(
    "x,y,match",
    [
        (np.zeros((4, 8, 8, 2), np.uint8), [0, 0, 1, 1], r"shape \(N, H, W, 3\)"),
        (np.zeros((4, 8), np.uint8), [0, 0, 1, 1], r"got shape \(4, 8\)"),
        (np.zeros((4, 8, 8), np.uint8), [0, 1, 1], "same length; got 4 images and 3 labels"),
        (np.zeros((4, 8, 8), np.uint8), [1, 1, 1, 1], "at least 2 classes"),
        (np.zeros((4, 8, 8), np.uint8), [[0, 1], [0, 1], [1, 0], [1, 0]], "1-D array"),
        (np.zeros((4, 8, 8), np.uint8), [0.5, 0.5, 1.5, 1.5], "integers or strings"),
        (np.zeros((4, 8, 8), np.uint8), ["a", "a", "../b", "../b"], "cannot be a class name"),
        (np.zeros((4, 8, 8), np.uint8), [-1, -1, 0, 0], ">= 0"),
        (np.full((4, 8, 8), np.nan), [0, 0, 1, 1], "NaN"),
        (np.full((4, 8, 8), 300.0), [0, 0, 1, 1], r"\[0, 1\] or \[0, 255\]"),
        (np.full((4, 8, 8), "x"), [0, 0, 1, 1], "must hold numbers"),
    ],
    ids=["4-channels", "ndim-2", "length", "one-class", "2d-labels", "float-labels", "bad-name",
         "negative", "nan", "range", "strings"],
)
def test_bad_arrays(work, x, y, match):
    with pytest.raises(InputError, match=match) as exc:
        load_dataset((x, y), workdir=work)
    assert "\n" not in str(exc.value)


def test_class_with_one_array_image(work):
    x, _ = arrays(n_per_class=3, classes=2)
    with pytest.raises(InputError, match=r"'1' \(1\)"):
        load_dataset((x, [0, 0, 0, 0, 0, 1]), workdir=work)
