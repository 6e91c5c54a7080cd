"""Run trials in local worker processes (one trial per process at a time)."""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import sys
from collections.abc import Iterator
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait

from transfer_automl.errors import InputError
from transfer_automl.executors.base import Event, Executor, TrialContext, TrialFn
from transfer_automl.trial import TrialResult, TrialSpec, TrialState

log = logging.getLogger(__name__)


@dataclass
class _Worker:
    process: mp.Process
    tasks: mp.Queue
    control: mp.Queue
    events: Connection  # read end of the worker's own pipe
    trial: TrialSpec | None = None
    started: float = field(default_factory=time.monotonic)


def _from_main(obj) -> bool:
    return obj is not None and getattr(obj, "__module__", None) == "__main__"


@contextlib.contextmanager
def _main_hidden(needed: bool = False) -> Iterator[None]:
    """Start processes without them importing the parent's ``__main__``.

    A spawned process re-imports the parent's main module (the user's script, or the module
    of ``python -m``) before it runs its target; a script that calls ``fit_auto`` at top
    level without an ``if __name__ == "__main__":`` guard would run its whole search again
    in every worker, which multiprocessing refuses, and every trial died. Workers need
    nothing from ``__main__`` (specs and results are plain records), so it is hidden from
    the spawn while they start. ``needed``: a custom trial function defined in ``__main__``,
    which the worker must import; then the main module is left as it is.
    """
    main = sys.modules.get("__main__")
    if needed or main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.pop("__spec__", None)
        main.__dict__.update(saved)


class LocalExecutor(Executor):
    """Worker processes on this machine; TensorFlow and backbones load once per worker.

    Args:
        n_parallel: number of worker processes (concurrent trials), at least 1.
        threads_per_trial: TensorFlow threads in each worker; 0 splits the cores evenly.
        trial_fn: a custom picklable trial function (default: the trial runner), as for
            :class:`~transfer_automl.executors.spark.SparkExecutor`.
    """

    def __init__(self, n_parallel: int = 1, threads_per_trial: int = 0,
                 trial_fn: TrialFn | None = None) -> None:
        self.n_parallel, self.trial_fn = n_parallel, trial_fn
        self.threads_per_trial = threads_per_trial
        self._ctx = mp.get_context("spawn")
        self._pending: list[Event] = []  # results the driver itself produced (kills)
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
        self._pending = []
        self._workers = [self._spawn() for _ in range(self.n_parallel)]

    def _spawn(self) -> _Worker:
        from transfer_automl.executors._worker import worker_main

        tasks, control = self._ctx.Queue(), self._ctx.Queue()
        reader, writer = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(target=worker_main, daemon=True, name="transfer-automl-worker",
                                 args=(self._context, tasks, control, writer, self.trial_fn))
        with _main_hidden(needed=_from_main(self.trial_fn)):
            proc.start()
        writer.close()  # the worker holds the only write end: its death reads as EOF here
        return _Worker(proc, tasks, control, reader)

    def submit(self, spec: TrialSpec) -> None:
        free = [w for w in self._workers if w.trial is None]
        if not free:
            raise RuntimeError("submit() called with no free slot")
        worker = free[0]
        worker.trial, worker.started = spec, time.monotonic()
        worker.tasks.put(spec)

    def poll(self, timeout: float) -> list[Event]:
        events, self._pending = self._pending, []
        readers = [w.events for w in self._workers]
        for reader in wait(readers, timeout=0.0 if events else timeout):
            try:
                while reader.poll():
                    events.append(reader.recv())
            except (EOFError, OSError):  # the worker died; _reap_dead reports its trial
                continue
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
            w.events.close()
            self._workers[i] = self._spawn()
        return out

    def _failed(self, w: _Worker, reason: str) -> TrialResult:
        return TrialResult(w.trial.trial_id, TrialState.FAILED, reason=reason,
                           seconds=time.monotonic() - w.started)

    def stop(self, trial_id: str, reason: str) -> None:
        for w in self._workers:
            if w.trial is not None and w.trial.trial_id == trial_id:
                w.control.put((trial_id, reason))

    def tune(self, trial_id: str, changes) -> bool:
        for w in self._workers:
            if w.trial is not None and w.trial.trial_id == trial_id:
                w.control.put((trial_id, {"tune": dict(changes)}))
                return True
        return False

    def kill(self, trial_id: str, reason: str) -> None:
        for i, w in enumerate(self._workers):
            if w.trial is not None and w.trial.trial_id == trial_id:
                w.process.kill()
                w.process.join(10)
                w.events.close()  # it may hold half a message from the killed worker
                self._pending.append(self._failed(w, reason))
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
            w.events.close()
        self._workers = []
