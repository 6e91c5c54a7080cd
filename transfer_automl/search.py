"""The driver loop: keep every slot busy, route events to the study, enforce budgets."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from transfer_automl.executors.base import Executor, TrialContext
from transfer_automl.study import Study, TrialRecord
from transfer_automl.trial import EpochMetrics, TrialResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchEvent:
    """Something the user may want to see: the plan, a trial started, an epoch, a trial ended."""

    kind: str  # "planned" | "started" | "epoch" | "finished"
    trial: TrialRecord | None
    study: Study
    elapsed: float
    message: str = ""


Callback = Callable[[SearchEvent], None]


@dataclass(frozen=True)
class Budget:
    """Limits of one search.

    Attributes:
        max_trials: trials to start at most.
        time_budget_s: wall-clock seconds for the whole search; running trials are asked to
            stop when it runs out and killed ``grace_s`` later.
        trial_timeout_s: seconds one trial may run before it is killed (None: no limit).
        grace_s: how long a trial asked to stop may take to finish its epoch.
    """

    max_trials: int
    time_budget_s: float
    trial_timeout_s: float | None = None
    grace_s: float = 60.0


def run_search(study: Study, executor: Executor, context: TrialContext, budget: Budget,
               on_event: Callback | None = None, poll_s: float = 0.5) -> None:
    """Run trials until the trial budget is spent or time is up, then wait for the rest."""
    start = time.monotonic()
    emit = on_event or (lambda event: None)
    stopping: dict[str, float] = {}
    executor.start(context)
    try:
        while True:
            now = time.monotonic()
            in_time = now - start < budget.time_budget_s
            while (in_time and len(study.running) < executor.n_slots
                   and len(study.trials) < budget.max_trials):
                spec = study.ask()
                executor.submit(spec)
                emit(SearchEvent("started", study.trials[spec.trial_id], study, now - start))
            if not study.running:
                return
            for event in executor.poll(poll_s):
                _route(study, event, emit, time.monotonic() - start)
            _enforce(study, executor, budget, start, stopping)
    finally:
        executor.close()


def _route(study: Study, event, emit: Callback, elapsed: float) -> None:
    if isinstance(event, EpochMetrics):
        if event.trial_id in study.trials and not study.trials[event.trial_id].state.finished:
            study.report(event)
            emit(SearchEvent("epoch", study.trials[event.trial_id], study, elapsed))
    elif isinstance(event, TrialResult):
        study.tell(event)
        emit(SearchEvent("finished", study.trials[event.trial_id], study, elapsed))


def _enforce(study: Study, executor: Executor, budget: Budget, start: float,
             stopping: dict[str, float]) -> None:
    """Stop trials past the time budget; kill those past their grace or their timeout."""
    now = time.monotonic()
    for record in study.running:
        trial_id = record.spec.trial_id
        if budget.trial_timeout_s and now - record.started > budget.trial_timeout_s:
            executor.kill(trial_id, f"timed out after {budget.trial_timeout_s:.0f} s")
        elif now - start >= budget.time_budget_s and trial_id not in stopping:
            stopping[trial_id] = now
            executor.stop(trial_id, "time budget reached")
        elif trial_id in stopping and now - stopping[trial_id] > budget.grace_s:
            executor.kill(trial_id, "time budget reached; killed after the grace period")
