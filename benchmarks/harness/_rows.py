"""Resumable result rows: one CSV per benchmark, appended as units finish, under a file lock."""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
from pathlib import Path
from typing import Callable, Hashable, Iterable, Iterator, Sequence


class ResultRows:
    """A CSV of result rows with a fixed column order, shared by every shard of a job.

    A unit of work (a search, a dataset) appends all its rows at once when it finishes, so a
    killed process loses only its unfinished unit; :meth:`done` tells a restarted one which
    units to skip. Hold :meth:`locked` around read-then-append so two shards never clash.

    Args:
        path: the CSV file (created with a header on the first append).
        fields: its columns, in order; extra keys of a row are dropped, missing ones empty.
    """

    def __init__(self, path: Path, fields: Sequence[str]) -> None:
        self.path = Path(path)
        self.fields = tuple(fields)

    def read(self) -> list[dict]:
        """Every row so far, as strings (empty list when there is no file yet)."""
        if not self.path.exists():
            return []
        with self.path.open(newline="") as f:
            return list(csv.DictReader(f))

    def done(self, key: Callable[[dict], Hashable]) -> set:
        """The keys of the units already in the file, ``key`` applied to each row."""
        return {key(row) for row in self.read()}

    def append(self, rows: Iterable[dict]) -> None:
        """Append ``rows``; a file written with other columns is first rewritten with these
        (its rows' new columns left empty)."""
        rows = list(rows)
        if self.path.exists():
            with self.path.open(newline="") as f:
                header = tuple(next(csv.reader(f), ()))
            if header != self.fields:
                old = self.read()
                self.path.unlink()
                self.append(old)
        new = not self.path.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerows({k: row.get(k) for k in self.fields} for row in rows)

    def set_aside(self) -> Path | None:
        """Move an existing file to ``NAME.bak`` (for ``--no-resume``); the backup's path."""
        if not self.path.exists():
            return None
        backup = self.path.with_name(self.path.name + ".bak")
        self.path.replace(backup)
        return backup

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """An exclusive lock shared by every process writing this file and its report."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def shard(value: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``1 <= i <= n`` (an argparse type)."""
    try:
        i, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n, e.g. 1/2, got {value!r}") from None
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"expected 1 <= i <= n, got {value!r}")
    return i, n
