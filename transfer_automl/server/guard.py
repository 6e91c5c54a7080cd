"""Request bodies are guarded before the app reads a byte of them.

FastAPI reads and parses a JSON body before it resolves the token dependency, and nothing
bounds that body, so anyone could make the server hold gigabytes. :class:`BodyGuard` (a pure
ASGI middleware) therefore stands in front of the app: a request that carries a body must

* hold a valid token, checked before any of the body is read (else HTTP 401 at once);
* be at most :data:`MAX_BODY_BYTES`, checked on the declared ``Content-Length`` first and
  then on the bytes received, so a chunked body cannot grow past it either (else HTTP 413).

Dataset uploads (:data:`UPLOADS`) are let through: their route checks the token before it
streams the body to disk, under the larger limits of :mod:`transfer_automl.server.uploads`.
Requests without a body are left to the routes (which answer 401 or 404 themselves).

What a token holder may ask of the server is bounded here too: :func:`check_job` holds a
job's parameters to the server's caps (HTTP 400) and :class:`QuotaGuard` a user's datasets,
stored bytes and queued or running jobs to their quotas (HTTP 429).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from transfer_automl.server.auth import authenticate
from transfer_automl.server.config import ServerConfig
from transfer_automl.server.store import ACTIVE, ServerStore

MAX_BODY_BYTES = 64 * 1024
UPLOADS = frozenset({("POST", "/api/datasets")})


def has_body(headers: Headers) -> bool:
    """Whether a request announces a body (a non-zero ``Content-Length`` or chunked)."""
    length = headers.get("content-length", "0").strip()
    return "transfer-encoding" in headers or length.strip("0") != ""


def _too_large(limit: int, size: int | None = None) -> HTTPException:
    what = "request body" if size is None else f"request body of {size} bytes"
    return HTTPException(413, f"{what} is larger than the limit of {limit} bytes; only "
                              "dataset uploads (POST /api/datasets) may be larger")


async def read_bounded(headers: Headers, receive: Receive, limit: int) -> bytes:
    """The whole body of a request, refused (HTTP 413) as soon as it is known to be larger
    than ``limit`` bytes: by its ``Content-Length`` before reading, else while it arrives.

    Raises:
        HTTPException: 413 for a body over the limit.
        ClientDisconnect: the client went away before sending all of it.
    """
    declared = headers.get("content-length", "").strip()
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit, int(declared))
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        body += message.get("body", b"")
        if len(body) > limit:
            raise _too_large(limit)
        if not message.get("more_body", False):
            return bytes(body)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` giving the app the already-read body in one message, then passing on
    the client's own messages (its disconnect)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


class BodyGuard:
    """ASGI middleware: a request body needs a valid token and stays under ``limit`` bytes
    (uploads excepted, see the module docstring). Refusals are the API's usual JSON
    ``{"detail": "..."}``."""

    def __init__(self, app: ASGIApp, store: ServerStore, limit: int = MAX_BODY_BYTES,
                 uploads: frozenset[tuple[str, str]] = UPLOADS) -> None:
        self.app, self.store, self.limit, self.uploads = app, store, limit, uploads

    def _guards(self, scope: Scope, headers: Headers) -> bool:
        if not has_body(headers):
            return False
        return (scope["method"], scope["path"].rstrip("/") or "/") not in self.uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets carry no headers to read here
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not self._guards(scope, headers):
            await self.app(scope, receive, send)
            return
        try:
            await run_in_threadpool(authenticate, headers.get("authorization", ""), self.store)
            body = await read_bounded(headers, receive, self.limit)
        except ClientDisconnect:
            return
        except HTTPException as exc:
            refusal = JSONResponse({"detail": exc.detail}, status_code=exc.status_code,
                                   headers=exc.headers)
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)


def check_job(params: dict[str, Any], config: ServerConfig) -> None:
    """Refuse (HTTP 400) a job's complete parameters when they ask for more than the
    server's caps allow, naming every value over its cap and the flag that sets it."""
    caps, over = config.caps, []
    if params["max_trials"] > caps.max_trials:
        over.append(f"max_trials {params['max_trials']} is more than this server allows "
                    f"({caps.max_trials}, --cap-trials)")
    if params["time_budget_s"] > caps.max_time_budget_s:
        over.append(f"time_budget_s {params['time_budget_s']:g} is more than this server "
                    f"allows ({caps.max_time_budget_s:g}, --cap-time-budget)")
    if params["n_parallel"] > caps.max_parallel:
        over.append(f"n_parallel {params['n_parallel']} is more than this server allows "
                    f"({caps.max_parallel}, --cap-parallel)")
    if params["executor"] not in config.executors:
        over.append(f"executor {params['executor']!r} is not allowed on this server (allowed: "
                    f"{', '.join(config.executors)}; --allow-executor)")
    if over:
        raise HTTPException(400, "; ".join(over))


def _over_quota(what: str) -> HTTPException:
    return HTTPException(429, f"quota reached: {what}")


class QuotaGuard:
    """Per-user quotas of ``config.quotas``, read from the store.

    :attr:`lock` serialises the steps that must see each other's outcome: admitting a dataset
    or a job (check, then add) and deleting a dataset (no active job may use it).
    """

    def __init__(self, config: ServerConfig, store: ServerStore) -> None:
        self.quotas, self.store = config.quotas, store
        self.lock = threading.RLock()

    def usage(self, user: str) -> dict[str, int]:
        """What ``user`` holds: datasets, their bytes on disk, jobs queued or running."""
        datasets = self.store.datasets(user)
        return {"datasets": len(datasets),
                "stored_bytes": sum(int((d["report"] or {}).get("stored_bytes", 0))
                                    for d in datasets),
                "active_jobs": len(self.store.jobs(owner=user, status=ACTIVE))}

    def _check_datasets(self, user: str, new_bytes: int | None) -> None:
        """Room for one more dataset of ``new_bytes`` (None: of any size, but some bytes
        must be left)."""
        q, used = self.quotas, self.usage(user)
        if used["datasets"] + 1 > q.max_datasets:
            raise _over_quota(f"{used['datasets']} datasets of at most {q.max_datasets} "
                              "(--quota-datasets); delete one (DELETE /api/datasets/ID)")
        full = (used["stored_bytes"] >= q.max_stored_bytes if new_bytes is None
                else used["stored_bytes"] + new_bytes > q.max_stored_bytes)
        if full:
            size = f" and this one would take {new_bytes}" if new_bytes is not None else ""
            raise _over_quota(f"your datasets take {used['stored_bytes']} bytes{size}, of at "
                              f"most {q.max_stored_bytes} (--quota-mb); delete some "
                              "(DELETE /api/datasets/ID)")

    def before_upload(self, user: str) -> None:
        """Refuse an upload at once (HTTP 429) when ``user`` has no room left for it."""
        self._check_datasets(user, None)

    @contextmanager
    def admit_dataset(self, user: str, stored_bytes: int) -> Iterator[None]:
        """Hold the lock while a checked dataset of ``stored_bytes`` is recorded, after
        refusing it (HTTP 429) if it does not fit ``user``'s quotas."""
        with self.lock:
            self._check_datasets(user, stored_bytes)
            yield

    @contextmanager
    def admit_job(self, user: str) -> Iterator[None]:
        """Hold the lock while a job is queued, after refusing it (HTTP 429) when ``user``
        has as many jobs queued or running as the quota allows."""
        with self.lock:
            active = len(self.store.jobs(owner=user, status=ACTIVE))
            if active >= self.quotas.max_active_jobs:
                raise _over_quota(f"{active} jobs queued or running, of at most "
                                  f"{self.quotas.max_active_jobs} (--quota-jobs); wait for "
                                  "one to end or cancel it")
            yield
