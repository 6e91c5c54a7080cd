"""Client file names are read exactly as sent (UTF-8) and checked before they become paths
(no server needed)."""

from __future__ import annotations

import asyncio
from pathlib import PurePosixPath

import pytest

from transfer_automl.errors import UploadError
from transfer_automl.server.config import Limits
from transfer_automl.server.uploads import part_names, receive_upload, safe_relative_path


@pytest.mark.parametrize("name, expected", [
    ("colours/red/0.png", ("colours", "red", "0.png")),
    ("./a//b/./c.png", ("a", "b", "c.png")),
    (".hidden/x.png", (".hidden", "x.png")),
    ("d:s/a/1.png", ("d:s", "a", "1.png")),  # a folder "d:s" on POSIX, not a drive
    ("c:x.png", ("c:x.png",)),
    ("a/C:/x.png", ("a", "C:", "x.png")),
])
def test_relative_paths_are_kept(name, expected):
    assert safe_relative_path(name) == PurePosixPath(*expected)


@pytest.mark.parametrize("name", [
    "", "/", "/etc/passwd", "../x.png", "a/../../x.png", "a/..", "C:/x.png", "C:", "c:\\x.png",
    "a\\..\\x.png", "a/\0b.png", "a/\nb.png", "a/\x7fb.png", "a/\x85b.png", "./.",
    "/".join(["d"] * 20) + "/x.png",
    "a/" + "n" * 300 + ".png"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(UploadError) as info:
        safe_relative_path(name)
    assert info.value.status == 400 and info.value.detail


@pytest.mark.parametrize("header, expected", [
    ('form-data; name="files"; filename="ds/猫/0.png"', ("files", "ds/猫/0.png")),
    ('form-data; name="files"; filename="ds/café/dögs.png"', ("files", "ds/café/dögs.png")),
    ("form-data; name=\"files\"; filename*=UTF-8''ds%2F%E7%8C%AB%2F0.png",
     ("files", "ds/猫/0.png")),
    ("form-data; name=\"files\"; filename=\"ds/caf?/0.png\"; filename*=utf-8''ds/caf%C3%A9/0.png",
     ("files", "ds/café/0.png")),
    ("form-data; name=archive; filename*=iso-8859-1'fr'caf%E9.zip", ("archive", "café.zip")),
    ('form-data; name="files"; filename="a;b \\"c\\".png"', ("files", 'a;b "c".png')),
    ('form-data; name="name"', ("name", None)),
    ('form-data; name="archive"; filename=""', ("archive", "")),
])
def test_part_names_are_decoded_as_sent(header, expected):
    assert part_names(header.encode()) == expected


@pytest.mark.parametrize("header", [
    b'form-data; name="files"; filename="caf\xe9.png"',  # latin-1, not UTF-8
    b"form-data; name=\"files\"; filename*=UTF-8''caf%E9.png",
    b"form-data; name=\"files\"; filename*=koi8-r''%C3.png",
    b"form-data; name=\"files\"; filename*=caf%C3%A9.png",
])
def test_undecodable_part_names_are_400(header):
    with pytest.raises(UploadError) as info:
        part_names(header)
    assert info.value.status == 400 and "UTF-8" in info.value.detail


async def _body(data: bytes):
    for i in range(0, len(data), 7):  # small chunks: headers split across writes
        yield data[i:i + 7]


def test_utf8_file_names_are_written_as_sent(tmp_path):
    names = ["ds/café/0.png", "ds/dögs/0.png", "ds/猫/0.png"]
    body = b"".join(b'--XyZ\r\nContent-Disposition: form-data; name="files"; filename="'
                    + n.encode() + b'"\r\n\r\npng\r\n' for n in names) + b"--XyZ--\r\n"
    got = asyncio.run(receive_upload("multipart/form-data; boundary=XyZ", str(len(body)),
                                     _body(body), tmp_path / "up", Limits()))
    assert (got.kind, got.n_files, got.top_names) == ("folder", 3, {"ds"})
    written = sorted(p.relative_to(got.folder).as_posix()
                     for p in got.folder.rglob("*") if p.is_file())
    assert written == sorted(names)
    assert all((got.folder / n).read_bytes() == b"png" for n in names)


@pytest.mark.parametrize("ending", [b"", b"\r\n", b"--XyZ\r\n", b"--XyZ"])
def test_a_body_without_its_closing_boundary_is_400(tmp_path, ending):
    body = (b'--XyZ\r\nContent-Disposition: form-data; name="files"; filename="ds/a/0.png"'
            b"\r\n\r\npng\r\n" + ending)
    with pytest.raises(UploadError) as info:
        asyncio.run(receive_upload("multipart/form-data; boundary=XyZ", str(len(body)),
                                   _body(body), tmp_path / "up", Limits()))
    assert info.value.status == 400 and "closing boundary" in info.value.detail


def test_body_guard_passes_lifespan_through():
    """The guard reads headers of HTTP requests only: a lifespan scope has none, and failing
    on it once stopped the app's startup (no job ever ran)."""
    import asyncio

    from transfer_automl.server.guard import BodyGuard

    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    async def receive():
        return {"type": "lifespan.startup"}

    async def send(message):
        pass

    asyncio.run(BodyGuard(app, store=None)({"type": "lifespan"}, receive, send))
    assert seen == ["lifespan"]
