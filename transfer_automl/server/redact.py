"""Server paths never reach a client: what an error says of an upload uses the upload's own
names, and any other path of the server is replaced by ``<server path>``.

Ingestion's messages name the files it read (``/srv/datasets/.incoming-ID/files/ds/a/q``);
:func:`in_upload_names` turns them back into what the client sent (``ds/a/q``, the zip's
file name). :class:`PathHider` is the net behind it: every error, job and dataset the API
returns goes through it, with the server's data, cache, working and home directories.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HIDDEN = "<server path>"
# What may come before a path in a message (not "x/srv" for "/srv").
_START = r"(?<![^\s'\"(\[=:,])"
# What may follow a directory for it to be that directory (not "/srv2" for "/srv").
_END = r"(?=[/\s'\"),;:]|$)"
# Where a path in a message ends.
_REST = r"[^\s'\"),;]*"


def _forms(path: Path) -> list[str]:
    """A path as given and resolved (a message may show either), longest first."""
    forms = {str(path)}
    try:
        forms.add(str(path.resolve()))
    except OSError:
        pass
    return sorted((f for f in forms if len(f) > 1), key=len, reverse=True)


def in_upload_names(text: str, root: Path, archive_name: str = "") -> str:
    """``text`` with the paths of an upload received into ``root`` in the client's names:
    its files by their relative names, its zip (and the zip's extraction) by
    ``archive_name``, the upload's own folder as ``the upload``."""
    archive = repr(archive_name) if archive_name else "the archive"
    for base in _forms(root):
        b = re.escape(base)
        extracted = b + r"/work/\.?zip-[0-9a-f]+(?:\.\d+\.tmp)?"
        text = re.sub(extracted + "/", "", text)
        text = re.sub(extracted + _END, archive, text)
        text = re.sub(b + "/upload\\.zip" + _END, archive, text)
        text = re.sub(b + "/files/", "", text)
        text = re.sub(b + "(?:/files)?" + _END, "the upload", text)
    return text


def server_paths(*paths: Path | None) -> list[Path]:
    """The directories a client must never see: those given, the working directory and the
    home directory."""
    out = [p for p in paths if p is not None]
    out.append(Path.cwd())
    home = os.path.expanduser("~")
    if home not in ("", "/", "~"):
        out.append(Path(home))
    return out


class PathHider:
    """Replaces every path inside one of ``paths`` by :data:`HIDDEN`, in a string or in every
    string of a JSON-like value (dicts, lists)."""

    def __init__(self, paths: Iterable[Path]) -> None:
        forms = sorted({f for p in paths for f in _forms(p)}, key=len, reverse=True)
        self._pattern = (re.compile(_START + "(?:" + "|".join(map(re.escape, forms)) + ")" + _END + _REST)
                         if forms else None)

    def text(self, text: str) -> str:
        """``text`` without server paths."""
        if self._pattern is None or "/" not in text:
            return text
        return self._pattern.sub(HIDDEN, text)

    def __call__(self, value: Any) -> Any:
        """``value`` with :meth:`text` applied to every string in it."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        return value
