"""A real ``transfer-automl serve`` process on loopback, tokens from the real CLI, and a small
HTTP client; jobs use the session's backbone cache and a tiny space so they take seconds."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
import stat
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

CLI = [sys.executable, "-m", "transfer_automl.cli"]
FAST_JOBS = ["--no-search-kb", "--max-trials", "2", "--space", "quick", "--cv-folds", "0",
             "--time-budget", "300"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def create_token(data_dir: Path, user: str, cli: bool = False) -> str:
    """A token for ``user`` in the KB of ``data_dir``: through ``transfer-automl token create``
    with ``cli``, else directly through the store (faster; the CLI has its own test)."""
    if cli:
        proc = subprocess.run([*CLI, "token", "create", user, "--data-dir", str(data_dir)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip().splitlines()[-1]
    from transfer_automl.server.store import ServerStore

    data_dir.mkdir(parents=True, exist_ok=True)
    store = ServerStore(str(data_dir / "kb.sqlite"))
    try:
        return store.create_token(user)
    finally:
        store.close()


@dataclass
class Server:
    """One server process and how to talk to it."""

    data_dir: Path
    args: list[str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> "Server":
        log = open(self.data_dir.parent / f"server-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
             *self.args], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.log_tail()}"
            try:
                if httpx.get(self.url + "/api/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server did not answer in {timeout} s: {self.log_tail()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_tail(self) -> str:
        path = self.data_dir.parent / f"server-{self.port}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def client(self, token: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture
def browser(tmp_path):
    """A headless Chromium (tests using it skip first when there is none)."""
    from tests.server.cdp import Browser, find_browser

    b = Browser(find_browser(), tmp_path / "profile")
    yield b
    b.close()


@pytest.fixture(scope="session")
def server_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("server")


@pytest.fixture(scope="session")
def job_server(server_root, cache_root):
    """A server for real jobs: shared backbone cache, 2-trial searches in the quick space."""
    data = server_root / "jobs-data"
    data.mkdir()
    server = Server(data, [*FAST_JOBS, "--cache-dir", str(cache_root), "--max-jobs", "2"])
    tokens = {user: create_token(data, user) for user in ("alice", "bob")}
    server.start()
    server.tokens = tokens
    yield server
    server.stop()


@pytest.fixture(scope="session")
def secure_server(server_root, cache_root):
    """A server with small upload limits, for hostile uploads; users alice and bob."""
    data = server_root / "secure-data"
    data.mkdir()
    srv = Server(data, ["--no-search-kb", "--cache-dir", str(cache_root), "--max-upload-mb",
                        "0.5", "--max-files", "40", "--max-unzipped-mb", "1",
                        "--max-trials", "1", "--space", "quick", "--cv-folds", "0"])
    srv.tokens = {u: create_token(data, u) for u in ("alice", "bob")}
    srv.start()
    yield srv
    srv.stop()


def zip_bytes(entries: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    """A zip of ``{name: data}`` entries and ``{name: target}`` symbolic links."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
        for name, target in (links or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buffer.getvalue()


def image_entries(folder: Path, prefix: str = "colours") -> dict[str, bytes]:
    """The PNGs of a folder as ``{prefix/relative path: bytes}``."""
    return {f"{prefix}/{p.relative_to(folder).as_posix()}": p.read_bytes()
            for p in sorted(folder.rglob("*.png"))}


def nothing_left_behind(server: Server, marker: str) -> None:
    """No upload residue in the data directory and no file named ``marker`` anywhere near."""
    datasets = server.data_dir / "datasets"
    if datasets.exists():
        assert not [p.name for p in datasets.iterdir() if p.name.startswith(".incoming")]
    root = server.data_dir.parent.parent
    assert not list(root.rglob(f"*{marker}*"))
    assert not list(server.data_dir.rglob(f"*{marker}*"))


def upload_folder(client: httpx.Client, folder: Path, name: str = "colours",
                  prefix: str = "colours") -> httpx.Response:
    """Upload a folder's files as a browser's folder picker does: file name = relative path."""
    files = [("files", (f"{prefix}/{p.relative_to(folder).as_posix()}", p.read_bytes(),
                        "image/png"))
             for p in sorted(folder.rglob("*")) if p.is_file()]
    return client.post("/api/datasets", files=files, data={"name": name})


def wait_for(client: httpx.Client, job_id: str, predicate, timeout: float = 240,
             what: str = "condition") -> dict:
    """Poll a job until ``predicate(job)`` holds."""
    deadline = time.monotonic() + timeout
    job = {}
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}").json()
        if predicate(job):
            return job
        if job.get("status") in ("failed", "cancelled") and what != job.get("status"):
            raise AssertionError(f"job ended {job['status']}: {job.get('error')}")
        time.sleep(0.3)
    raise AssertionError(f"job {job_id}: no {what} in {timeout} s; last: "
                         f"{json.dumps({k: job.get(k) for k in ('status', 'error')})}")


def read_events(client: httpx.Client, job_id: str, timeout: float = 240) -> list[tuple[str, dict]]:
    """Every server-sent event of a job until its ``end`` event."""
    out, kind = [], None
    with client.stream("GET", f"/api/jobs/{job_id}/events", timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[len("event: "):]
            elif line.startswith("data: "):
                out.append((kind, json.loads(line[len("data: "):])))
                if kind == "end":
                    break
    return out



def huge_png(width: int = 12_000, height: int = 12_000) -> bytes:
    """A valid greyscale PNG of ``width x height`` black pixels that is tiny on the wire
    (12000 x 12000: 144 megapixels in about 140 KB), written without decoding anything."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    packer, row = zlib.compressobj(9), b"\0" * (width + 1)  # filter byte + one byte a pixel
    pixels = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))
