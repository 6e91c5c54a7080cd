"""Server-sent events of one job: the whole job as JSON whenever it changes."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool

from transfer_automl.server.store import TERMINAL


def _change_key(job: dict[str, Any]) -> tuple:
    progress = job.get("progress") or {}
    return (job["status"], progress.get("version"), job.get("run_id"), job.get("attempts"),
            job.get("error"))


async def stream(request: Request, read_job: Callable[[], dict[str, Any]],
                 poll_s: float = 0.5, keepalive_s: float = 15.0) -> AsyncIterator[str]:
    """Yield ``event: job`` messages as the job changes and ``event: end`` when it is over.

    Args:
        request: the client's request (the stream stops when it disconnects).
        read_job: reads the job's current public form.
        poll_s: how often the job is read.
        keepalive_s: a comment line is sent after this long without an event, so proxies
            and browsers keep the connection open.
    """
    last_key, sent, n = None, time.monotonic(), 0
    while not await request.is_disconnected():
        job = await run_in_threadpool(read_job)
        key = _change_key(job)
        if key != last_key:
            n += 1
            last_key, sent = key, time.monotonic()
            yield f"id: {n}\nevent: job\ndata: {json.dumps(job)}\n\n"
        elif time.monotonic() - sent > keepalive_s:
            sent = time.monotonic()
            yield ": keep-alive\n\n"
        if job["status"] in TERMINAL:
            yield f"event: end\ndata: {json.dumps({'status': job['status']})}\n\n"
            return
        await asyncio.sleep(poll_s)
