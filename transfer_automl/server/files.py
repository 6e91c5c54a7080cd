"""Owner-only files: everything the server writes under its data directory is readable by
the server's own user only (files 0600, folders 0700).

The server process, its upload checkers and its job workers run with :data:`UMASK`, so files
created by any library on their behalf (SQLite, Pillow, TensorFlow, zipfile) get owner-only
modes; uploaded files are created with an explicit 0600 as well. At start-up the data
directory and what sits at its top (the knowledge base, possibly created by an earlier
``transfer-automl token create``) are brought to those modes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

UMASK = 0o077
FILE_MODE = 0o600
DIR_MODE = 0o700


def private_umask() -> None:
    """Make files this process (and every child it starts) creates owner-only."""
    os.umask(UMASK)


def create_private(path: Path) -> BinaryIO:
    """Create ``path`` for writing, owner-only; never overwriting a file nor following a
    link (FileExistsError if anything is there)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 FILE_MODE)
    return os.fdopen(fd, "wb")


def tighten(data_dir: Path) -> None:
    """Give ``data_dir`` and the entries directly inside it owner-only modes (entries owned by
    someone else, and links, are left alone)."""
    for path in (data_dir, *data_dir.iterdir()):
        try:
            info = path.lstat()
            if info.st_uid != os.geteuid() or stat.S_ISLNK(info.st_mode):
                continue
            mode = DIR_MODE if stat.S_ISDIR(info.st_mode) else FILE_MODE
            if stat.S_IMODE(info.st_mode) & ~mode:
                os.chmod(path, stat.S_IMODE(info.st_mode) & mode)
        except OSError:
            continue


def tree_bytes(root: Path) -> int:
    """Bytes of the files under ``root`` (links not followed)."""
    total = 0
    for folder, _, names in os.walk(root):
        for name in names:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                continue
    return total
