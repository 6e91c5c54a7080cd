"""Turning a received upload into a stored dataset: validated by the same ingestion code as
the CLI (:func:`transfer_automl.data.load_dataset`), with its data report."""

from __future__ import annotations

import shutil
import stat
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any

from PIL import Image

from transfer_automl.data import DataReport, load_dataset
from transfer_automl.errors import InputError, UploadError
from transfer_automl.server.config import Limits, ServerConfig
from transfer_automl.server.files import tree_bytes
from transfer_automl.server.redact import in_upload_names
from transfer_automl.server.uploads import CONTROL_CHARACTERS, Received

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


@contextmanager
def _header_only() -> Iterator[None]:
    """Let ``Image.open`` read any header: the size is compared with the server's limit here,
    not by Pillow's own (warning-only below twice its limit)."""
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _image_size(fh: IO[bytes]) -> tuple[int, int] | None:
    """The declared size of an image from its header (nothing is decoded); None when the
    file is no image Pillow recognises (ingestion then skips it with its reason)."""
    try:
        with Image.open(fh) as img:
            return img.size
    except Exception:  # any unreadable file: ingestion reports it
        return None


def _files_of(received: Received, limits: Limits) -> Iterator[tuple[str, IO[bytes]]]:
    """``(name as the client gave it, open file)`` of every file of an upload."""
    if received.kind == "folder":
        for path in sorted(received.folder.rglob("*")):
            if path.is_file() and not path.is_symlink():
                with open(path, "rb") as fh:
                    yield path.relative_to(received.folder).as_posix(), fh
        return
    try:
        with zipfile.ZipFile(received.archive) as zf:
            infos = zf.infolist()
            if len(infos) > limits.max_files:
                return  # ingestion refuses it, with its message
            for info in infos:
                if CONTROL_CHARACTERS.search(info.filename):
                    raise UploadError(400, f"zip entry {info.filename!r} holds a control "
                                           "character; rename it and zip the folder again")
                if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                    continue
                try:
                    with zf.open(info) as fh:
                        yield info.filename, fh
                except (RuntimeError, NotImplementedError, zipfile.BadZipFile, OSError):
                    continue  # encrypted or broken: ingestion says so
    except (zipfile.BadZipFile, OSError, EOFError):
        return  # not a readable zip: ingestion says so


def check_images(received: Received, limits: Limits) -> None:
    """Refuse an upload holding an image larger than ``limits.max_image_pixels``, judged on
    each file's header before anything is decoded.

    Raises:
        UploadError: 400 naming the first such image by its name in the upload, or a zip
            entry whose name holds a control character.
    """
    limit = limits.max_image_pixels
    with _header_only():
        for name, fh in _files_of(received, limits):
            size = _image_size(fh)
            if size is not None and size[0] * size[1] > limit:
                raise UploadError(
                    400, f"image {name!r} is {size[0]}x{size[1]} = {size[0] * size[1]} pixels, "
                         f"more than this server's limit of {limit} pixels per image "
                         "(--max-image-pixels); downscale it or leave it out")


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
    """Check an upload and move it to its final folder. This decodes every image: the server
    runs it in a checker process (:mod:`transfer_automl.server.checks`), never in the web
    process.

    Returns:
        ``(name, path, report)``: the dataset's name, the path ingestion reads (relative to
        the data directory) and its report, with ``stored_bytes``: what the dataset takes
        on disk (upload, extraction, converted copies), counted in the user's quota.

    Raises:
        UploadError: 400 with ingestion's message (in the upload's own names, see
            :func:`~transfer_automl.server.redact.in_upload_names`) when the dataset is
            unusable; the received files are then deleted.
    """
    root = incoming_dir(config, dataset_id)
    source = source_of(received)
    name = display_name(received, source)
    try:
        check_images(received, config.limits)
        dataset = load(source, root / "work", config.limits)
    except InputError as exc:
        shutil.rmtree(root, ignore_errors=True)
        raise UploadError(400, in_upload_names(str(exc), root, received.archive_name)) from None
    final = config.datasets_dir() / dataset_id
    root.rename(final)
    rel = (final / source.relative_to(root)).relative_to(config.data_dir)
    return name, str(rel), {**describe(dataset, name), "stored_bytes": tree_bytes(final)}
