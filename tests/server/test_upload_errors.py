"""Hostile uploads through a real server: a huge image is refused on its header without the
web process decoding it, a drive-like folder name is relative on POSIX, and no error ever
shows a server path."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.conftest import write_colour_folder
from tests.server.conftest import huge_png, image_entries, nothing_left_behind, zip_bytes


@pytest.fixture(scope="module")
def server(secure_server):
    return secure_server


@pytest.fixture(scope="module")
def alice(server):
    with server.client(server.tokens["alice"]) as c:
        yield c


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_colour_folder(tmp_path_factory.mktemp("errs") / "colours", per_class=4, size=16)


def _folder_files(folder: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, data, "image/png"))
            for name, data in image_entries(folder).items()]


def _peak_memory_mb(pid: int) -> float:
    """The most memory process ``pid`` has held so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_huge_image_is_refused_without_the_web_process_decoding_it(server, alice, folder):
    """144 megapixels in 140 KB: refused on its header (limit 50 MP by default), and the web
    process's peak memory does not move (decoding it would take more than 500 MiB)."""
    files = [("files", (f"colours/{p.relative_to(folder).as_posix()}", p.read_bytes(),
                        "image/png")) for p in sorted(folder.rglob("*.png"))]
    files.append(("files", ("colours/red/huge.png", huge_png(), "image/png")))
    before = _peak_memory_mb(server.proc.pid)
    response = alice.post("/api/datasets", files=files)
    assert response.status_code == 400, response.text
    assert "'colours/red/huge.png' is 12000x12000" in response.json()["detail"]
    assert "--max-image-pixels" in response.json()["detail"]
    assert _peak_memory_mb(server.proc.pid) - before < 64
    assert alice.get("/api/me").json()["limits"]["max_image_pixels"] == 50_000_000


def test_a_drive_like_folder_name_is_relative_on_posix(server, alice, folder):
    """``d:s/red/0.png`` is a folder named ``d:s``; ``C:/x`` and ``C:\\x`` stay refused."""
    entries = {f"d:s/{p.relative_to(folder).as_posix()}": p.read_bytes()
               for p in sorted(folder.rglob("*.png"))}
    response = alice.post("/api/datasets", files={"archive": ("drive.zip", zip_bytes(entries))})
    assert response.status_code == 201, response.text
    response = alice.post("/api/datasets", files=[("files", (name, data, "image/png"))
                                                  for name, data in entries.items()])
    assert response.status_code == 201, response.text
    assert response.json()["report"]["class_names"] == ["blue", "green", "red"]
    for evil in ("C:/{m}.png", "C:\\{m}.png"):
        marker = uuid.uuid4().hex
        archive = zip_bytes({**image_entries(folder), evil.format(m=marker): b"owned"})
        response = alice.post("/api/datasets", files={"archive": ("c.zip", archive)})
        assert response.status_code == 400 and "absolute" in response.json()["detail"]
        nothing_left_behind(server, marker)
