"""Receiving a dataset upload: a streamed multipart body written straight into the data
directory, with every limit enforced while the bytes arrive.

Two forms are accepted in one ``multipart/form-data`` request:

* ``archive``: one ``.zip`` of a dataset folder;
* ``files``: the files of a folder, each part's file name being its path relative to the
  folder (what a browser's folder picker gives as ``webkitRelativePath``).

An optional ``name`` field names the dataset. Part headers are read as UTF-8, as browsers
send them (RFC 7578), and ``filename*=UTF-8''...`` (RFC 5987) is understood too, so non-ASCII
names such as ``猫/0.png`` are kept exactly (:func:`part_names`). A client file name is never
used as a path before :func:`safe_relative_path` has checked it; files are created exclusively
(never overwriting, never following a link), so nothing can be written outside the upload
folder.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import unquote

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from transfer_automl.errors import UploadError
from transfer_automl.server.config import Limits
from transfer_automl.server.files import create_private

log = logging.getLogger(__name__)

MAX_DEPTH = 16
MAX_PART_NAME = 255
MAX_FIELD_BYTES = 1024
#: C0 controls, DEL and C1 controls: never part of a dataset file name (nor are backslashes).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
# Absolute on some system: a leading slash, or a drive letter alone or before a separator
# ("C:", "C:/x", "C:\x"). "d:s/1.png" is a relative name on POSIX (a folder "d:s"); the
# server runs on POSIX only, so it is kept, as zip ingestion keeps it.
_ABSOLUTE = re.compile(r"^(/|[A-Za-z]:([/\\]|$))")
# One ``; key=value`` header parameter; a quoted value may hold ';' and backslash escapes.
_PARAMETER = re.compile(r';\s*([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')
# An RFC 5987 extended value: charset'language'percent-encoded-text.
_EXTENDED = re.compile(r"^([^']*)'[^']*'(.*)$", re.DOTALL)
_EXTENDED_CHARSETS = ("utf-8", "iso-8859-1")


def safe_relative_path(name: str) -> PurePosixPath:
    """A client-given relative path, checked to stay inside the folder it is written to.

    Refuses absolute paths (``/x``, ``C:``, ``C:/x``), ``..``, backslashes, control
    characters (C0, DEL, C1), empty names and deep or over-long paths (HTTP 400). A name such
    as ``d:s/1.png`` is relative on POSIX and kept.
    """
    if not name or _FORBIDDEN.search(name):
        raise UploadError(400, f"file name {name!r} is empty or holds a backslash or control "
                               "character; send paths with '/' only")
    if _ABSOLUTE.match(name):
        raise UploadError(400, f"file name {name!r} is absolute; send paths relative to the "
                               "dataset folder")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        raise UploadError(400, f"file name {name!r} points outside the dataset folder")
    if len(parts) > MAX_DEPTH or any(len(p.encode()) > MAX_PART_NAME for p in parts):
        raise UploadError(400, f"file name {name!r} is nested deeper than {MAX_DEPTH} folders "
                               f"or has a part longer than {MAX_PART_NAME} bytes")
    return PurePosixPath(*parts)


def _parameters(value: str) -> dict[str, str]:
    """The ``key=value`` parameters of a header value (``type; key=value; key="quoted"``):
    keys lower-cased, quoted values unquoted; the first of a repeated key counts."""
    params: dict[str, str] = {}
    for key, raw in _PARAMETER.findall(value):
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = re.sub(r'\\([\\"])', r"\1", raw[1:-1])
        params.setdefault(key.lower(), raw)
    return params


def _extended_value(value: str) -> str:
    """The text of an RFC 5987 value such as ``UTF-8''caf%C3%A9.png``, else HTTP 400."""
    match = _EXTENDED.match(value)
    charset = match[1].lower() if match else ""
    if charset not in _EXTENDED_CHARSETS:
        raise UploadError(400, f"file name {value!r} is not an RFC 5987 value: send "
                               "filename*=UTF-8''<percent-encoded UTF-8 name>")
    try:
        return unquote(match[2], encoding=charset, errors="strict")
    except UnicodeDecodeError:
        raise UploadError(400, f"file name {value!r} does not percent-encode valid UTF-8") \
            from None


def part_names(disposition: bytes) -> tuple[str, str | None]:
    """The field name and file name (None for a plain field) of a part's raw
    ``Content-Disposition`` header.

    The header is decoded once, as UTF-8: browsers put a file's name there as raw UTF-8
    (``filename="猫/0.png"``). An RFC 5987 ``filename*=UTF-8''%E7%8C%AB...`` wins over a
    plain ``filename`` (its usual ASCII fallback).

    Raises:
        UploadError: 400 when the header is not UTF-8 or ``filename*`` cannot be decoded.
    """
    try:
        text = disposition.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadError(400, f"part header {disposition[:200]!r} is not UTF-8; send file "
                               "names as UTF-8") from None
    params = _parameters(text)
    if "filename*" in params:
        return params.get("name", ""), _extended_value(params["filename*"])
    return params.get("name", ""), params.get("filename")


@dataclass
class Received:
    """What an upload request brought in."""

    kind: str = ""  # "zip" or "folder"
    name: str = ""
    archive_name: str = ""  # the client's name of the zip, for display only
    n_files: int = 0
    archive: Path | None = None
    folder: Path | None = None
    top_names: set[str] = field(default_factory=set)


class _Receiver:
    """python-multipart callbacks that write each part where it belongs."""

    def __init__(self, root: Path, limits: Limits) -> None:
        self.root, self.limits = root, limits
        self.got = Received()
        self._headers: dict[str, bytes] = {}  # raw values, decoded by whoever reads them
        self._field, self._value = b"", b""
        self._part: tuple[str, str | None] = ("", None)
        self._out: BinaryIO | None = None
        self._buffer = bytearray()
        self.complete = False

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_value, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done, "on_part_data": self._data,
                "on_part_end": self._end, "on_end": self._body_end}

    def _body_end(self) -> None:
        self.complete = True  # the closing boundary ``--BOUNDARY--`` was read

    def _begin(self) -> None:
        self._headers, self._buffer = {}, bytearray()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._field.decode("latin-1").lower()] = bytes(self._value)
        self._field, self._value = b"", b""

    def _headers_done(self) -> None:
        name, filename = part_names(self._headers.get("content-disposition", b""))
        self._part = (name, filename)
        if filename is not None:
            self._out = self._open_file(name, filename)

    def _open_file(self, field_name: str, filename: str) -> BinaryIO:
        got = self.got
        if field_name == "archive":
            if got.kind:
                raise UploadError(400, "send either one 'archive' (.zip) or folder 'files', "
                                       "not both and not two archives")
            got.kind, got.archive = "zip", self.root / "upload.zip"
            got.archive_name = PurePosixPath(filename.replace("\\", "/")).name[:255]
            return create_private(got.archive)
        if field_name != "files":
            raise UploadError(400, f"unexpected file field {field_name!r}; use 'archive' for a "
                                   ".zip or 'files' for the files of a folder")
        if got.kind == "zip":
            raise UploadError(400, "send either one 'archive' (.zip) or folder 'files', not both")
        got.kind, got.folder = "folder", self.root / "files"
        got.n_files += 1
        if got.n_files > self.limits.max_files:
            raise UploadError(400, f"more than {self.limits.max_files} files in one upload; "
                                   "raise --max-files or upload a .zip")
        rel = safe_relative_path(filename)
        got.top_names.add(rel.parts[0])
        target = got.folder.joinpath(*rel.parts)
        try:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            return create_private(target)
        except (FileExistsError, IsADirectoryError, NotADirectoryError):
            raise UploadError(400, f"file name {filename!r} appears twice or clashes with a "
                                   "file or folder of the same name") from None
        except OSError as exc:  # said without the server's path
            raise UploadError(400, f"file name {filename!r} cannot be stored "
                                   f"({exc.strerror or type(exc).__name__})") from None

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._out is not None:
            self._out.write(data[start:end])
            return
        self._buffer += data[start:end]
        if len(self._buffer) > MAX_FIELD_BYTES:
            raise UploadError(400, f"form field {self._part[0]!r} is longer than "
                                   f"{MAX_FIELD_BYTES} bytes")

    def _end(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
        elif self._part[0] == "name":
            self.got.name = self._buffer.decode("utf-8", "replace").strip()[:255]

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


async def receive_upload(content_type: str, content_length: str | None,
                         body: AsyncIterator[bytes], root: Path, limits: Limits) -> Received:
    """Stream a multipart upload into ``root`` (``upload.zip`` or ``files/...``).

    Raises:
        UploadError: 413 when the body is larger than ``limits.max_upload_bytes`` (checked on
            the declared length first, then on the bytes received), 400 for anything
            malformed, an unsafe file name, too many files or an empty upload.
    """
    kind, options = parse_options_header(content_type)
    if kind != b"multipart/form-data" or not options.get(b"boundary"):
        raise UploadError(400, "send the dataset as multipart/form-data with an 'archive' "
                               "(.zip) or 'files' parts")
    limit = limits.max_upload_bytes
    if content_length and content_length.isdigit() and int(content_length) > limit:
        raise UploadError(413, f"upload of {int(content_length)} bytes is larger than the "
                               f"limit of {limit} bytes (--max-upload-mb)")
    root.mkdir(mode=0o700, parents=True)
    receiver = _Receiver(root, limits)
    parser = MultipartParser(options[b"boundary"], receiver.callbacks())
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > limit:
                raise UploadError(413, f"upload is larger than the limit of {limit} bytes "
                                       "(--max-upload-mb)")
            parser.write(chunk)
        parser.finalize()
    except UploadError:
        raise
    except FormParserError as exc:  # its messages hold offsets, never paths
        raise UploadError(400, f"malformed multipart body ({exc})") from None
    except OSError as exc:  # a write failed (disk full): said without the server's path
        log.error("upload into %s failed: %s", root, exc)
        raise UploadError(507, "the server could not store the upload "
                               f"({exc.strerror or type(exc).__name__})") from None
    finally:
        receiver.close()
    if not receiver.complete:
        raise UploadError(400, "the multipart body ends without its closing boundary "
                               "('--BOUNDARY--'): the upload was cut short; send it again")
    if not receiver.got.kind:
        raise UploadError(400, "the upload holds no files: send an 'archive' (.zip) or the "
                               "'files' of a folder")
    return receiver.got
