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
"""

from __future__ import annotations

from fastapi import HTTPException
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from transfer_automl.server.auth import authenticate
from transfer_automl.server.store import ServerStore

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
