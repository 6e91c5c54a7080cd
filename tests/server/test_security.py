"""Security of the server: tokens (401), per-user isolation (404), upload limits (413, 400)
and hostile archives or file names (400) that never write outside the data directory."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import stat
import uuid
import zipfile

import httpx
import pytest

from tests.conftest import write_colour_folder
from tests.server.conftest import Server, create_token, upload_folder


@pytest.fixture(scope="module")
def server(server_root, cache_root):
    data = server_root / "secure-data"
    data.mkdir()
    srv = Server(data, ["--no-search-kb", "--cache-dir", str(cache_root), "--max-upload-mb",
                        "0.5", "--max-files", "40", "--max-unzipped-mb", "1",
                        "--max-trials", "1", "--space", "quick", "--cv-folds", "0"])
    srv.tokens = {u: create_token(data, u) for u in ("alice", "bob")}
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def alice(server):
    with server.client(server.tokens["alice"]) as c:
        yield c


@pytest.fixture(scope="module")
def bob(server):
    with server.client(server.tokens["bob"]) as c:
        yield c


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_colour_folder(tmp_path_factory.mktemp("small") / "colours", per_class=4, size=16)


def _zip(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buffer.getvalue()


def _image_entries(folder) -> dict[str, bytes]:
    return {f"colours/{p.relative_to(folder).as_posix()}": p.read_bytes()
            for p in sorted(folder.rglob("*.png"))}


def _nothing_left_behind(server: Server, marker: str) -> None:
    """No upload residue in the data directory and no file named ``marker`` anywhere near."""
    datasets = server.data_dir / "datasets"
    if datasets.exists():
        assert not [p.name for p in datasets.iterdir() if p.name.startswith(".incoming")]
    root = server.data_dir.parent.parent
    assert not list(root.rglob(f"*{marker}*"))
    assert not list(server.data_dir.rglob(f"*{marker}*"))


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"},
                                     {"Authorization": "Basic YWxpY2U6eA=="},
                                     {"Authorization": "Bearer"}])
@pytest.mark.parametrize("method, path", [
    ("GET", "/api/me"), ("GET", "/api/datasets"), ("POST", "/api/datasets"),
    ("GET", "/api/jobs"), ("POST", "/api/jobs"), ("GET", "/api/jobs/abc"),
    ("GET", "/api/jobs/abc/events"), ("GET", "/api/jobs/abc/model"),
    ("POST", "/api/jobs/abc/cancel")])
def test_missing_or_wrong_token_is_401(server, headers, method, path):
    response = httpx.request(method, server.url + path, headers=headers, timeout=30)
    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)
    assert response.headers["www-authenticate"] == "Bearer"


def test_tokens_are_stored_hashed(server):
    token = server.tokens["alice"]
    raw = b"".join(p.read_bytes() for p in server.data_dir.glob("kb.sqlite*"))
    assert token.encode() not in raw
    with sqlite3.connect(server.data_dir / "kb.sqlite") as db:
        hashes = {h for (h,) in db.execute("SELECT token_hash FROM server_tokens")}
    assert hashlib.sha256(token.encode()).hexdigest() in hashes


def test_users_see_and_touch_only_their_own(server, alice, bob, folder):
    ds = upload_folder(alice, folder)
    assert ds.status_code == 201, ds.text
    ds = ds.json()
    job = alice.post("/api/jobs", json={"dataset_id": ds["id"]}).json()
    assert alice.post(f"/api/jobs/{job['id']}/cancel").json()["status"] == "cancelled"

    assert bob.get("/api/datasets").json() == [] and bob.get("/api/jobs").json() == []
    assert bob.get(f"/api/datasets/{ds['id']}").status_code == 404
    assert bob.post("/api/jobs", json={"dataset_id": ds["id"]}).status_code == 404
    for suffix in ("", "/events", "/leaderboard", "/group", "/model"):
        response = bob.get(f"/api/jobs/{job['id']}{suffix}")
        assert response.status_code == 404, suffix
        assert response.json() == {"detail": f"no job {job['id']!r}"}
    assert bob.post(f"/api/jobs/{job['id']}/cancel").status_code == 404
    assert alice.get(f"/api/datasets/{ds['id']}").status_code == 200


def test_upload_over_the_size_limit_is_413(server, alice):
    marker = uuid.uuid4().hex
    big = [("files", (f"colours/a/{marker}.png", b"\0" * 600_000, "image/png"))]
    response = alice.post("/api/datasets", files=big)
    assert response.status_code == 413 and "limit" in response.json()["detail"]

    request = alice.build_request("POST", "/api/datasets", files=big)
    body = request.read()

    def chunked():  # no Content-Length: the limit holds on the bytes received
        yield from (body[i:i + 65536] for i in range(0, len(body), 65536))

    response = alice.post("/api/datasets", content=chunked(),
                          headers={"content-type": request.headers["content-type"]})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    _nothing_left_behind(server, marker)


def test_too_many_files_is_400(server, alice, folder):
    files = [("files", (f"x/{c}/{i}.png", b"png", "image/png"))
             for c in ("a", "b") for i in range(21)]
    response = alice.post("/api/datasets", files=files)
    assert response.status_code == 400 and "more than 40 files" in response.json()["detail"]
    entries = {f"x/{c}/{i}.png": b"png" for c in ("a", "b") for i in range(21)}
    response = alice.post("/api/datasets", files={"archive": ("x.zip", _zip(entries))})
    assert response.status_code == 400 and "max_zip_entries=40" in response.json()["detail"]
    _nothing_left_behind(server, "x.zip")


def test_zip_bomb_is_400(server, alice, folder):
    entries = {**_image_entries(folder), "colours/red/bomb.png": b"\0" * 3_000_000}
    archive = _zip(entries)
    assert len(archive) < 100_000  # small on the wire, 3 MB unpacked
    response = alice.post("/api/datasets", files={"archive": ("bomb.zip", archive)})
    assert response.status_code == 400
    assert "would extract to" in response.json()["detail"]
    assert not list(server.data_dir.rglob("bomb.png"))
    _nothing_left_behind(server, "bomb.zip")


@pytest.mark.parametrize("evil", ["../../../../../../{m}.png", "/tmp/{m}.png",
                                  "colours/../../../{m}.png"])
def test_zip_slip_is_400(server, alice, folder, evil):
    marker = uuid.uuid4().hex
    entries = {**_image_entries(folder), evil.format(m=marker): b"owned"}
    response = alice.post("/api/datasets", files={"archive": ("slip.zip", _zip(entries))})
    assert response.status_code == 400 and "zip-slip" in response.json()["detail"]
    _nothing_left_behind(server, marker)


def test_symlink_in_zip_is_400(server, alice, folder):
    marker = uuid.uuid4().hex
    archive = _zip(_image_entries(folder), links={f"colours/red/{marker}.png": "/etc/passwd"})
    response = alice.post("/api/datasets", files={"archive": ("link.zip", archive)})
    assert response.status_code == 400 and "symbolic link" in response.json()["detail"]
    _nothing_left_behind(server, marker)


@pytest.mark.parametrize("name", ["../{m}.png", "/tmp/{m}.png", "a\\..\\..\\{m}.png",
                                  "C:/{m}.png", "colours/../../{m}.png"])
def test_unsafe_file_names_in_folder_uploads_are_400(server, alice, folder, name):
    marker = uuid.uuid4().hex
    files = [("files", (f"colours/{p.relative_to(folder).as_posix()}", p.read_bytes(),
                        "image/png")) for p in sorted(folder.rglob("*.png"))]
    files.append(("files", (name.format(m=marker), b"owned", "image/png")))
    response = alice.post("/api/datasets", files=files)
    assert response.status_code == 400, response.text
    _nothing_left_behind(server, marker)


def test_a_zip_upload_is_validated_and_named_after_the_archive(alice, folder):
    archive = _zip(_image_entries(folder))
    response = alice.post("/api/datasets", files={"archive": ("../../My colours.zip", archive)})
    assert response.status_code == 201, response.text
    d = response.json()
    assert (d["kind"], d["name"]) == ("zip", "My colours")
    assert d["report"]["class_names"] == ["blue", "green", "red"]


def test_unusable_dataset_is_400_with_the_ingestion_message(server, alice, folder):
    response = upload_folder(alice, folder / "red", prefix="only-red/red")
    assert response.status_code == 400
    assert "Found 1 class" in response.json()["detail"]
    assert str(server.data_dir) not in response.json()["detail"]


@pytest.mark.parametrize("body, status, words", [
    ({"dataset_id": "x", "max_trials": 0}, 422, "max_trials"),
    ({"dataset_id": "x", "executor": "mars"}, 422, "executor"),
    ({"dataset_id": "x", "bogus": 1}, 422, "bogus"),
    ({"dataset_id": "doesnotexist"}, 404, "no dataset"),
])
def test_bad_job_requests_say_what_is_wrong(alice, body, status, words):
    response = alice.post("/api/jobs", json=body)
    assert response.status_code == status
    assert isinstance(response.json()["detail"], str) and words in response.json()["detail"]


def test_page_and_spec_are_served_without_outside_resources(server):
    page = httpx.get(server.url + "/", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("/static/app.js", "/static/style.css"):
        text = httpx.get(server.url + asset, timeout=30).text
        text = text.replace("http://www.w3.org/2000/svg", "")  # a namespace, not a download
        assert "http://" not in text and "https://" not in text
    assert "https://" not in page.text and "http://" not in page.text
    spec = httpx.get(server.url + "/api/openapi.json", timeout=30).json()
    assert {"/api/datasets", "/api/jobs", "/api/jobs/{job_id}/events",
            "/api/jobs/{job_id}/model", "/api/jobs/{job_id}/cancel"} <= set(spec["paths"])
    assert httpx.get(server.url + "/api/nothing", timeout=30).json() == {"detail": "Not Found"}
