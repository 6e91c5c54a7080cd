"""Live progress of a search as one JSON snapshot: trials, best so far, per-trial status and
diagnosis, the best-accuracy-against-trials curve, per-epoch learning curves, the time left
and, once enough trials have finished, which hyperparameters mattered.

The worker feeds every :class:`~transfer_automl.search.SearchEvent` to :class:`Progress`;
each snapshot replaces the previous one in the job's row, and the server pushes it to the page.
A snapshot stays bounded: learning curves of at most :data:`MAX_CURVES` trials (every running
one first), each of at most :data:`MAX_POINTS` epochs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from transfer_automl.tracking import Tracker

log = logging.getLogger(__name__)

Snapshot = dict[str, Any]

#: learning curves kept in a snapshot: running trials, then the best and latest finished
MAX_CURVES = 20
#: epochs kept of one curve; a longer one is thinned evenly (its first and last kept)
MAX_POINTS = 100
#: finished trials needed before parameter importance is estimated
MIN_IMPORTANCE_TRIALS = 8


class Progress(Tracker):
    """Builds snapshots from search events and hands them to ``publish``.

    Epoch events come fast on cached features, so they are published at most every
    ``min_interval_s``; every other event is published at once.

    Args:
        max_trials: the job's trial budget (for "trial n of N").
        publish: called with each new snapshot.
        min_interval_s: least time between two snapshots caused by epoch events.
        time_budget_s: the search's time budget (for the time left and the ETA).
        n_parallel: trials run at once (for the ETA).
    """

    def __init__(self, max_trials: int, publish: Callable[[Snapshot], None],
                 min_interval_s: float = 1.0, time_budget_s: float | None = None,
                 n_parallel: int = 1) -> None:
        self.max_trials, self.publish, self.min_interval_s = max_trials, publish, min_interval_s
        self.time_budget_s, self.n_parallel = time_budget_s, max(1, n_parallel)
        self.message = ""
        self.order: list[str] = []  # finished trials in the order they ended
        self.importance: dict[str, Any] | None = None
        self.version = 0
        self._last = 0.0

    def on_event(self, event) -> None:
        study = event.study
        if event.kind == "planned":
            self.message = event.message
            restored = sorted(study.finished, key=lambda r: r.spec.number)
            self.order = [r.spec.trial_id for r in restored]
            self._update_importance(study)
        elif event.kind == "finished" and event.trial.spec.trial_id not in self.order:
            self.order.append(event.trial.spec.trial_id)
            self._update_importance(study)
        now = time.monotonic()
        if event.kind == "epoch" and now - self._last < self.min_interval_s:
            return
        self._last = now
        self.version += 1
        self.publish(self.snapshot(study, event.elapsed))

    def snapshot(self, study, elapsed: float) -> Snapshot:
        """The current state of the search as JSON-ready data."""
        rows = study.leaderboard()
        for row in rows:
            record = study.trials[row["trial"]]
            row["epochs"] = record.spec.config.get("epochs")
            row["number"] = record.spec.number + 1
        best = study.best()
        return {
            "version": self.version,
            "message": self.message,
            "max_trials": self.max_trials,
            "n_trials": len(study.trials),
            "n_finished": len(study.finished),
            "n_running": len(study.running),
            "best_score": best.result.score if best else None,
            "best_trial": best.spec.trial_id if best else None,
            "elapsed_s": round(elapsed, 1),
            "at": round(time.time(), 1),
            **self._timing(study, elapsed),
            "trials": rows,
            "curve": self._curve(study),
            "epoch_curves": epoch_curves(study, best.spec.trial_id if best else None),
            "importance": self.importance,
        }

    def _curve(self, study) -> list[dict[str, Any]]:
        """Best validation accuracy so far after each finished trial."""
        points, best = [], None
        for n, trial_id in enumerate(self.order, start=1):
            result = study.trials[trial_id].result
            score = result.score if result is not None else None
            if score is not None and (best is None or score > best):
                best = score
            points.append({"n": n, "trial": trial_id, "score": score, "best": best})
        return points

    def _timing(self, study, elapsed: float) -> dict[str, Any]:
        """The time budget, what is left of it, and an estimate of when the search ends:
        the trials still to run at the mean cost of the finished ones, never beyond the
        budget (None until a trial has finished)."""
        left = (max(0.0, self.time_budget_s - elapsed)
                if self.time_budget_s is not None else None)
        costs = [r.result.seconds for r in study.finished if r.result and r.result.seconds > 0]
        eta = None
        if costs and self.max_trials:
            mean = sum(costs) / len(costs)
            to_start = max(0, self.max_trials - len(study.trials))
            running = [mean - min(mean, time.monotonic() - r.started) for r in study.running]
            eta = (to_start * mean + sum(running)) / self.n_parallel
            if left is not None:
                eta = min(eta, left)
        return {"time_budget_s": self.time_budget_s,
                "budget_left_s": round(left, 1) if left is not None else None,
                "mean_trial_s": round(sum(costs) / len(costs), 1) if costs else None,
                "eta_s": round(eta, 1) if eta is not None else None}

    def _update_importance(self, study) -> None:
        """Random-forest importance of the hyperparameters (the one ``RunHistory`` computes
        for a run's pictures) over the finished trials, once there are enough of them."""
        from transfer_automl.history import RunHistory

        scored = [(r.spec, r.result, 0.0) for r in study.finished
                  if r.result is not None and r.result.score is not None]
        if len(scored) < MIN_IMPORTANCE_TRIALS:
            return
        try:
            weights = RunHistory("", scored).importance()
        except Exception:  # a picture, not the search: never let it stop the trials
            log.exception("parameter importance failed")
            return
        self.importance = {"n_trials": len(scored), "method": "random forest",
                           "weights": {k: round(v, 4) for k, v in weights.items()}}


def epoch_curves(study, best: str | None = None) -> list[dict[str, Any]]:
    """Validation accuracy per epoch of the running trials, the best trial and the latest
    finished ones: at most :data:`MAX_CURVES` curves of at most :data:`MAX_POINTS` points."""
    records = [r for r in study.trials.values() if r.epochs]
    running = [r for r in records if not r.state.finished]
    finished = sorted((r for r in records if r.state.finished),
                      key=lambda r: (r.spec.trial_id != best, -r.spec.number))
    out = []
    for record in (running + finished)[:MAX_CURVES]:
        points = [[e.epoch, round(e.val_accuracy, 4)] for e in record.epochs]
        out.append({"trial": record.spec.trial_id, "status": record.state.value,
                    "points": thin(points, MAX_POINTS)})
    out.sort(key=lambda c: c["trial"])
    return out


def thin(points: list, most: int) -> list:
    """At most ``most`` of ``points``, evenly spread, the first and the last kept."""
    if len(points) <= most:
        return points
    step = (len(points) - 1) / (most - 1)
    return [points[round(i * step)] for i in range(most)]
