"""The driver loop: keep every slot busy, route events to the study, enforce budgets."""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from transfer_automl.executors.base import Executor
from transfer_automl.pruners.base import Pruner
from transfer_automl.study import Study, TrialRecord
from transfer_automl.trial import EpochMetrics, TrialContext, TrialResult, TrialSpec
from transfer_automl.tuning import ControlInbox

log = logging.getLogger(__name__)


class EventKind(str, enum.Enum):
    """What a :class:`SearchEvent` reports (equal to its value as a string)."""

    PLANNED = "planned"
    STARTED = "started"
    EPOCH = "epoch"
    FINISHED = "finished"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class SearchEvent:
    """Something the user may want to see: the plan, a trial started, an epoch, a trial ended."""

    kind: EventKind
    trial: TrialRecord | None
    study: Study
    elapsed: float
    message: str = ""


Callback = Callable[[SearchEvent], None]


@dataclass(frozen=True)
class Budget:
    """Limits of one search.

    Attributes:
        max_trials: trials to start at most (None: as many as the time budget allows).
        time_budget_s: wall-clock seconds for the whole search; running trials are asked to
            stop when it runs out and killed ``grace_s`` later.
        trial_timeout_s: seconds one trial may run before it is killed (None: no limit).
        grace_s: how long a trial asked to stop may take to finish its epoch, at least: a
            trial whose epochs are slower gets twice its slowest epoch (it stops at the end
            of the epoch it is in when asked, which may have just begun).
    """

    max_trials: int | None
    time_budget_s: float
    trial_timeout_s: float | None = None
    grace_s: float = 60.0


def run_search(study: Study, executor: Executor, context: TrialContext, budget: Budget,
               on_event: Callback | None = None, poll_s: float = 0.5,
               pruner: Pruner | None = None,
               finale: Callable[[Study], Sequence[TrialSpec]] | None = None,
               clock: Callable[[], float] = time.monotonic,
               controls: ControlInbox | None = None) -> dict[str, TrialResult]:
    """Run trials until the trial budget is spent or time is up, then wait for the rest.

    Args:
        study: asks for configurations and records results.
        executor: runs the trials.
        context: what every trial needs (dataset manifest, caches, run directory).
        budget: trial and time limits.
        on_event: called with every :class:`SearchEvent`.
        poll_s: how long one poll of the executor waits for events.
        pruner: decides after each epoch whether a running trial stops early.
        finale: given the finished study, the specs of trials to run after the search on
            the same executor (the refit of the best configuration): outside the study and
            the trial budget, never pruned, killed only by ``budget.trial_timeout_s``.
        clock: seconds, the time every budget and timeout is read from. An executor that
            simulates its trials on a virtual clock (a replay of recorded trials) passes its
            own, so the same loop schedules them in simulated time.
        controls: live-tuning requests for running trials (see :mod:`transfer_automl.tuning`),
            taken between polls: changes go to the executor, stops to the trial as a
            pruner's would; every request gets an answer.

    Returns:
        The results of the finale's trials, by trial id.
    """
    return _Driver(study, executor, budget, on_event, pruner, clock, controls).run(
        context, poll_s, finale)


class _Driver:
    """The loop's state: when it started and which trials were asked to stop."""

    def __init__(self, study: Study, executor: Executor, budget: Budget,
                 on_event: Callback | None, pruner: Pruner | None,
                 clock: Callable[[], float] = time.monotonic,
                 controls: ControlInbox | None = None) -> None:
        self.study, self.executor, self.budget, self.pruner = study, executor, budget, pruner
        self.emit = on_event or (lambda event: None)
        self.stopping: dict[str, tuple[float, str]] = {}
        self.controls = controls
        self.sent: dict[str, list[str]] = {}  # trial id -> live-tuning requests not yet applied
        self.clock = clock
        self.start = clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def _emit(self, kind: EventKind, record: TrialRecord) -> None:
        self.emit(SearchEvent(kind, record, self.study, self.elapsed()))

    def run(self, context: TrialContext, poll_s: float, finale=None) -> dict[str, TrialResult]:
        self.executor.start(context)
        try:
            while True:
                self._fill_slots()
                if not self.study.running:
                    break
                for event in self.executor.poll(poll_s):
                    self._route(event)
                self._enforce()
                self._take_controls()
            return self._run_after(list(finale(self.study)) if finale else [], poll_s)
        finally:
            self.executor.close()

    def _run_after(self, specs: list[TrialSpec], poll_s: float) -> dict[str, TrialResult]:
        """Run ``specs`` outside the study, as many at once as the executor has slots."""
        waiting, running, results = list(specs), {}, {}
        while waiting or running:
            while waiting and len(running) < self.executor.n_slots:
                spec = waiting.pop(0)
                self.executor.submit(spec)
                running[spec.trial_id] = self.clock()
            for event in self.executor.poll(poll_s):
                if isinstance(event, TrialResult) and event.trial_id in running:
                    del running[event.trial_id]
                    results[event.trial_id] = event
            limit = self.budget.trial_timeout_s
            for trial_id, started in list(running.items()):
                if limit and self.clock() - started > limit:
                    self.executor.kill(trial_id, f"timed out after {limit:.0f} s")
                    running[trial_id] = float("inf")  # killed once; its result follows
        return results

    def _fill_slots(self) -> None:
        study = self.study
        while (self.elapsed() < self.budget.time_budget_s - self._start_margin()
               and len(study.running) < self.executor.n_slots
               and (self.budget.max_trials is None
                    or len(study.trials) < self.budget.max_trials)):
            spec = study.ask()
            study.trials[spec.trial_id].started = self.clock()
            self.executor.submit(spec)
            self._emit(EventKind.STARTED, study.trials[spec.trial_id])

    def _start_margin(self) -> float:
        """Seconds before the budget's end after which no trial starts: the median cost of
        the last five finished trials, at most a minute (a trial started later would mostly
        run past the budget, its feature extraction unstoppable)."""
        costs = sorted(r.result.seconds for r in self.study.finished[-5:] if r.result)
        return min(60.0, costs[len(costs) // 2]) if costs else 0.0

    def _take_controls(self) -> None:
        """Forward live-tuning requests to their running trials and answer each."""
        if self.controls is None:
            return
        running = {r.spec.trial_id for r in self.study.running}
        for request in self.controls.take():
            trial_id, answer = request.trial_id, self.controls.answer
            if trial_id not in running:
                record = self.study.trials.get(trial_id)
                why = "it has finished" if record is not None else "the run has no such trial"
                answer(request.request_id, "rejected", f"{trial_id} is not running: {why}")
            elif request.stop:
                if trial_id not in self.stopping:
                    self._stop(trial_id, request.stop)
                answer(request.request_id, "stopping",
                       f"{trial_id} stops after its current epoch")
            elif self.executor.tune(trial_id, request.changes):
                self.sent.setdefault(trial_id, []).append(request.request_id)
                answer(request.request_id, "sent",
                       f"{trial_id} applies it at its next epoch boundary")
            else:
                answer(request.request_id, "rejected",
                       f"the {type(self.executor).__name__} cannot change running trials")

    def _answer_applied(self, event: EpochMetrics) -> None:
        if self.controls is None or not self.sent.get(event.trial_id):
            return
        changes = {k: v for k, v in event.tuned.items() if k not in ("from_epoch", "ignored")}
        ignored = event.tuned.get("ignored") or {}
        note = "; ".join(f"{k} ignored: {why}" for k, why in ignored.items())
        detail = ", ".join(f"{k}={v:g}" for k, v in changes.items())
        start = event.tuned.get("from_epoch", event.epoch)
        for request_id in self.sent.pop(event.trial_id):
            self.controls.answer(request_id, "applied", f"{detail} from epoch {start}"
                                 + (f" ({note})" if note else ""), start)

    def _answer_unapplied(self, result: TrialResult) -> None:
        if self.controls is None:
            return
        for request_id in self.sent.pop(result.trial_id, []):
            self.controls.answer(request_id, "not applied",
                                 f"{result.trial_id} ended ({result.state.value}) before an "
                                 f"epoch boundary where it could apply the change")

    def _route(self, event) -> None:
        study = self.study
        if isinstance(event, EpochMetrics):
            record = study.trials.get(event.trial_id)
            if record is None or record.state.finished:
                return
            if event.tuned:
                self._answer_applied(event)
            study.report(event)
            self._emit(EventKind.EPOCH, record)
            if self.pruner is not None and event.trial_id not in self.stopping:
                reason = self.pruner.prune(record, study.finished)
                if reason:
                    self._stop(event.trial_id, reason)
        elif isinstance(event, TrialResult):
            self._answer_unapplied(event)
            study.tell(event)
            self._emit(EventKind.FINISHED, study.trials[event.trial_id])

    def _stop(self, trial_id: str, reason: str) -> None:
        self.stopping[trial_id] = (self.clock(), reason)
        self.executor.stop(trial_id, reason)

    def _enforce(self) -> None:
        """Stop trials past the time budget; kill those past their grace or their timeout."""
        now, budget = self.clock(), self.budget
        for record in self.study.running:
            trial_id = record.spec.trial_id
            if budget.trial_timeout_s and now - record.started > budget.trial_timeout_s:
                self.executor.kill(trial_id, f"timed out after {budget.trial_timeout_s:.0f} s")
            elif (now - self.start >= budget.time_budget_s - _mean_epoch(record)
                  and trial_id not in self.stopping):
                # asked one epoch early: the epoch in progress then ends near the budget
                self._stop(trial_id, "time budget reached")
            elif trial_id in self.stopping:
                asked, reason = self.stopping[trial_id]
                grace = self._grace(record)
                if now - asked > grace:
                    self.executor.kill(trial_id, f"{reason}; killed after {grace:.0f} s grace")

    def _grace(self, record) -> float:
        """Seconds a trial asked to stop gets to finish: ``grace_s``, or twice its slowest
        epoch so far if that is longer, so a slow trial is pruned rather than killed."""
        slowest = max((e.seconds for e in record.epochs), default=0.0)
        return max(self.budget.grace_s, 2.0 * slowest)


def _mean_epoch(record) -> float:
    """Mean seconds of a running trial's epochs so far (0 before its first)."""
    epochs = record.epochs
    return sum(e.seconds for e in epochs) / len(epochs) if epochs else 0.0
