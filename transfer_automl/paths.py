"""The cache root, computed here and nowhere else.

Everything the project caches (converted backbones, features, unpacked datasets, runs, the
default knowledge base) lives under one root: ``$TRANSFER_AUTOML_CACHE`` if set, else
``$XDG_CACHE_HOME/transfer-automl``, else ``~/.cache/transfer-automl``. A bottom module: it
imports nothing else from the project, so every package may use it.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "TRANSFER_AUTOML_CACHE"


def default_cache_dir() -> Path:
    """The cache root when none is given (see the module docstring)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "transfer-automl"


def cache_dir(given: str | os.PathLike | None = None) -> Path:
    """``given`` as a path, or :func:`default_cache_dir`."""
    return Path(given).expanduser() if given is not None else default_cache_dir()
