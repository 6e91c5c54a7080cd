"""The job manager: a queue of searches run by worker processes, at most ``max_jobs`` at once.

Each job runs in its own process group (``python -m transfer_automl.server.worker``), so a
cancel ends the search and all its trial processes, and TensorFlow never loads in the web
process. The state lives in the knowledge base: at start-up, jobs that were running when the
server stopped go back to the front of the queue and their workers resume their runs.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from knowledge_base.engine import now
from transfer_automl.server.config import ServerConfig
from transfer_automl.server.store import ServerStore

log = logging.getLogger(__name__)

WORKER_MODULE = "transfer_automl.server.worker"


def _is_our_worker(pid: int, job_id: str) -> bool:
    """Whether ``pid`` is still a worker of ``job_id`` (pids are reused after a restart)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return WORKER_MODULE.encode() in cmdline and job_id.encode() in cmdline


def _end_group(proc_pid: int, grace_s: float, wait=None) -> None:
    """SIGTERM the process group of ``proc_pid``, SIGKILL it after ``grace_s``."""
    try:
        os.killpg(proc_pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if wait is not None and wait() is not None:
            break
        time.sleep(0.1)
    try:
        os.killpg(proc_pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class JobManager:
    """Starts queued jobs, watches their workers, cancels them, recovers after a restart.

    Args:
        config: the server's settings.
        store: the server's state.
        poll_s: how often the queue and the workers are checked.
    """

    def __init__(self, config: ServerConfig, store: ServerStore, poll_s: float = 0.5) -> None:
        self.config, self.store, self.poll_s = config, store, poll_s
        self._procs: dict[str, subprocess.Popen] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Requeue jobs a previous server left running, then start the scheduling thread."""
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="job-manager", daemon=True)
        self._thread.start()

    def recover(self) -> list[str]:
        """Put jobs that were running when the server stopped back in the queue (first in
        line); their workers will resume their runs. Returns their ids."""
        requeued = []
        for job in self.store.jobs(status=("running",)):
            if job["pid"] and _is_our_worker(job["pid"], job["id"]):
                log.warning("job %s: ending the worker left by the previous server", job["id"])
                _end_group(job["pid"], grace_s=2.0)
            self.store.update_job(job["id"], status="queued", pid=None)
            requeued.append(job["id"])
        if requeued:
            log.info("requeued %d interrupted jobs: %s", len(requeued), ", ".join(requeued))
        return requeued

    def shutdown(self, grace_s: float = 3.0) -> None:
        """Stop scheduling and end every worker; their jobs stay ``running`` in the store, so
        the next server resumes them."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for job_id, proc in list(self._procs.items()):
                log.info("job %s: stopping its worker for shutdown", job_id)
                _end_group(proc.pid, grace_s, proc.poll)
                proc.wait()
            self._procs.clear()

    def wake(self) -> None:
        """Check the queue now (a job was added)."""
        self._wake.set()

    # -- operations -------------------------------------------------------------------------
    def cancel(self, job_id: str) -> dict[str, Any] | None:
        """Cancel a queued or running job (ending its worker); a finished job is left as it
        is. Returns the job as it is now."""
        with self._lock:
            changed = self.store.update_job(job_id, only_if_status=("queued", "running"),
                                            status="cancelled", finished=now(),
                                            error="cancelled by the user")
            proc = self._procs.pop(job_id, None)
            if changed and proc is not None:
                _end_group(proc.pid, 5.0, proc.poll)
                proc.wait()
            if changed:
                self.store.update_job(job_id, pid=None)
                run_id = (self.store.job(job_id) or {}).get("run_id")
                if run_id and self.config.search_kb:
                    self.store.interrupt_run(run_id, "job cancelled by the user")
        return self.store.job(job_id)

    def running(self) -> list[str]:
        """Ids of the jobs whose workers run in this server."""
        with self._lock:
            return list(self._procs)

    # -- scheduling -------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._reap()
                self._launch_queued()
            except Exception:  # keep scheduling; the next poll retries
                log.exception("job manager poll failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _reap(self) -> None:
        with self._lock:
            for job_id, proc in list(self._procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self._procs[job_id]
                tail = self._log_tail(job_id)
                if self.store.update_job(job_id, only_if_status=("running",), status="failed",
                                         finished=now(), pid=None,
                                         error=f"worker exited with code {code}: {tail}"):
                    log.warning("job %s: worker died with code %s", job_id, code)

    def _launch_queued(self) -> None:
        with self._lock:
            free = self.config.max_jobs - len(self._procs)
            if free <= 0 or self._stop.is_set():
                return
            for job in self.queue()[:free]:
                self._launch(job)

    def queue(self) -> list[dict[str, Any]]:
        """Queued jobs in the order they start: those a restart interrupted (already
        attempted) first, then the oldest."""
        queued = self.store.jobs(status=("queued",))
        queued.sort(key=lambda j: (j["attempts"] == 0, j["created"]))
        return queued

    def _launch(self, job: dict[str, Any]) -> None:
        cfg, job_id = self.config, job["id"]
        job_dir = cfg.job_dir(job_id)
        if not self.store.update_job(job_id, only_if_status=("queued",), status="running",
                                     attempts=job["attempts"] + 1, started=now(), error=""):
            return  # cancelled (or deleted) in between
        job_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", WORKER_MODULE, "--kb", cfg.kb, "--job", job_id,
               "--data-dir", str(cfg.data_dir), "--parent", str(os.getpid()),
               "--search-kb", cfg.kb if cfg.search_kb else ""]
        if cfg.cache_dir is not None:
            cmd += ["--cache-dir", str(cfg.cache_dir)]
        with open(job_dir / "worker.log", "ab") as logfile:
            try:
                proc = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            except OSError as exc:
                self.store.update_job(job_id, status="failed", finished=now(),
                                      error=f"could not start the worker: {exc}")
                return
        self._procs[job_id] = proc
        self.store.update_job(job_id, pid=proc.pid)
        log.info("job %s: worker %d started (attempt %d)", job_id, proc.pid,
                 job["attempts"] + 1)

    def _log_tail(self, job_id: str, lines: int = 3) -> str:
        path = self.config.job_dir(job_id) / "worker.log"
        try:
            text = path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        return " | ".join(t.strip() for t in text[-lines:])[-500:] or "no output"
