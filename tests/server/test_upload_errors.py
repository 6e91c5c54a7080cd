"""Hostile uploads through a real server: a huge image is refused on its header without the
web process decoding it, a drive-like folder name is relative on POSIX, and no error ever
shows a server path."""

from __future__ import annotations

import re
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


def _one_class(folder: Path) -> dict[str, bytes]:
    return image_entries(folder / "red", prefix="only-red/red")


BAD_UPLOADS = {
    "file then folder of that name": lambda f: {"files": [
        ("files", ("ds/a/q", b"png", "image/png")), ("files", ("ds/a/q/1.png", b"png", "image/png"))]},
    "one file twice": lambda f: {"files": [
        ("files", ("ds/a/1.png", b"png", "image/png")), ("files", ("ds/a/1.png", b"png", "image/png"))]},
    "one class": lambda f: {"files": [("files", (n, d, "image/png"))
                                      for n, d in _one_class(f).items()]},
    "no images": lambda f: {"files": [("files", (f"ds/{c}/{i}.txt", b"text", "text/plain"))
                                      for c in "ab" for i in range(2)]},
    "zip of one class": lambda f: {"files": {"archive": ("one.zip", zip_bytes(_one_class(f)))}},
    "zip without images": lambda f: {"files": {"archive": ("txt.zip", zip_bytes(
        {f"ds/{c}/{i}.txt": b"text" for c in "ab" for i in range(2)}))}},
    "not a zip": lambda f: {"files": {"archive": ("broken.zip", b"PK\3\4 not really a zip")}},
    "zip-slip": lambda f: {"files": {"archive": ("slip.zip", zip_bytes(
        {**image_entries(f), "../evil.png": b"x"}))}},
    "zip file and folder": lambda f: {"files": {"archive": ("clash.zip", zip_bytes(
        {**image_entries(f), "colours/red/x": b"x", "colours/red/x/1.png": b"x"}))}},
}


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_upload_errors_name_no_server_path(server, alice, folder, case):
    response = alice.post("/api/datasets", **BAD_UPLOADS[case](folder))
    assert 400 <= response.status_code < 500, response.text
    body = response.text
    for path in {str(server.data_dir), str(server.data_dir.resolve()), str(Path.cwd())}:
        assert path not in body
    for internal in (".incoming", "upload.zip", "/work/", "work/zip-", "files/"):
        assert internal not in body, body
    assert not re.search(r"(?<![\w.])/(?:[\w.@-]+/)+", body), body


def test_upload_errors_speak_of_the_uploads_own_names(alice, folder):
    detail = alice.post("/api/datasets", **BAD_UPLOADS["file then folder of that name"](folder))
    assert "'ds/a/q/1.png'" in detail.json()["detail"]
    detail = alice.post("/api/datasets", **BAD_UPLOADS["no images"](folder)).json()["detail"]
    assert detail.startswith("No usable images in ds: all 4 files were skipped")
    detail = alice.post("/api/datasets", **BAD_UPLOADS["zip of one class"](folder)).json()
    assert "in only-red" in detail["detail"]
    detail = alice.post("/api/datasets", **BAD_UPLOADS["not a zip"](folder)).json()["detail"]
    assert detail.startswith("'broken.zip' is not a readable zip archive")


def test_jobs_and_datasets_shown_to_clients_hide_server_paths(tmp_path):
    from transfer_automl.server.redact import HIDDEN, PathHider, server_paths

    data = tmp_path / "srv"
    hide = PathHider(server_paths(data, tmp_path / "cache"))
    job = {"error": f"Dataset path {data}/datasets/x/files does not exist; check the path "
                    f"(relative to {Path.cwd()}).",
           "result": {"leaderboard": [{"reason": f"cannot load {tmp_path}/cache/b/w.h5"}]},
           "params": {"n": 1, "space": "quick"}, "name": "x/srv/y"}
    shown = hide(job)
    assert str(tmp_path) not in str(shown) and str(Path.cwd()) not in str(shown)
    assert shown["error"] == (f"Dataset path {HIDDEN} does not exist; check the path "
                              f"(relative to {HIDDEN}).")
    assert shown["result"]["leaderboard"][0]["reason"] == f"cannot load {HIDDEN}"
    assert shown["params"] == job["params"] and shown["name"] == "x/srv/y"


def test_everything_under_the_data_dir_is_owner_only(server, alice, folder):
    """Files 0600 and folders 0700: uploads (both forms), their extraction and validation
    cache, jobs, the knowledge base."""
    assert alice.post("/api/datasets", files={"archive": (
        "modes.zip", zip_bytes(image_entries(folder)))}).status_code == 201
    ds = alice.post("/api/datasets", files=_folder_files(folder))
    assert ds.status_code == 201, ds.text
    job = alice.post("/api/jobs", json={"dataset_id": ds.json()["id"]}).json()
    alice.post(f"/api/jobs/{job['id']}/cancel")
    loose = []
    for path in [server.data_dir, *server.data_dir.rglob("*")]:
        mode = path.lstat().st_mode
        if mode & 0o077:
            loose.append(f"{path.relative_to(server.data_dir)}: {oct(mode & 0o777)}")
    assert not loose, loose
    assert any(p.name == "kb.sqlite" for p in server.data_dir.iterdir())
