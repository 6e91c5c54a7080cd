"""Run trials in local worker processes (one trial per process at a time)."""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import time
from dataclasses import dataclass, field

from transfer_automl.errors import InputError
from transfer_automl.executors.base import Event, Executor, TrialContext
from transfer_automl.trial import TrialResult, TrialSpec, TrialState

log = logging.getLogger(__name__)


@dataclass
class _Worker:
    process: mp.Process
    tasks: mp.Queue
    control: mp.Queue
    trial: TrialSpec | None = None
    started: float = field(default_factory=time.monotonic)


class LocalExecutor(Executor):
    """Worker processes on this machine; TensorFlow and backbones load once per worker.

    Args:
        n_parallel: number of worker processes (concurrent trials), at least 1.
        threads_per_trial: TensorFlow threads in each worker; 0 splits the cores evenly.
    """

    def __init__(self, n_parallel: int = 1, threads_per_trial: int = 0) -> None:
        self.n_parallel = n_parallel
        self.threads_per_trial = threads_per_trial
        self._ctx = mp.get_context("spawn")
        self._events: mp.Queue | None = None
        self._workers: list[_Worker] = []
        self._context: TrialContext | None = None

    @property
    def n_slots(self) -> int:
        return self.n_parallel

    def start(self, context: TrialContext) -> None:
        if not isinstance(self.n_parallel, int) or self.n_parallel < 1:
            raise InputError(f"n_parallel: expected an integer >= 1, got {self.n_parallel!r}")
        import os

        threads = self.threads_per_trial or max(1, (os.cpu_count() or 1) // self.n_parallel)
        self._context = TrialContext(**{**context.__dict__, "threads": threads})
        self._events = self._ctx.Queue()
        self._workers = [self._spawn() for _ in range(self.n_parallel)]

    def _spawn(self) -> _Worker:
        from transfer_automl.executors._worker import worker_main

        tasks, control = self._ctx.Queue(), self._ctx.Queue()
        proc = self._ctx.Process(target=worker_main, daemon=True, name="transfer-automl-worker",
                                 args=(self._context, tasks, control, self._events))
        proc.start()
        return _Worker(proc, tasks, control)

    def submit(self, spec: TrialSpec) -> None:
        free = [w for w in self._workers if w.trial is None]
        if not free:
            raise RuntimeError("submit() called with no free slot")
        worker = free[0]
        worker.trial, worker.started = spec, time.monotonic()
        worker.tasks.put(spec)

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                wait = max(0.0, deadline - time.monotonic()) if not events else 0.0
                events.append(self._events.get(timeout=wait) if wait else self._events.get_nowait())
            except queue.Empty:
                break
        for event in events:
            if isinstance(event, TrialResult):
                self._release(event.trial_id)
        events += self._reap_dead()
        return events

    def _release(self, trial_id: str) -> _Worker | None:
        for w in self._workers:
            if w.trial is not None and w.trial.trial_id == trial_id:
                w.trial = None
                return w
        return None

    def _reap_dead(self) -> list[Event]:
        """Report trials whose worker process died, and replace the worker."""
        out: list[Event] = []
        for i, w in enumerate(self._workers):
            if w.process.is_alive():
                continue
            code = w.process.exitcode
            if w.trial is not None:
                hint = " (killed: out of memory?)" if code in (-9, 137) else ""
                out.append(self._failed(w, f"worker process died with exit code {code}{hint}"))
            log.warning("worker %s exited with code %s; starting a new one", w.process.pid, code)
            self._workers[i] = self._spawn()
        return out

    def _failed(self, w: _Worker, reason: str) -> TrialResult:
        return TrialResult(w.trial.trial_id, TrialState.FAILED, reason=reason,
                           seconds=time.monotonic() - w.started)

    def stop(self, trial_id: str, reason: str) -> None:
        for w in self._workers:
            if w.trial is not None and w.trial.trial_id == trial_id:
                w.control.put((trial_id, reason))

    def kill(self, trial_id: str, reason: str) -> None:
        for i, w in enumerate(self._workers):
            if w.trial is not None and w.trial.trial_id == trial_id:
                w.process.kill()
                w.process.join(10)
                self._events.put(self._failed(w, reason))
                w.trial = None
                self._workers[i] = self._spawn()

    def close(self) -> None:
        for w in self._workers:
            if w.process.is_alive():
                w.tasks.put(None)
        for w in self._workers:
            w.process.join(5)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(5)
        self._workers = []
