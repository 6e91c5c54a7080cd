"""Data model, manifest, report, parameter validation and the light-import promise."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from transfer_automl.data import DataReport, Dataset, Split, default_workdir, load_dataset, load_manifest
from transfer_automl.errors import InputError


def test_manifest_round_trip(flat, work, tmp_path):
    (flat / "a" / "bad.jpg").write_text("nope")
    ds = load_dataset(flat, workdir=work)
    path = ds.save_manifest(tmp_path / "m" / "dataset.json")
    loaded = load_manifest(path)
    assert loaded == ds and Dataset.load_manifest(path) == ds
    assert loaded.train.labels.dtype == np.int64
    assert isinstance(loaded.class_names, tuple) and isinstance(loaded.report.skipped, tuple)
    assert Dataset.from_dict(json.loads(json.dumps(ds.to_dict()))) == ds


def test_bad_manifests(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_manifest(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(InputError, match="Cannot read dataset manifest"):
        load_manifest(tmp_path / "x.json")
    with pytest.raises(InputError, match="Not a transfer-automl dataset manifest"):
        Dataset.from_dict({"format": "other"})
    with pytest.raises(InputError, match="version 99"):
        Dataset.from_dict({"format": "transfer-automl-dataset", "version": 99})
    with pytest.raises(InputError, match="malformed"):
        Dataset.from_dict({"format": "transfer-automl-dataset", "version": 1, "train": {}})


def test_report_is_json_and_summarised(flat, work):
    (flat / "b" / "x.jpg").write_text("nope")
    report = load_dataset(flat, workdir=work).report
    assert isinstance(report, DataReport)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["skipped"] == [{"path": "b/x.jpg", "reason": "not an image (content not recognised)"}]
    text = report.summary()
    assert "30 images in 3 classes" in text and "1 files skipped" in text and "b/x.jpg" in text


def test_dataset_passes_through_unchanged(flat, work):
    ds = load_dataset(flat, workdir=work)
    assert load_dataset(ds) is ds


def test_split_is_frozen():
    split = Split(("a", "b"), [0, 1])
    assert len(split) == 2 and split.labels.dtype == np.int64
    with pytest.raises(ValueError):
        split.labels[0] = 5
    with pytest.raises(ValueError, match="2 paths but 1 labels"):
        Split(("a", "b"), [0])
    assert Split.empty() == Split((), [])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"val_fraction": 0}, r"val_fraction must be a number in \(0, 1\); got 0"),
        ({"val_fraction": 1.5}, "val_fraction"),
        ({"val_fraction": "0.2"}, "val_fraction"),
        ({"test_fraction": -0.1}, r"test_fraction must be a number in \[0, 1\)"),
        ({"test_fraction": True}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "below 1"),
        ({"seed": -1}, "seed must be an integer >= 0; got -1"),
        ({"seed": 1.5}, "seed"),
        ({"workdir": 5}, "workdir must be None or a folder path; got int"),
        ({"max_zip_bytes": 0}, "max_zip_bytes must be an integer > 0"),
        ({"max_zip_entries": None}, "max_zip_entries"),
    ],
)
def test_parameter_validation(flat, kwargs, match):
    with pytest.raises(InputError, match=match):
        load_dataset(flat, **kwargs)


def test_bad_source_type():
    with pytest.raises(InputError, match="source must be .* got int"):
        load_dataset(42)


def test_test_fraction_zero(flat, work):
    ds = load_dataset(flat, workdir=work, test_fraction=0.0)
    assert len(ds.test) == 0 and len(ds.val) == 6


def test_default_workdir_respects_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_workdir() == tmp_path / "transfer-automl" / "datasets"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_workdir() == tmp_path / "home" / ".cache" / "transfer-automl" / "datasets"


def test_import_stays_light():
    code = "import sys, transfer_automl.data; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
