"""Run trials as Spark tasks: one single-partition job per trial, each in its own job group.

Modelled on hyperopt's ``SparkTrials`` (a driver thread per trial, cancellable job groups) and
Maggy (a reporter inside the trial streams metrics to the driver over TCP and learns there whether
to stop). Works with any master URL: ``local[*]``, ``local-cluster[...]``, ``spark://...``.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from transfer_automl.errors import InputError, TrialSuperseded
from transfer_automl.executors._spark_metrics import MetricsServer, metrics_port
from transfer_automl.executors.spark_session import (default_conf, driver_host, failure_reason,
                                                      get_or_create, looks_lost)
from transfer_automl.executors._spark_task import TaskArgs, run_partition
from transfer_automl.executors.base import TrialFn
from transfer_automl.executors.base import Event, Executor, TrialContext
from transfer_automl.trial import EpochMetrics, TrialResult, TrialSpec, TrialState

log = logging.getLogger(__name__)

__all__ = ["SparkExecutor"]


@dataclass
class _Trial:
    """The driver's bookkeeping of one submitted trial (guarded by the executor's lock)."""

    spec: TrialSpec
    group: str
    started: float
    attempt: int = 0
    last_epoch: int = 0
    task_attempt: int = 0  # Spark's attempt number of the current job's task
    tune: dict = field(default_factory=dict)  # live changes not yet handed to the trial
    stop_reason: str | None = None
    done: bool = False


class SparkExecutor(Executor):
    """Trials as Spark tasks; TensorFlow and backbones stay loaded in reused Python workers.

    Args:
        spark_master: master URL for a new session (``local[*]``, ``local-cluster[2,1,1024]``,
            ``spark://host:7077``); ignored, with a warning, when a Spark context is running.
        n_slots: concurrent trials; None uses the context's default parallelism.
        spark_conf: extra Spark settings for a new session, applied over the executor's defaults.
        retries: extra attempts for a trial whose worker or executor was lost.
        metrics_port: the driver's port for the trials' live metrics (executors must reach
            it); None reads ``TRANSFER_AUTOML_METRICS_PORT``, else any free port.
        trial_fn: ``(spec, context, reporter) -> TrialResult`` run in the task instead of the
            real ``TrialRunner`` (for tests and custom objectives); must be picklable.
    """

    def __init__(self, spark_master: str = "local[*]", n_slots: int | None = None,
                 spark_conf: Mapping[str, str] | None = None, retries: int = 1,
                 trial_fn: TrialFn | None = None, metrics_port: int | None = None) -> None:
        self.spark_master = spark_master
        self.metrics_port = metrics_port
        self.requested_slots = n_slots
        self.spark_conf = spark_conf
        self.retries = retries
        self.trial_fn = trial_fn
        self.spark_ = None
        self.created_session_ = False
        self.n_slots_: int | None = None
        self._context: TrialContext | None = None
        self._server: MetricsServer | None = None
        self._events: queue.Queue = queue.Queue()
        self._trials: dict[str, _Trial] = {}
        self._lock = threading.Lock()
        self._token = secrets.token_hex(16)
        self._run_id = secrets.token_hex(4)

    @property
    def n_slots(self) -> int:
        if self.n_slots_ is None:
            if self.requested_slots is None:
                raise RuntimeError("n_slots is known once start() has connected to Spark")
            return self.requested_slots
        return self.n_slots_

    def start(self, context: TrialContext) -> None:
        self._validate()
        self.spark_, self.created_session_ = get_or_create(
            self.spark_master, self.spark_conf, defaults=default_conf())
        sc = self.spark_.sparkContext
        self.n_slots_ = self.requested_slots or max(1, sc.defaultParallelism)
        self._context = replace(context, threads=self._threads(sc, context))
        self._server = MetricsServer(driver_host(sc), self._token, self._on_metrics,
                                     port=metrics_port(self.metrics_port),
                                     on_poll=self._on_poll)
        log.info("Spark executor: master %s, %d slots, metrics at %s:%d", sc.master,
                 self.n_slots_, *self._server.address)

    def _validate(self) -> None:
        slots = self.requested_slots
        if slots is not None and (not isinstance(slots, int) or slots < 1):
            raise InputError(f"n_slots: expected None or an integer >= 1, got {slots!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise InputError(f"retries: expected an integer >= 0, got {self.retries!r}")
        if not isinstance(self.spark_master, str) or not self.spark_master:
            raise InputError(f"spark_master: expected a master URL such as 'local[*]', "
                             f"got {self.spark_master!r}")
        if self.spark_conf is not None and not isinstance(self.spark_conf, Mapping):
            raise InputError(f"spark_conf: expected a mapping of Spark settings, "
                             f"got {type(self.spark_conf).__name__}")
        if self.trial_fn is not None and not callable(self.trial_fn):
            raise InputError(f"trial_fn: expected a callable, got {self.trial_fn!r}")

    def _threads(self, sc, context: TrialContext) -> int:
        """TensorFlow threads per trial: as given, else the cores one Spark slot stands for."""
        if context.threads:
            return context.threads
        if sc.master.startswith("local["):  # all slots share this machine's cores
            return max(1, (os.cpu_count() or 1) // self.n_slots_)
        return int(sc.getConf().get("spark.task.cpus", "1"))

    def submit(self, spec: TrialSpec) -> None:
        from pyspark import InheritableThread

        if self._server is None:
            raise RuntimeError("submit() called before start()")
        with self._lock:
            if len(self._trials) >= self.n_slots:
                raise RuntimeError("submit() called with no free slot")
            trial = _Trial(spec, f"transfer-automl-{self._run_id}-{spec.trial_id}",
                           time.monotonic())
            self._trials[spec.trial_id] = trial
        thread = InheritableThread(target=self._drive, args=(trial,), daemon=True,
                                   name=f"transfer-automl-{spec.trial_id}")
        thread.start()

    def _drive(self, trial: _Trial) -> None:
        """Thread body: run the trial and always report an outcome, so no slot is lost."""
        try:
            result = self._attempts(trial)
        except Exception as exc:  # e.g. the Spark context went away under us
            log.warning("trial %s: driver thread failed", trial.spec.trial_id, exc_info=True)
            result = self._failed(trial, failure_reason(exc))
        if result is not None:
            self._finish(trial, result)

    def _attempts(self, trial: _Trial) -> TrialResult | None:
        """Run the trial's job, again if its worker was lost; None once it was killed."""
        sc = self.spark_.sparkContext
        # Set in this thread: with pinned threads, job groups are per (JVM) thread.
        sc.setJobGroup(trial.group, f"trial {trial.spec.trial_id}", interruptOnCancel=True)
        for attempt in range(1, self.retries + 2):
            with self._lock:
                if trial.done:
                    return None
                trial.attempt, trial.task_attempt = attempt, 0
            task = functools.partial(run_partition, TaskArgs(
                trial.spec, self._context, self._server.address, self._token, self.trial_fn,
                attempt))
            try:
                return sc.parallelize([0], 1).mapPartitions(task).collect()[0]
            except Exception as exc:  # the job failed: its worker or executor died
                if trial.done:  # killed on purpose; its result is already reported
                    return None
                reason = failure_reason(exc)
                if attempt <= self.retries and looks_lost(exc):
                    log.warning("trial %s lost its worker (attempt %d): %s; retrying",
                                trial.spec.trial_id, attempt, reason)
                    continue
                log.warning("trial %s failed in Spark: %s", trial.spec.trial_id, reason)
                tries = f"; gave up after {attempt} attempts" if attempt > 1 else ""
                return self._failed(trial, f"{reason}{tries}")
        return None  # not reached: the last attempt returns or fails

    def _finish(self, trial: _Trial, result: TrialResult) -> None:
        with self._lock:
            if trial.done:
                return
            trial.done = True
            self._trials.pop(trial.spec.trial_id, None)
        self._events.put(result)

    @staticmethod
    def _failed(trial: _Trial, reason: str) -> TrialResult:
        return TrialResult(trial.spec.trial_id, TrialState.FAILED, reason=reason,
                           seconds=time.monotonic() - trial.started)

    def _current(self, trial_id: str, attempt: tuple[int, int]) -> tuple[_Trial | None, str]:
        """The running trial a message is from, or None and why it should stop."""
        ours, spark_attempt = attempt
        trial = self._trials.get(trial_id)
        if trial is None or trial.done:
            return None, "the trial is no longer running"
        if (ours and ours != trial.attempt) or spark_attempt < trial.task_attempt:
            # a task given up for lost whose process runs on (its executor lost touch
            # with the cluster, say): its epochs are not the trial's any more
            return None, f"{TrialSuperseded.PREFIX}a newer attempt of the trial runs elsewhere"
        if spark_attempt > trial.task_attempt:
            # Spark re-ran the task itself (it does when an executor is lost, without
            # counting it as the task's failure): the trial starts over elsewhere
            trial.task_attempt = spark_attempt
            log.warning("trial %s started over: Spark re-ran its task (attempt %d), its "
                        "executor was lost", trial_id, spark_attempt + 1)
        return trial, ""

    def _on_metrics(self, metrics: EpochMetrics, attempt: tuple[int, int]) -> dict:
        """Called by the metrics server for each epoch; the answer says whether to stop and
        carries the live changes waiting for the trial."""
        with self._lock:
            trial, why = self._current(metrics.trial_id, attempt)
            if trial is None:
                return {"stop": why}
            # A retried attempt repeats epochs the driver has seen; pass on only new ones.
            if metrics.epoch > trial.last_epoch:
                trial.last_epoch = metrics.epoch
                self._events.put(metrics)
            tune, trial.tune = trial.tune, {}
            return {"stop": trial.stop_reason, "tune": tune or None}

    def _on_poll(self, trial_id: str, attempt: tuple[int, int]) -> dict:
        """A trial asks for live changes between its reports."""
        with self._lock:
            trial, _ = self._current(trial_id, attempt)
            if trial is None:
                return {}  # a stop is answered with the next report
            tune, trial.tune = trial.tune, {}
            return {"tune": tune or None}

    def tune(self, trial_id: str, changes) -> bool:
        with self._lock:
            trial = self._trials.get(trial_id)
            if trial is None or trial.done:
                return False
            trial.tune.update(changes)
            return True

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        try:
            events.append(self._events.get(timeout=max(0.0, timeout)) if timeout > 0
                          else self._events.get_nowait())
            while True:
                events.append(self._events.get_nowait())
        except queue.Empty:
            pass
        return events

    def stop(self, trial_id: str, reason: str) -> None:
        with self._lock:
            trial = self._trials.get(trial_id)
            if trial is not None and trial.stop_reason is None:
                trial.stop_reason = reason

    def kill(self, trial_id: str, reason: str) -> None:
        with self._lock:
            trial = self._trials.pop(trial_id, None)
            if trial is None or trial.done:
                return
            trial.done = True
        self._events.put(self._failed(trial, reason))
        self._cancel(trial)

    def _cancel(self, trial: _Trial) -> None:
        try:
            self.spark_.sparkContext.cancelJobGroup(trial.group)
        except Exception as exc:  # the context may already be gone
            log.warning("could not cancel the Spark job of trial %s: %s",
                        trial.spec.trial_id, exc)

    def close(self) -> None:
        with self._lock:
            running = list(self._trials.values())
            self._trials.clear()
            for trial in running:
                trial.done = True
        if self.spark_ is not None:
            for trial in running:
                self._cancel(trial)
        if self._server is not None:
            self._server.close()
            self._server = None
        if self.spark_ is not None and self.created_session_:
            self.spark_.stop()
        self.spark_ = None
