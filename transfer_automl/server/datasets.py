"""Turning a received upload into a stored dataset: validated by the same ingestion code as
the CLI (:func:`transfer_automl.data.load_dataset`), with its data report."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from transfer_automl.data import DataReport, load_dataset
from transfer_automl.errors import InputError
from transfer_automl.server.config import Limits, ServerConfig
from transfer_automl.errors import UploadError
from transfer_automl.server.uploads import Received

_SPLITS = {"train", "val", "valid", "validation", "test"}


def new_id() -> str:
    """A random, URL-safe id for datasets and jobs."""
    return uuid.uuid4().hex[:16]


def incoming_dir(config: ServerConfig, dataset_id: str) -> Path:
    """Where an upload is received before it is validated."""
    return config.datasets_dir() / f".incoming-{dataset_id}"


def source_of(received: Received) -> Path:
    """The path ingestion should read: the zip, or the folder (stepping into the single
    top-level folder a folder picker puts every path under)."""
    if received.kind == "zip":
        return received.archive
    folder = received.folder
    tops = [n for n in received.top_names if not n.startswith(".") and n != "__MACOSX"]
    if len(tops) == 1 and (folder / tops[0]).is_dir() and tops[0].lower() not in _SPLITS:
        return folder / tops[0]
    return folder


def load(source: Path, workdir: Path, limits: Limits, seed: int = 0):
    """Validate a dataset exactly as ``fit_auto`` will (same split seed and work folder)."""
    return load_dataset(source, seed=seed, workdir=workdir,
                        max_zip_bytes=limits.max_unzipped_bytes, max_zip_entries=limits.max_files)


def describe(dataset, name: str) -> dict[str, Any]:
    """The data report shown to the user, without server paths."""
    report = dataset.report.to_dict()
    report["source"] = name
    return {**report, "class_names": list(dataset.class_names),
            "splits": {"train": len(dataset.train), "val": len(dataset.val),
                       "test": len(dataset.test)},
            "summary": DataReport.from_dict(report).summary()}


def display_name(received: Received, source: Path) -> str:
    """The dataset's name: the ``name`` field, else the zip's or the folder's name."""
    if received.name:
        return received.name
    if received.kind == "zip":
        return PurePosixPath(received.archive_name).stem or "dataset"
    return source.name if source != received.folder else "dataset"


def validate_upload(config: ServerConfig, dataset_id: str,
                    received: Received) -> tuple[str, str, dict[str, Any]]:
    """Check an upload and move it to its final folder.

    Returns:
        ``(name, path, report)``: the dataset's name, the path ingestion reads (relative to
        the data directory) and its report.

    Raises:
        UploadError: 400 with ingestion's message (paths shown relative to the upload) when
            the dataset is unusable; the received files are then deleted.
    """
    root = incoming_dir(config, dataset_id)
    source = source_of(received)
    name = display_name(received, source)
    try:
        dataset = load(source, root / "work", config.limits)
    except InputError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise UploadError(400, str(exc).replace(str(root) + "/", "").replace(str(root), ".")) \
            from None
    final = config.datasets_dir() / dataset_id
    root.rename(final)
    rel = (final / source.relative_to(root)).relative_to(config.data_dir)
    return name, str(rel), describe(dataset, name)
