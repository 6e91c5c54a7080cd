"""Security of the server: tokens (401, checked before any body is read), per-user isolation
(404), body and upload limits (413, 400) and hostile archives or file names (400) that never
write outside the data directory, while safe non-ASCII file names are kept exactly."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import socket
import sqlite3
import time
import uuid
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import write_colour_folder
from tests.server.conftest import (Server, image_entries, nothing_left_behind, upload_folder,
                                   zip_bytes)
from transfer_automl.server.guard import MAX_BODY_BYTES


@pytest.fixture(scope="module")
def server(secure_server):
    return secure_server


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


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"},
                                     {"Authorization": "Basic YWxpY2U6eA=="},
                                     {"Authorization": "Bearer"}])
@pytest.mark.parametrize("method, path", [
    ("GET", "/api/me"), ("GET", "/api/datasets"), ("POST", "/api/datasets"),
    ("GET", "/api/jobs"), ("POST", "/api/jobs"), ("GET", "/api/jobs/abc"),
    ("GET", "/api/jobs/abc/events"), ("GET", "/api/jobs/abc/model"),
    ("POST", "/api/jobs/abc/cancel"), ("DELETE", "/api/datasets/abc"),
    ("DELETE", "/api/jobs/abc")])
def test_missing_or_wrong_token_is_401(server, headers, method, path):
    response = httpx.request(method, server.url + path, headers=headers, timeout=30)
    assert response.status_code == 401
    assert isinstance(response.json()["detail"], str)
    assert response.headers["www-authenticate"] == "Bearer"


def _answer_to_a_body_start(server: Server, path: str, headers: dict[str, str],
                            start: bytes, timeout: float = 10) -> tuple[int, dict, float]:
    """POST only the start of a (much larger) body and read the answer without sending the
    rest: ``(status, json, seconds)``; a server that waits for the whole body times out."""
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode()
                     + start)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, json.loads(response.read()), time.monotonic() - began


FIFTY_MB = 50 * 2**20
PIECE = b"x" * 65536


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
@pytest.mark.parametrize("path", ["/api/jobs", "/api/jobs/abc/cancel", "/api/datasets"])
@pytest.mark.parametrize("token", [None, "nope"])
def test_a_body_without_a_valid_token_is_401_before_it_is_read(server, framing, path, token):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if framing == "chunked":
        headers["Transfer-Encoding"] = "chunked"
        start = f"{len(PIECE):x}\r\n".encode() + PIECE + b"\r\n"
    else:
        headers["Content-Length"] = str(FIFTY_MB)
        start = PIECE
    status, body, seconds = _answer_to_a_body_start(server, path, headers, start)
    assert status == 401 and "token" in body["detail"]
    assert seconds < 5


def test_a_streamed_50_mb_body_without_a_token_is_401(server):
    def fifty_mb():  # chunked, no Content-Length
        for _ in range(FIFTY_MB // len(PIECE)):
            yield PIECE

    began = time.monotonic()
    response = httpx.post(server.url + "/api/jobs", content=fifty_mb(), timeout=60,
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 401 and "missing token" in response.json()["detail"]
    assert time.monotonic() - began < 30


def test_an_oversized_json_body_is_413(server, alice):
    padded = {"dataset_id": "x", "pad": "a" * (MAX_BODY_BYTES + 1)}
    response = alice.post("/api/jobs", json=padded)
    assert response.status_code == 413, response.text
    assert f"limit of {MAX_BODY_BYTES} bytes" in response.json()["detail"]

    text = json.dumps(padded).encode()

    def chunked():  # no Content-Length: the limit holds on the bytes received
        yield from (text[i:i + 4096] for i in range(0, len(text), 4096))

    response = alice.post("/api/jobs", content=chunked(),
                          headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413 and "limit" in response.json()["detail"]

    status, body, seconds = _answer_to_a_body_start(
        server, "/api/jobs", {"Authorization": f"Bearer {server.tokens['alice']}",
                              "Content-Type": "application/json",
                              "Content-Length": str(FIFTY_MB)}, PIECE)
    assert status == 413 and f"{FIFTY_MB} bytes" in body["detail"] and seconds < 5

    small = alice.post("/api/jobs", json={"dataset_id": "x", "pad": "a" * 1000})
    assert small.status_code == 422 and "pad" in small.json()["detail"]


def test_uploads_keep_their_own_larger_limit(alice, tmp_path):
    folder = write_colour_folder(tmp_path / "colours", per_class=4, size=64)
    assert sum(p.stat().st_size for p in folder.rglob("*.png")) > MAX_BODY_BYTES
    response = upload_folder(alice, folder)
    assert response.status_code == 201, response.text


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
    nothing_left_behind(server, marker)


def test_too_many_files_is_400(server, alice, folder):
    files = [("files", (f"x/{c}/{i}.png", b"png", "image/png"))
             for c in ("a", "b") for i in range(21)]
    response = alice.post("/api/datasets", files=files)
    assert response.status_code == 400 and "more than 40 files" in response.json()["detail"]
    entries = {f"x/{c}/{i}.png": b"png" for c in ("a", "b") for i in range(21)}
    response = alice.post("/api/datasets", files={"archive": ("x.zip", zip_bytes(entries))})
    assert response.status_code == 400 and "max_zip_entries=40" in response.json()["detail"]
    nothing_left_behind(server, "x.zip")


def test_zip_bomb_is_400(server, alice, folder):
    entries = {**image_entries(folder), "colours/red/bomb.png": b"\0" * 3_000_000}
    archive = zip_bytes(entries)
    assert len(archive) < 100_000  # small on the wire, 3 MB unpacked
    response = alice.post("/api/datasets", files={"archive": ("bomb.zip", archive)})
    assert response.status_code == 400
    assert "would extract to" in response.json()["detail"]
    assert not list(server.data_dir.rglob("bomb.png"))
    nothing_left_behind(server, "bomb.zip")


@pytest.mark.parametrize("evil", ["../../../../../../{m}.png", "/tmp/{m}.png",
                                  "colours/../../../{m}.png"])
def test_zip_slip_is_400(server, alice, folder, evil):
    marker = uuid.uuid4().hex
    entries = {**image_entries(folder), evil.format(m=marker): b"owned"}
    response = alice.post("/api/datasets", files={"archive": ("slip.zip", zip_bytes(entries))})
    assert response.status_code == 400 and "zip-slip" in response.json()["detail"]
    nothing_left_behind(server, marker)


def test_symlink_in_zip_is_400(server, alice, folder):
    marker = uuid.uuid4().hex
    archive = zip_bytes(image_entries(folder), links={f"colours/red/{marker}.png": "/etc/passwd"})
    response = alice.post("/api/datasets", files={"archive": ("link.zip", archive)})
    assert response.status_code == 400 and "symbolic link" in response.json()["detail"]
    nothing_left_behind(server, marker)


@pytest.mark.parametrize("name", ["../{m}.png", "/tmp/{m}.png", "a\\..\\..\\{m}.png",
                                  "C:/{m}.png", "colours/../../{m}.png"])
def test_unsafe_file_names_in_folder_uploads_are_400(server, alice, folder, name):
    marker = uuid.uuid4().hex
    files = [("files", (f"colours/{p.relative_to(folder).as_posix()}", p.read_bytes(),
                        "image/png")) for p in sorted(folder.rglob("*.png"))]
    files.append(("files", (name.format(m=marker), b"owned", "image/png")))
    response = alice.post("/api/datasets", files=files)
    assert response.status_code == 400, response.text
    nothing_left_behind(server, marker)


NON_ASCII_CLASSES = ("café", "dögs", "猫")


def _non_ascii_files() -> dict[str, bytes]:
    """Three classes with non-ASCII names, four tiny PNGs each: ``{relative path: bytes}``."""
    from PIL import Image

    files = {}
    for c, name in enumerate(NON_ASCII_CLASSES):
        for i in range(4):
            pixels = Image.new("RGB", (16, 16), tuple(200 if k == c else 20 * i for k in range(3)))
            buffer = io.BytesIO()
            pixels.save(buffer, format="PNG")
            files[f"ds/{name}/{i}.png"] = buffer.getvalue()
    return files


def _multipart(parts: list[tuple[bytes, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body from ``(Content-Disposition parameters, data)`` parts."""
    boundary = uuid.uuid4().hex.encode()
    body = b"".join(b"--" + boundary + b"\r\nContent-Disposition: form-data; " + params
                    + b"\r\nContent-Type: image/png\r\n\r\n" + data + b"\r\n"
                    for params, data in parts)
    return body + b"--" + boundary + b"--\r\n", f"multipart/form-data; boundary={boundary.decode()}"


@pytest.mark.parametrize("form", ["utf-8 filename", "rfc 5987 filename*"])
def test_non_ascii_folder_and_file_names_are_kept(server, alice, form):
    files = _non_ascii_files()
    if form == "utf-8 filename":  # what browsers (and httpx) send
        response = alice.post("/api/datasets",
                              files=[("files", (path, data, "image/png"))
                                     for path, data in files.items()])
    else:  # an ASCII fallback that must lose to filename*
        body, content_type = _multipart([
            (b'name="files"; filename="' + path.encode("ascii", "replace") + b'"; '
             b"filename*=UTF-8''" + quote(path, safe="").encode(), data)
            for path, data in files.items()])
        response = alice.post("/api/datasets", content=body,
                              headers={"Content-Type": content_type})
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["report"]["class_names"] == list(NON_ASCII_CLASSES)
    assert sum(dataset["report"]["splits"].values()) == len(files)
    folder = server.data_dir / "datasets" / dataset["id"] / "files" / "ds"
    assert sorted(p.name for p in folder.iterdir()) == sorted(NON_ASCII_CLASSES)


def test_a_zip_upload_is_validated_and_named_after_the_archive(alice, folder):
    archive = zip_bytes(image_entries(folder))
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
