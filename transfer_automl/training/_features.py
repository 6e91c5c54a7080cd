"""A content-keyed, size-bounded, process-safe cache of backbone outputs.

For a frozen backbone the forward pass is the whole cost of a trial and is the same for every
trial at one resolution; computing it once turns head trials into seconds. Entries are keyed
by the dataset's content fingerprint, the backbone's identity, the resolution and the freeze
boundary, so a changed image or backbone never serves stale features. An entry holds one row
per image, not per split: another split seed of the same folder reuses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
_FORMAT = 2  # bump when the pipeline (decode, resize, pooling) or the entry layout changes


class FeatureCache:
    """Backbone outputs per (dataset, backbone, resolution, unfrozen blocks).

    Args:
        root: cache directory (shared by processes; any number of readers and writers).
        max_bytes: total size above which least recently used entries are evicted.
    """

    def __init__(self, root: str | os.PathLike, max_bytes: int = 8 << 30) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def key(self, dataset_fp: str, backbone_key: str, resolution: int, unfrozen: int) -> str:
        text = json.dumps([_FORMAT, dataset_fp, backbone_key, resolution, unfrozen])
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def get_or_compute(self, key: str, compute,
                       index: list[str] | None = None) -> tuple[dict[str, np.ndarray], bool]:
        """Return the cached arrays for ``key``, computing them with ``compute()`` if absent.

        ``compute`` returns ``{name: array}``. ``index`` optionally names the rows of every
        array (e.g. image paths, in the order ``compute`` uses); a stored entry with a
        different index is recomputed, so rows are never served for the wrong images.
        Concurrent callers with the same key wait for the one that computes. Returns the
        arrays and whether they came from the cache.
        """
        entry = self.root / key
        self.root.mkdir(parents=True, exist_ok=True)
        with _locked(self.root / f"{key}.lock"):
            meta = _meta(entry)
            if meta is not None and meta.get("index") == index:
                os.utime(entry / "meta.json")
                return self._read(entry, meta), True
            arrays = compute()
            self._write(entry, arrays, index)
        self._evict(keep=key)
        return arrays, False

    def _read(self, entry: Path, meta: dict) -> dict[str, np.ndarray]:
        return {name: np.load(entry / f"{name}.npy") for name in meta["shapes"]}

    def _write(self, entry: Path, arrays: dict[str, np.ndarray], index: list[str] | None) -> None:
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=".tmp-"))
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        (tmp / "meta.json").write_text(json.dumps(
            {"shapes": {n: list(a.shape) for n, a in arrays.items()}, "created": time.time(),
             "index": index}))
        if entry.exists():
            shutil.rmtree(entry)
        os.replace(tmp, entry)

    def size(self) -> int:
        """Total bytes of complete entries."""
        return sum(_entry_bytes(e) for e in self._entries())

    def _entries(self) -> list[Path]:
        if not self.root.exists():
            return []
        # Hidden names are other writers' unfinished ".tmp-" directories: never entries.
        return [p for p in self.root.iterdir()
                if p.is_dir() and not p.name.startswith(".") and (p / "meta.json").exists()]

    def _evict(self, keep: str) -> None:
        entries = sorted(self._entries(), key=_last_used)
        total = sum(_entry_bytes(e) for e in entries)
        for entry in entries:
            if total <= self.max_bytes:
                break
            if entry.name == keep:
                continue
            with _locked(self.root / f"{entry.name}.lock"):
                size = _entry_bytes(entry)
                shutil.rmtree(entry, ignore_errors=True)
            total -= size
            log.info("feature cache: evicted %s (%.1f MB)", entry.name, size / 1e6)


def _meta(entry: Path) -> dict | None:
    """A complete entry's metadata, or None when there is no (readable) entry."""
    try:
        return json.loads((entry / "meta.json").read_text())
    except (FileNotFoundError, ValueError):
        return None


def _entry_bytes(entry: Path) -> int:
    # Another process may evict the entry while we look at it: it then counts as empty.
    try:
        return sum(f.stat().st_size for f in entry.iterdir() if f.is_file())
    except FileNotFoundError:
        return 0


def _last_used(entry: Path) -> float:
    try:
        return (entry / "meta.json").stat().st_mtime
    except FileNotFoundError:
        return 0.0


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
