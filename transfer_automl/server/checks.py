"""Checking an upload outside the web process: ``python -m transfer_automl.server.checks``.

Validating a dataset decodes every image, and one small file can declare an image of
hundreds of megapixels, so the web process never does it. :class:`UploadChecker` runs
:func:`~transfer_automl.server.datasets.validate_upload` in a fresh child process, at most
``ServerConfig.max_checks`` at a time (further uploads wait for a slot). The child first
refuses any image whose header declares more than ``Limits.max_image_pixels`` (HTTP 400), so
its memory stays bounded as well; it exits when its check is done, returning its memory.

The request goes to the child as one JSON object on stdin; its answer is one JSON line on
stdout: ``{"name", "path", "report"}`` or ``{"status", "detail"}``. Its log goes to stderr,
which the server logs but never shows to a client.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from fastapi.concurrency import run_in_threadpool

from transfer_automl.errors import UploadError
from transfer_automl.server.config import Limits, ServerConfig
from transfer_automl.server.files import private_umask
from transfer_automl.server.uploads import Received

log = logging.getLogger(__name__)

CHECK_MODULE = "transfer_automl.server.checks"
#: A check taking longer than this is ended and its upload refused.
CHECK_TIMEOUT_S = 3600.0


def _received_json(received: Received) -> dict[str, Any]:
    return {"kind": received.kind, "name": received.name, "archive_name": received.archive_name,
            "n_files": received.n_files, "top_names": sorted(received.top_names),
            "archive": str(received.archive) if received.archive else None,
            "folder": str(received.folder) if received.folder else None}


def _received_from(data: dict[str, Any]) -> Received:
    return Received(kind=data["kind"], name=data["name"], archive_name=data["archive_name"],
                    n_files=data["n_files"], top_names=set(data["top_names"]),
                    archive=Path(data["archive"]) if data["archive"] else None,
                    folder=Path(data["folder"]) if data["folder"] else None)


class UploadChecker:
    """Validates uploads in child processes, at most ``config.max_checks`` at once.

    Args:
        config: the server's settings (data directory and upload limits).
        timeout_s: longest a check may take.
    """

    def __init__(self, config: ServerConfig, timeout_s: float = CHECK_TIMEOUT_S) -> None:
        self.config, self.timeout_s = config, timeout_s
        self._slots: asyncio.Semaphore | None = None  # made in the server's event loop

    async def check(self, dataset_id: str,
                    received: Received) -> tuple[str, str, dict[str, Any]]:
        """:meth:`run`, at most ``max_checks`` at once: further uploads wait here, in the
        event loop, without holding one of the threads the other routes run in."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.config.max_checks)
        async with self._slots:
            return await run_in_threadpool(self.run, dataset_id, received)

    def run(self, dataset_id: str, received: Received) -> tuple[str, str, dict[str, Any]]:
        """:func:`~transfer_automl.server.datasets.validate_upload` in a child process:
        ``(name, path, report)``.

        Raises:
            UploadError: the upload is refused (400 with the reason, in the upload's own
                names), or its check failed or took longer than ``timeout_s``.
        """
        request = json.dumps({"data_dir": str(self.config.data_dir),
                              "limits": asdict(self.config.limits), "dataset_id": dataset_id,
                              "received": _received_json(received)})
        try:
            proc = subprocess.run([sys.executable, "-m", CHECK_MODULE], input=request,
                                  capture_output=True, text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            raise UploadError(400, f"checking the upload took longer than "
                                   f"{self.timeout_s:g} s; upload fewer or smaller "
                                   "images") from None
        if proc.stderr.strip():
            log.info("check of upload %s: %s", dataset_id, proc.stderr.strip()[-2000:])
        lines = proc.stdout.strip().splitlines()
        try:
            answer = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            log.error("check of upload %s ended with code %s", dataset_id, proc.returncode)
            raise UploadError(400, "the upload could not be checked (the check process "
                                   f"ended with code {proc.returncode}); its images may need "
                                   "more memory than this server gives one check")
        if "detail" in answer:
            raise UploadError(int(answer["status"]), str(answer["detail"]))
        return answer["name"], answer["path"], answer["report"]


def main() -> int:
    """The child: read the request from stdin, validate, answer one JSON line on stdout."""
    from PIL import Image

    from transfer_automl.server.datasets import validate_upload

    private_umask()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    request = json.loads(sys.stdin.read())
    limits = Limits(**request["limits"])
    config = ServerConfig(Path(request["data_dir"]), limits=limits)
    # A header that lied about its size still cannot make Pillow decode past twice the limit.
    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels
    try:
        name, path, report = validate_upload(config, request["dataset_id"],
                                             _received_from(request["received"]))
        answer: dict[str, Any] = {"name": name, "path": path, "report": report}
    except UploadError as exc:
        answer = {"status": exc.status, "detail": exc.detail}
    sys.stdout.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
