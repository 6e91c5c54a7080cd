"""Safe extraction of a dataset zip into the work directory."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import stat
import struct
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from transfer_automl.data._scan import SPLIT_ALIASES, is_ignored
from transfer_automl.errors import InputError

NAME_MAX = 255  # bytes in one path component, on every common file system

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 4 * 2**30
DEFAULT_MAX_ENTRIES = 200_000
_COMPLETE = ".complete"
_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _entry_parts(zip_path: Path, info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The path components of an entry, refusing anything that could land outside the folder."""
    name = info.filename.replace("\\", "/")
    # absolute: a leading slash or a drive ("C:/x", "C:"); "d:s/1.png" is a legal name here
    if name.startswith("/") or re.match(r"[A-Za-z]:(/|$)", name):
        raise InputError(
            f"Zip {zip_path} has an entry with an absolute path {info.filename!r} (zip-slip); "
            "re-create the archive with relative paths."
        )
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise InputError(
            f"Zip {zip_path} has an entry {info.filename!r} that points outside the archive "
            "folder (zip-slip); re-create the archive with relative paths."
        )
    long = [p for p in parts if len(p.encode("utf-8")) > NAME_MAX]
    if long:
        raise InputError(
            f"Zip {zip_path} has an entry whose name part is over {NAME_MAX} bytes "
            f"({long[0][:40]!r}...); file systems refuse such names: shorten it."
        )
    if stat.S_ISLNK(info.external_attr >> 16):
        raise InputError(
            f"Zip {zip_path} contains a symbolic link {info.filename!r}; links are not allowed "
            "in dataset archives: re-create it with the files themselves (zip without -y)."
        )
    return parts


def _check_caps(zip_path: Path, infos: list[zipfile.ZipInfo], max_bytes: int, max_entries: int) -> None:
    if len(infos) > max_entries:
        raise InputError(
            f"Zip {zip_path} has {len(infos)} entries, more than max_zip_entries={max_entries}; "
            "raise max_zip_entries if the archive is genuine."
        )
    total = sum(info.file_size for info in infos)
    if total > max_bytes:
        raise InputError(
            f"Zip {zip_path} would extract to {total} bytes, more than max_zip_bytes={max_bytes}; "
            "raise max_zip_bytes if the archive is genuine."
        )


def _copy_capped(src, dst, budget: int, zip_path: Path, max_bytes: int) -> int:
    """Copy a member, enforcing the size cap on the real bytes (headers can lie)."""
    written = 0
    for chunk in iter(lambda: src.read(_CHUNK), b""):
        written += len(chunk)
        if written > budget:
            raise InputError(
                f"Zip {zip_path} extracts to more than max_zip_bytes={max_bytes} bytes; "
                "raise max_zip_bytes if the archive is genuine."
            )
        dst.write(chunk)
    return written


def _check_layout(zip_path: Path, entries: list[tuple[zipfile.ZipInfo, tuple[str, ...]]]) -> None:
    """Refuse entries that cannot all exist at once: a path that is both a file and a folder
    (``a/x`` and ``a/x/1.png``; ``y/`` and ``y``), or one file given twice."""
    files: dict[tuple[str, ...], str] = {}
    folders: dict[tuple[str, ...], str] = {}
    for info, parts in entries:
        for i in range(1, len(parts)):
            folders.setdefault(parts[:i], info.filename)
        if info.is_dir():
            folders.setdefault(parts, info.filename)
        elif parts in files:
            raise InputError(f"Zip {zip_path} holds {info.filename!r} twice; keep one copy.")
        else:
            files[parts] = info.filename
    for parts, name in files.items():
        if parts in folders:
            raise InputError(
                f"Zip {zip_path} has {name!r} both as a file and as a folder (next to "
                f"{folders[parts]!r}); rename one of them."
            )


def _extract_all(zip_path: Path, zf: zipfile.ZipFile, dest: Path, max_bytes: int) -> None:
    budget = max_bytes
    entries = [(info, parts) for info in zf.infolist()
               if (parts := _entry_parts(zip_path, info))]
    _check_layout(zip_path, entries)
    for info, parts in entries:
        target = dest.joinpath(*parts)
        try:
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                budget -= _copy_capped(src, dst, budget, zip_path, max_bytes)
        except OSError as exc:  # whatever the file system still refuses, said in one line
            raise InputError(f"Zip {zip_path}: cannot extract {info.filename!r} "
                             f"({exc.strerror or type(exc).__name__})") from None


def _open_error(zip_path: Path, exc: Exception) -> InputError:
    if isinstance(exc, RuntimeError) and "encrypted" in str(exc).lower():
        return InputError(f"Zip {zip_path} is password-protected; re-create it without a password.")
    return InputError(
        f"{zip_path} is not a readable zip archive ({exc}); re-create or re-download it."
    )


def extract_zip(zip_path: Path, workdir: Path, *, max_bytes: int, max_entries: int) -> Path:
    """Extract a dataset zip into ``workdir`` (once per content) and return the dataset root.

    Args:
        zip_path: The archive.
        workdir: Extraction happens in ``workdir/zip-<content hash>``; a complete earlier
            extraction is reused.
        max_bytes: Cap on the total uncompressed size.
        max_entries: Cap on the number of entries.

    Returns:
        The extracted folder, or its single top-level folder when the archive has one.

    Raises:
        InputError: Corrupt archive, zip-slip entry, link entry or a cap exceeded.
    """
    dest = workdir / f"zip-{file_sha256(zip_path)[:16]}"
    if not (dest / _COMPLETE).exists():
        tmp = workdir / f".{dest.name}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with zipfile.ZipFile(zip_path) as zf:
                infos = zf.infolist()
                for info in infos:  # validate every entry before writing a single byte
                    _entry_parts(zip_path, info)
                _check_caps(zip_path, infos, max_bytes, max_entries)
                _extract_all(zip_path, zf, tmp, max_bytes)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, EOFError,
                NotImplementedError, zlib.error, struct.error) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _open_error(zip_path, exc) from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / _COMPLETE).touch()
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
        logger.info("Extracted %s to %s", zip_path, dest)
    return _descend(dest)


def _descend(dest: Path) -> Path:
    """Step into the archive's single top-level folder, unless that folder is a split."""
    entries = [p for p in dest.iterdir() if not is_ignored(p.name)]
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name.lower() not in SPLIT_ALIASES:
        return entries[0]
    return dest
