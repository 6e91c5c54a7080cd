"""The HTTP API and the web page, served by one FastAPI app.

Every ``/api`` route except ``/api/health`` needs ``Authorization: Bearer TOKEN``; a user sees
only their own datasets and jobs (anything else is 404). A request body is refused before it is
read without a valid token (401) and, except a dataset upload's, beyond 64 KiB (413; see
:mod:`transfer_automl.server.guard`). Errors are JSON ``{"detail": "..."}``.
The OpenAPI spec is at ``/api/openapi.json`` and its reference page at ``/docs``; the pages
at ``/`` and ``/docs`` use nothing but files in this package (no CDN), which the
Content-Security-Policy header enforces.
"""

from __future__ import annotations

import logging
import os
import shutil
from contextlib import asynccontextmanager
from pathlib import Path
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from transfer_automl.server import events
from transfer_automl.server.auth import current_user
from transfer_automl.server.config import ServerConfig
from transfer_automl.server.checks import UploadChecker
from transfer_automl.server.datasets import incoming_dir, new_id
from transfer_automl.server.files import DIR_MODE, UMASK, tighten
from transfer_automl.server.guard import BodyGuard, QuotaGuard, check_job
from transfer_automl.server.jobs import JobManager
from transfer_automl.server.redact import PathHider, server_paths
from transfer_automl.server.schemas import JobRequest, TuneBody
from transfer_automl.server.store import ACTIVE, ServerStore
from transfer_automl.errors import InputError, UploadError
from transfer_automl.server.uploads import receive_upload

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
User = Annotated[str, Depends(current_user)]


def create_app(config: ServerConfig, store: ServerStore | None = None) -> FastAPI:
    """The app of one server: its store, its job manager (started with the app) and routes.

    While the app runs, its process has the umask of :mod:`transfer_automl.server.files`, so
    everything written under the data directory, by the app, its upload checks and its job
    workers, is owner-only; the data directory and its top entries are made so at once.
    """
    config.data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(config.data_dir)
    store = store or ServerStore(config.kb)
    manager = JobManager(config, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        previous = os.umask(UMASK)
        manager.start()
        try:
            yield
        finally:
            manager.shutdown()
            store.close()
            os.umask(previous)

    app = FastAPI(title="transfer-automl", version="0.1.0", lifespan=lifespan,
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None,
                  description="Upload image datasets, run transfer-learning searches, follow "
                              "them live and download the exported models.")
    app.state.config, app.state.store, app.state.manager = config, store, manager
    hide = PathHider(server_paths(config.data_dir, config.cache_dir))
    _add_error_handlers(app, hide)
    app.add_middleware(BodyGuard, store=store)  # inside the headers: its refusals get them too
    _add_headers(app)
    _add_routes(app, config, store, manager, hide)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _add_error_handlers(app: FastAPI, hide: PathHider) -> None:
    """Every error is JSON ``{"detail": "..."}`` and names no server path."""

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError) -> JSONResponse:
        return JSONResponse({"detail": hide.text(exc.detail)}, status_code=exc.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": hide(exc.detail)}, status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        return JSONResponse({"detail": hide.text("; ".join(parts) or "invalid request")},
                            status_code=422)

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s %s failed", request.method, request.url.path)
        return JSONResponse({"detail": "internal server error; see the server log"},
                            status_code=500)


def _add_headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response


def public_dataset(d: dict[str, Any]) -> dict[str, Any]:
    """A dataset as the API shows it (no server paths)."""
    return {k: v for k, v in d.items() if k != "path"}


#: what the list of jobs leaves out of each job's progress: the per-trial parts
PER_TRIAL = ("trials", "curve", "epoch_curves", "importance")


def public_job(job: dict[str, Any], full: bool = True) -> dict[str, Any]:
    """A job as the API shows it; the list view leaves out the per-trial tables."""
    out = {k: v for k, v in job.items() if k != "pid"}
    if not full:
        out["progress"] = {k: v for k, v in (job["progress"] or {}).items()
                           if k not in PER_TRIAL}
        if job["result"]:
            out["result"] = {k: v for k, v in job["result"].items() if k != "leaderboard"}
    return out


def _add_routes(app: FastAPI, config: ServerConfig, store: ServerStore,
                manager: JobManager, hide: PathHider) -> None:
    checker = UploadChecker(config)  # images are decoded in its processes, never here
    quota = QuotaGuard(config, store)

    def show_dataset(d: dict[str, Any]) -> dict[str, Any]:
        return hide(public_dataset(d))

    def show_job(job: dict[str, Any], full: bool = True) -> dict[str, Any]:
        return hide(public_job(job, full))

    def own_job(job_id: str, user: str) -> dict[str, Any]:
        job = store.job(job_id, owner=user)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r}")
        return job

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    def docs() -> FileResponse:
        """The API reference, drawn in the page from ``/api/openapi.json`` (FastAPI's own
        docs page loads its scripts from a CDN, which this server never uses)."""
        return FileResponse(STATIC / "docs.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/health", tags=["server"])
    def health() -> dict[str, Any]:
        """Liveness: no token needed."""
        return {"status": "ok", "running_jobs": len(manager.running())}

    @app.get("/api/me", tags=["server"])
    def me(user: User) -> dict[str, Any]:
        """The token's user, the server's upload limits, job defaults and caps, and the
        user's quotas with what they use of them."""
        return {"user": user, "limits": asdict(config.limits),
                "defaults": asdict(config.defaults),
                "caps": {**asdict(config.caps), "executors": list(config.executors)},
                "quotas": asdict(config.quotas), "usage": quota.usage(user)}

    @app.post("/api/datasets", status_code=201, tags=["datasets"], openapi_extra={
        "requestBody": {"content": {"multipart/form-data": {"schema": {
            "type": "object", "properties": {
                "archive": {"type": "string", "format": "binary",
                            "description": "a .zip of the dataset folder"},
                "files": {"type": "array", "items": {"type": "string", "format": "binary"},
                          "description": "the files of a folder; each file name is its "
                                         "path relative to the folder"},
                "name": {"type": "string"}}}}}, "required": True}})
    async def upload(request: Request, user: User) -> dict[str, Any]:
        """Upload a dataset (a .zip, or the files of a folder with their relative paths);
        it is validated like ``transfer-automl fit`` would and its data report returned."""
        await run_in_threadpool(quota.before_upload, user)
        dataset_id = new_id()
        root = incoming_dir(config, dataset_id)
        try:
            received = await receive_upload(
                request.headers.get("content-type", ""), request.headers.get("content-length"),
                request.stream(), root, config.limits)
            name, path, report = await checker.check(dataset_id, received)
            row = await run_in_threadpool(admit, user, dataset_id, name, received.kind, path,
                                          report)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            shutil.rmtree(config.datasets_dir() / dataset_id, ignore_errors=True)
            raise
        return show_dataset(row)

    def admit(user: str, dataset_id: str, name: str, kind: str, path: str,
              report: dict[str, Any]) -> dict[str, Any]:
        with quota.admit_dataset(user, int(report.get("stored_bytes", 0))):
            return store.add_dataset(dataset_id, user, name, kind, path, report)

    @app.get("/api/datasets", tags=["datasets"])
    def list_datasets(user: User) -> list[dict[str, Any]]:
        """Your datasets, newest first."""
        return [show_dataset(d) for d in store.datasets(user)]

    @app.get("/api/datasets/{dataset_id}", tags=["datasets"])
    def get_dataset(dataset_id: str, user: User) -> dict[str, Any]:
        """One of your datasets with its data report."""
        d = store.dataset(dataset_id, owner=user)
        if d is None:
            raise HTTPException(404, f"no dataset {dataset_id!r}")
        return show_dataset(d)

    @app.delete("/api/datasets/{dataset_id}", status_code=204, response_class=Response,
                tags=["datasets"])
    def delete_dataset(dataset_id: str, user: User) -> Response:
        """Delete one of your datasets and its files (409 while a job queued or running
        uses it; finished jobs keep their results and models)."""
        with quota.lock:
            if store.dataset(dataset_id, owner=user) is None:
                raise HTTPException(404, f"no dataset {dataset_id!r}")
            users = [j["id"] for j in store.jobs(owner=user, status=ACTIVE)
                     if j["dataset_id"] == dataset_id]
            if users:
                raise HTTPException(409, f"dataset {dataset_id!r} is used by job(s) "
                                         f"{', '.join(users)}, queued or running; cancel "
                                         "them first")
            store.delete_dataset(dataset_id)
        shutil.rmtree(config.datasets_dir() / dataset_id, ignore_errors=True)
        return Response(status_code=204)

    @app.post("/api/jobs", status_code=201, tags=["jobs"])
    def start_job(body: JobRequest, user: User) -> dict[str, Any]:
        """Queue a search on one of your datasets (400 beyond the server's caps, 429 beyond
        your quota of jobs queued or running)."""
        params = body.fit_params(config.defaults)
        with quota.lock:
            if store.dataset(body.dataset_id, owner=user) is None:
                raise HTTPException(404, f"no dataset {body.dataset_id!r}")
            check_job(params, config)
            with quota.admit_job(user):
                job = store.add_job(new_id(), user, body.dataset_id, params)
        manager.wake()
        return show_job(job)

    @app.get("/api/jobs", tags=["jobs"])
    def list_jobs(user: User) -> list[dict[str, Any]]:
        """Your jobs, newest first, without their trial tables."""
        return [show_job(j, full=False) for j in reversed(store.jobs(owner=user))]

    @app.get("/api/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: str, user: User) -> dict[str, Any]:
        """Status, live progress (trials, best so far, curve) and, when done, the result."""
        return show_job(own_job(job_id, user))

    @app.get("/api/jobs/{job_id}/events", tags=["jobs"],
             response_class=StreamingResponse,
             responses={200: {"content": {"text/event-stream": {}}}})
    async def job_events(job_id: str, request: Request, user: User) -> StreamingResponse:
        """Server-sent events: an ``job`` event with the whole job whenever it changes, then
        ``end`` once it is complete, failed or cancelled."""
        await run_in_threadpool(own_job, job_id, user)
        return StreamingResponse(
            events.stream(request, lambda: show_job(store.job(job_id))),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.get("/api/jobs/{job_id}/leaderboard", tags=["jobs"])
    def leaderboard(job_id: str, user: User) -> list[dict[str, Any]]:
        """One row per trial, best first (live while the job runs)."""
        job = own_job(job_id, user)
        if job["result"]:
            return job["result"]["leaderboard"]
        return (job["progress"] or {}).get("trials", [])

    @app.get("/api/jobs/{job_id}/group", tags=["jobs"])
    def group(job_id: str, user: User) -> dict[str, Any]:
        """The virtual dataset group the dataset matched in the knowledge base (None when the
        job searched without one or has not got that far)."""
        job = own_job(job_id, user)
        return {"group": (job["result"] or {}).get("group"),
                "message": (job["progress"] or {}).get("message", "")}

    @app.get("/api/jobs/{job_id}/model", tags=["jobs"], response_class=FileResponse,
             responses={200: {"content": {"application/zip": {}}}})
    def download_model(job_id: str, user: User) -> FileResponse:
        """The exported model (SavedModel + labels.json + metadata.json) as a zip."""
        job = own_job(job_id, user)
        path = config.job_dir(job_id) / "model.zip"
        if job["status"] != "complete" or not path.is_file():
            raise HTTPException(409, f"job {job_id} has no model yet (status {job['status']})")
        return FileResponse(path, media_type="application/zip",
                            filename=f"model-{job_id}.zip")

    @app.post("/api/jobs/{job_id}/trials/{trial_id}/tune", tags=["jobs"])
    def tune_trial(job_id: str, trial_id: str, body: TuneBody, user: User) -> dict[str, Any]:
        """Change a running trial of a running job from its next epoch on (learning rate,
        momentum, weight decay, epochs left), or stop it. Answers once the search has taken
        the request (status ``sent``, then ``applied`` with the epoch; or ``rejected``,
        ``stopping``) or after 10 s (``waiting``)."""
        from transfer_automl import tuning

        job = own_job(job_id, user)
        if job["status"] != "running" or not job.get("run_id"):
            raise HTTPException(409, f"job {job_id} is not running a search now "
                                     f"(status {job['status']})")
        changes = body.model_dump(exclude={"stop"}, exclude_none=True)
        if body.stop and changes:
            raise HTTPException(422, "stop does not go with changes")
        run_dir = config.job_dir(job_id) / "runs" / job["run_id"]
        try:
            request_id = tuning.send(run_dir, trial_id, changes,
                                     stop="stopped from the job page" if body.stop else None)
        except InputError as exc:
            raise HTTPException(422, str(exc)) from None
        answer = tuning.wait_for_answer(run_dir, request_id, 10.0,
                                        until=("sent", "applied", "rejected", "stopping"))
        return answer or {"request_id": request_id, "status": "waiting", "epoch": None,
                          "detail": "the search has not taken the request yet"}

    @app.post("/api/jobs/{job_id}/cancel", tags=["jobs"])
    def cancel(job_id: str, user: User) -> dict[str, Any]:
        """Cancel a queued or running job (its worker processes are ended)."""
        own_job(job_id, user)
        return show_job(manager.cancel(job_id))

    @app.delete("/api/jobs/{job_id}", status_code=204, response_class=Response, tags=["jobs"])
    def delete_job(job_id: str, user: User) -> Response:
        """Delete one of your jobs: a queued or running one is cancelled first (its worker
        processes are ended), then its record, run folder and model are removed."""
        job = own_job(job_id, user)
        if job["status"] in ACTIVE:
            manager.cancel(job_id)
        with quota.lock:
            store.delete_job(job_id)
        shutil.rmtree(config.job_dir(job_id), ignore_errors=True)
        return Response(status_code=204)
