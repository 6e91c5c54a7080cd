"""``load_dataset``: from a folder, a zip or arrays to a validated :class:`Dataset`."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import numbers
import os
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Union

import numpy as np

from transfer_automl.data._archive import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES, extract_zip, file_sha256
from transfer_automl.data._arrays import arrays_to_folder, validate_arrays
from transfer_automl.data._dataset import DataReport, Dataset, SkippedFile, Split
from transfer_automl.data._images import ImageInfo, UnusableImage, process_file
from transfer_automl.data._scan import Candidate, ScanResult, scan_folder
from transfer_automl.data._split import stratified_split
from transfer_automl.errors import InputError
from transfer_automl.paths import default_cache_dir

logger = logging.getLogger("transfer_automl.data")

Source = Union[str, os.PathLike, tuple, Dataset]


def default_workdir() -> Path:
    """The dataset cache: ``datasets`` under the cache root (:mod:`transfer_automl.paths`)."""
    return default_cache_dir() / "datasets"


def _check_number(name: str, value: object, kind: type, ok: bool, expected: str) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or not ok:
        raise InputError(f"{name} must be {expected}; got {value!r}.")


def _validate_params(val_fraction, test_fraction, seed, workdir, max_zip_bytes, max_zip_entries) -> None:
    real, integral = numbers.Real, numbers.Integral
    _check_number("val_fraction", val_fraction, real,
                  isinstance(val_fraction, real) and 0 < val_fraction < 1, "a number in (0, 1)")
    _check_number("test_fraction", test_fraction, real,
                  isinstance(test_fraction, real) and 0 <= test_fraction < 1, "a number in [0, 1)")
    if val_fraction + test_fraction >= 1:
        raise InputError(
            "val_fraction + test_fraction must be below 1 so training keeps images; "
            f"got {val_fraction!r} + {test_fraction!r}."
        )
    _check_number("seed", seed, integral, isinstance(seed, integral) and seed >= 0, "an integer >= 0")
    for name, value in (("max_zip_bytes", max_zip_bytes), ("max_zip_entries", max_zip_entries)):
        _check_number(name, value, integral, isinstance(value, integral) and value > 0, "an integer > 0")
    if workdir is not None and not isinstance(workdir, (str, os.PathLike)):
        raise InputError(f"workdir must be None or a folder path; got {type(workdir).__name__}.")


def load_dataset(
    source: Source,
    *,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    workdir: str | os.PathLike | None = None,
    max_zip_bytes: int = DEFAULT_MAX_BYTES,
    max_zip_entries: int = DEFAULT_MAX_ENTRIES,
) -> Dataset:
    """Load, check and split an image classification dataset.

    Args:
        source: A folder (one sub-folder per class, or ``train/`` [``val/``|``validation/``]
            [``test/``] each holding class sub-folders), a ``.zip`` of such a folder, a tuple
            ``(x, y)`` of NumPy arrays, or a :class:`Dataset` (returned unchanged).
        val_fraction: Share of each class held out for validation when no ``val/`` is given.
        test_fraction: Share of each class held out for test when splits are not given.
        seed: Seed of the stratified split.
        workdir: Cache folder for extracted zips, array images and converted copies; default
            :func:`default_workdir`. Repeated loads of the same content reuse it.
        max_zip_bytes: Refuse zips that extract to more bytes than this.
        max_zip_entries: Refuse zips with more entries than this.

    Returns:
        The :class:`Dataset`; unusable files are listed in ``dataset.report.skipped``.

    Raises:
        InputError: Bad parameters or unusable input, with a one-line reason and fix.
    """
    if isinstance(source, Dataset):
        return source
    _validate_params(val_fraction, test_fraction, seed, workdir, max_zip_bytes, max_zip_entries)
    is_arrays = isinstance(source, (tuple, list)) and len(source) == 2
    if not is_arrays and not isinstance(source, (str, os.PathLike)):
        raise InputError(
            "source must be a folder or .zip path, a tuple (x, y) of arrays or a Dataset; "
            f"got {type(source).__name__}."
        )
    work = Path(workdir).expanduser() if workdir is not None else default_workdir()
    work.mkdir(parents=True, exist_ok=True)
    if is_arrays:
        images, names = validate_arrays(*source)
        root = arrays_to_folder(images, names, work)
        label = f"arrays x{tuple(np.shape(source[0]))} {np.asarray(source[0]).dtype}"
    else:
        root = _resolve_path(Path(source), work, max_zip_bytes, max_zip_entries)
        label = str(Path(source).expanduser().absolute())
    return _load_folder(root, label, val_fraction, test_fraction, seed, work)


def _resolve_path(path: Path, work: Path, max_bytes: int, max_entries: int) -> Path:
    path = path.expanduser()
    if not path.exists():
        raise InputError(f"Dataset path {path} does not exist; check the path (relative to {Path.cwd()}).")
    if path.is_dir():
        return path
    if zipfile.is_zipfile(path):
        return extract_zip(path, work, max_bytes=max_bytes, max_entries=max_entries)
    if path.suffix.lower() == ".zip":
        raise InputError(f"{path} is not a readable zip archive; re-create or re-download it.")
    raise InputError(
        f"Dataset path {path} is a file but not a zip archive; pass a folder of class "
        "sub-folders or a .zip of one."
    )


def _fingerprint(candidates: list[Candidate]) -> str:
    """SHA-256 over every candidate's relative path, size, content hash, given split and class."""

    def describe(cand: Candidate) -> str:
        try:
            size, sha = cand.path.stat().st_size, file_sha256(cand.path)
        except OSError:  # unreadable: the decode step skips and reports it
            size, sha = -1, "unreadable"
        return f"{cand.rel}\0{size}\0{sha}\0{cand.split}\0{cand.class_name}\n"

    with ThreadPoolExecutor() as pool:
        lines = sorted(pool.map(describe, candidates))
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _split_fingerprint(content: str, rels: dict[str, str], names: tuple[str, ...],
                       *splits: Split) -> str:
    """The dataset fingerprint: file contents and labels, plus which split holds each file.

    Split membership is included so that caches keyed by the fingerprint (e.g. backbone
    features per split) never mix two different splits of the same folder.
    """
    digest = hashlib.sha256(f"{content}\n{names!r}\n".encode())
    for name, split in zip(("train", "val", "test"), splits):
        for rel, label in sorted((rels[p], int(y)) for p, y in zip(split.paths, split.labels)):
            digest.update(f"{name}\0{rel}\0{label}\n".encode())
    return digest.hexdigest()


def _load_folder(root: Path, label: str, val_fraction: float, test_fraction: float,
                 seed: int, work: Path) -> Dataset:
    scan = scan_folder(root)
    if not scan.candidates:
        raise InputError(
            f"No images found in {scan.root}; expected one sub-folder per class (e.g. "
            f"{scan.root / 'cats'}/*.jpg) or train/, val/, test/ folders holding class sub-folders."
        )
    fingerprint = _fingerprint(scan.candidates)
    cache_dir = work / fingerprint[:16]
    cache_file = cache_dir / f"dataset-v{val_fraction:g}-t{test_fraction:g}-s{seed}.json"
    cached = _from_cache(cache_file, scan, label, fingerprint)
    if cached is not None:
        logger.info("Reusing cached dataset %s", cache_file)
        return cached
    dataset = _build(scan, label, val_fraction, test_fraction, seed, cache_dir / "converted", fingerprint)
    dataset.save_manifest(cache_file)
    logger.info("Dataset: %s", dataset.report.summary())
    if dataset.report.skipped:
        logger.warning("%d files skipped; see Dataset.report.skipped", len(dataset.report.skipped))
    return dataset


def _from_cache(cache_file: Path, scan: ScanResult, label: str, content: str) -> Dataset | None:
    """A cached dataset of the same content and root, with this scan's ignore counts.

    ``content`` is the content fingerprint the cache file's folder is named after.
    """
    if not cache_file.exists():
        return None
    try:
        dataset = Dataset.load_manifest(cache_file)
    except InputError:
        return None
    paths = (*dataset.train.paths, *dataset.val.paths, *dataset.test.paths)
    if dataset.root != str(scan.root) or not all(os.path.exists(p) for p in paths):
        return None
    rels = {c.rel for c in scan.candidates}
    skipped = tuple(SkippedFile(*s) for s in scan.skipped)
    skipped += tuple(s for s in dataset.report.skipped if s.path in rels)
    report = dataclasses.replace(dataset.report, source=label, skipped=skipped, ignored=scan.ignored)
    return dataclasses.replace(dataset, report=report, content_fingerprint=content)


def _decode_all(scan: ScanResult, converted_dir: Path) -> list[tuple[Candidate, ImageInfo | str]]:
    """Decode every candidate in a thread pool; an unusable file yields its reason instead."""

    def one(cand: Candidate) -> tuple[Candidate, ImageInfo | str]:
        try:
            return cand, process_file(cand.path, converted_dir / f"{cand.rel}.png")
        except UnusableImage as exc:
            return cand, str(exc)
        except OSError as exc:  # e.g. permission denied: skip and report, never crash the run
            return cand, f"unreadable file ({exc.strerror or exc})"

    with ThreadPoolExecutor() as pool:
        return list(pool.map(one, scan.candidates))


def _check_classes(scan: ScanResult, usable: list[tuple[Candidate, ImageInfo]],
                   skipped: list[SkippedFile]) -> tuple[str, ...]:
    """Sorted class names, after the checks every dataset must pass."""
    root = scan.root
    if not usable:
        first = f" (e.g. {skipped[0].path}: {skipped[0].reason})" if skipped else ""
        raise InputError(
            f"No usable images in {root}: all {len(scan.candidates)} files were skipped{first}; "
            "add JPEG, PNG, BMP, GIF or WebP images."
        )
    names = tuple(sorted(scan.class_dirs))
    if len(names) < 2:
        hint = (f"; if {names[0]!r} holds the class folders, pass {root / scan.class_dirs[names[0]][0]} "
                "instead" if names and not scan.given_splits else "")
        raise InputError(
            f"Found {len(names)} class{'es' if len(names) != 1 else ''} ({', '.join(names)}) in {root}; "
            f"image classification needs at least 2 class sub-folders with images{hint}."
        )
    counts = {n: 0 for n in names}
    train_counts = {n: 0 for n in names}
    for cand, _ in usable:
        counts[cand.class_name] += 1
        train_counts[cand.class_name] += cand.split in ("", "train")
    small = [f"{n!r} ({c})" for n, c in counts.items() if c < 2]
    if small:
        raise InputError(
            f"Class{'es' if len(small) > 1 else ''} {', '.join(small)} in {root} "
            f"ha{'ve' if len(small) > 1 else 's'} fewer than 2 usable images; add images or "
            "remove the folder (see the skipped files in the report)."
        )
    missing = [n for n, c in train_counts.items() if c == 0]
    if missing:
        raise InputError(
            f"Class{'es' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} ha"
            f"{'ve' if len(missing) > 1 else 's'} no usable images in {root / 'train'}; every "
            "class needs training images (add them to train/<class>/)."
        )
    return names


def _splits(items: list[tuple[str, int, str]], given: bool, val_fraction: float,
            test_fraction: float, seed: int) -> tuple[Split, Split, Split]:
    """Assemble (train, val, test) from ``(path, label, given split)`` items."""

    def pick(rows) -> Split:
        return Split(tuple(r[0] for r in rows), np.array([r[1] for r in rows], np.int64))

    if not given:
        labels = np.array([r[1] for r in items], np.int64)
        idx = stratified_split(labels, val_fraction, test_fraction, seed)
        return tuple(pick([items[i] for i in part]) for part in idx)  # type: ignore[return-value]
    by_split = {s: [r for r in items if r[2] == s] for s in ("train", "val", "test")}
    if by_split["val"]:
        return pick(by_split["train"]), pick(by_split["val"]), pick(by_split["test"])
    train = by_split["train"]
    tr, va, _ = stratified_split(np.array([r[1] for r in train], np.int64), val_fraction, 0.0, seed)
    return pick([train[i] for i in tr]), pick([train[i] for i in va]), pick(by_split["test"])


def _build(scan: ScanResult, label: str, val_fraction: float, test_fraction: float, seed: int,
           converted_dir: Path, fingerprint: str) -> Dataset:
    decoded = _decode_all(scan, converted_dir)
    skipped = [SkippedFile(*s) for s in scan.skipped]
    skipped += [SkippedFile(c.rel, r) for c, r in decoded if isinstance(r, str)]
    usable = [(c, r) for c, r in decoded if isinstance(r, ImageInfo)]
    names = _check_classes(scan, usable, skipped)
    index = {n: i for i, n in enumerate(names)}
    items = [
        (str(converted_dir / f"{c.rel}.png") if info.needs_conversion else str(c.path),
         index[c.class_name], c.split)
        for c, info in usable
    ]
    train, val, test = _splits(items, scan.given_splits, val_fraction, test_fraction, seed)
    rels = {path: c.rel for (path, _, _), (c, _) in zip(items, usable)}
    content = fingerprint
    fingerprint = _split_fingerprint(content, rels, names, train, val, test)
    counts = {n: 0 for n in names}
    for c, _ in usable:
        counts[c.class_name] += 1
    report = DataReport(
        source=label,
        n_images=len(usable),
        n_classes=len(names),
        class_counts=counts,
        given_splits=scan.given_splits,
        skipped=tuple(skipped),
        ignored=scan.ignored,
        converted=sum(info.needs_conversion for _, info in usable),
        mean_size=(round(float(np.mean([i.height for _, i in usable]))),
                   round(float(np.mean([i.width for _, i in usable])))),
        greyscale_share=round(sum(i.greyscale for _, i in usable) / len(usable), 4),
    )
    return Dataset(names, train, val, test, report, fingerprint, str(scan.root), content)
