"""A replay executor: trials "run" by replaying recorded learning curves on a virtual clock.

A discrete-event simulation behind the ordinary :class:`Executor` interface. Each slot is a
simulated worker, not a core, so 8 slots are simulated exactly on a 2-core machine and a
search of hours takes well under a second. The product's driver (``run_search``) schedules
these trials unchanged when it is given the executor's clock.

Timing of one trial: its recorded start-up (the trial's wall time less its epochs: feature
loading, model build) then each recorded epoch; epoch ``k``'s metrics are reported at the
simulated time it ended. ``stop`` behaves as the worker's reporter does: it is read when the
next epoch is reported, so the trial ends at its next epoch boundary, PRUNED, scored by its
best epoch so far. ``kill`` ends it at once, FAILED.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from transfer_automl.executors.base import Executor
from transfer_automl.trial import EpochMetrics, TrialContext, TrialResult, TrialSpec, TrialState


@dataclass(frozen=True)
class Recorded:
    """One recorded trial: what the replay reproduces.

    Attributes:
        key: the configuration's id (what a trial's config names in ``config_id``).
        startup_s: seconds before the first epoch starts.
        epochs: per epoch ``(val_accuracy, val_loss, accuracy, seconds)``, in order.
    """

    key: str
    startup_s: float
    epochs: tuple[tuple[float, float, float, float], ...]

    @classmethod
    def from_row(cls, row: Mapping) -> "Recorded":
        """From a meta-dataset row (``config_id``, ``wall_s``, ``curve``): the start-up is the
        row's wall time less the sum of its epochs' seconds (never negative)."""
        curve = sorted(row["curve"], key=lambda e: e["epoch"])
        epochs = tuple((float(e["val_accuracy"]), float(e.get("val_loss") or 0.0),
                        float(e.get("accuracy") or 0.0), max(0.0, float(e["seconds"])))
                       for e in curve)
        total = sum(e[3] for e in epochs)
        wall = float(row.get("wall_s") or total)
        return cls(str(row["config_id"]), max(0.0, wall - total), epochs)

    @property
    def n_epochs(self) -> int:
        return len(self.epochs)

    def seconds(self, first: int = 0, last: int | None = None) -> float:
        """Seconds of epochs ``first`` (0-based) up to ``last`` (exclusive), start-up aside."""
        return sum(e[3] for e in self.epochs[first:last])


class SimClock:
    """Simulated seconds since the start; the executor advances it, everyone reads it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class _Run:
    spec: TrialSpec
    recorded: Recorded
    submitted: float
    t0: float        # when its first (replayed) epoch starts
    first: int       # epochs already done before this trial (resumed from a checkpoint)
    last: int        # epochs it ends after
    order: int
    done: int = 0    # epochs done, counting those before ``first``
    stop: str | None = None
    history: list[EpochMetrics] = field(default_factory=list)

    def next_end(self) -> float:
        return self.t0 + self.recorded.seconds(self.first, self.done + 1)


class ReplayExecutor(Executor):
    """Runs trials whose ``config["config_id"]`` names a recorded trial, on a virtual clock.

    Args:
        recorded: the recorded trials by key.
        slots: trials that run at once (simulated workers).
        resume_startup: whether a trial resumed from a checkpoint pays its start-up again.
        stop_lag: True (the product's workers): a stop is read at the next epoch's report.
            False: a stop asked as an epoch is reported ends the trial there (a worker that
            waited for the driver's verdict after every epoch): the latency's cost.

    A trial's ``config["epochs"]``, when given, caps the epochs it runs (a rung of
    successive halving). Its result's artifact names a checkpoint at its last epoch; a spec
    whose ``init_weights`` is such a checkpoint resumes there, with the epochs before it in
    its history, reporting only the new ones.
    """

    def __init__(self, recorded: Mapping[str, Recorded], slots: int,
                 resume_startup: bool = False, stop_lag: bool = True) -> None:
        self.recorded, self.slots, self.resume_startup = dict(recorded), slots, resume_startup
        self.stop_lag = stop_lag
        self.clock = SimClock()
        self.running: dict[str, _Run] = {}
        self.checkpoints: dict[str, tuple[str, tuple[EpochMetrics, ...]]] = {}
        self.max_seen, self.closed, self.last_end = 0, False, 0.0
        self._pending: list[TrialResult] = []
        self._order = itertools.count()

    @property
    def n_slots(self) -> int:
        return self.slots

    def start(self, context: TrialContext) -> None:
        self.context = context

    def submit(self, spec: TrialSpec) -> None:
        if len(self.running) >= self.slots:
            raise RuntimeError(f"submit of {spec.trial_id}: all {self.slots} slots are busy")
        recorded = self.recorded[spec.config["config_id"]]
        history: tuple[EpochMetrics, ...] = ()
        if spec.init_weights:
            key, history = self.checkpoints[spec.init_weights]
            if key != recorded.key:
                raise RuntimeError(f"{spec.trial_id}: checkpoint {spec.init_weights} is of "
                                   f"{key}, not {recorded.key}")
        cap = spec.config.get("epochs")
        last = recorded.n_epochs if cap is None else min(int(cap), recorded.n_epochs)
        startup = recorded.startup_s if not history or self.resume_startup else 0.0
        now = self.clock.now
        run = _Run(spec, recorded, now, now + startup, len(history), max(last, len(history)),
                   next(self._order), done=len(history),
                   history=[EpochMetrics(spec.trial_id, *_fields(e)) for e in history])
        self.running[spec.trial_id] = run
        self.max_seen = max(self.max_seen, len(self.running))
        if run.done >= run.last:  # nothing left to replay: done as soon as started
            self._pending.append(self._finish(run, TrialState.COMPLETE, ""))

    def poll(self, timeout: float) -> list[TrialResult | EpochMetrics]:
        """Advance the clock to the next epoch end (at most ``timeout`` ahead) and return the
        events due then; results of killed trials come back at once."""
        events: list = list(self._pending)
        self._pending = []
        if events:
            return events
        if not self.running:
            if math.isfinite(timeout):
                self.clock.now += timeout
            return []
        due = min(run.next_end() for run in self.running.values())
        if due > self.clock.now + timeout:
            self.clock.now += timeout
            return []
        self.clock.now = max(self.clock.now, due)
        for run in sorted(self.running.values(), key=lambda r: r.order):
            if run.next_end() > self.clock.now + 1e-9:
                continue
            val_acc, val_loss, acc, seconds = run.recorded.epochs[run.done]
            run.done += 1
            metrics = EpochMetrics(run.spec.trial_id, run.done, 1.0 - acc, acc, val_loss,
                                   val_acc, seconds)
            run.history.append(metrics)
            events.append(metrics)
            if run.stop is not None:
                events.append(self._finish(run, TrialState.PRUNED, run.stop))
            elif run.done >= run.last:
                events.append(self._finish(run, TrialState.COMPLETE, ""))
        return events

    def stop(self, trial_id: str, reason: str) -> None:
        run = self.running.get(trial_id)
        if run is None or run.stop is not None:
            return
        run.stop = reason
        if not self.stop_lag and run.done > run.first:
            just_reported = run.t0 + run.recorded.seconds(run.first, run.done)
            if abs(just_reported - self.clock.now) < 1e-9:
                self._pending.append(self._finish(run, TrialState.PRUNED, reason))

    def kill(self, trial_id: str, reason: str) -> None:
        run = self.running.pop(trial_id, None)
        if run is not None:
            self.last_end = max(self.last_end, self.clock.now)
            self._pending.append(TrialResult(trial_id, TrialState.FAILED, reason=reason,
                                             history=tuple(run.history),
                                             seconds=self.clock.now - run.submitted))

    def close(self) -> None:
        self.closed = True

    def _finish(self, run: _Run, state: TrialState, reason: str) -> TrialResult:
        del self.running[run.spec.trial_id]
        self.last_end = max(self.last_end, self.clock.now)
        best = max(run.history, key=lambda m: m.val_accuracy, default=None)
        artifact = f"replay:{run.spec.trial_id}@{run.done}"
        self.checkpoints[artifact] = (run.recorded.key, tuple(run.history))
        return TrialResult(run.spec.trial_id, state,
                           score=best.val_accuracy if best else None,
                           best_epoch=best.epoch if best else None,
                           history=tuple(run.history), reason=reason,
                           seconds=self.clock.now - run.submitted, fidelity="replay",
                           artifact=artifact, extra={"epochs_replayed": run.done - run.first})


def _fields(metrics: EpochMetrics) -> tuple:
    """An epoch's fields after its trial id (a resumed trial reports it under its own id)."""
    return (metrics.epoch, metrics.loss, metrics.accuracy, metrics.val_loss,
            metrics.val_accuracy, metrics.seconds)
