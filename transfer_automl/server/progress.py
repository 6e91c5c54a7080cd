"""Live progress of a search as one JSON snapshot: trials, best so far, per-trial status and
diagnosis, and the best-accuracy-against-trials curve the page draws.

The worker feeds every :class:`~transfer_automl.search.SearchEvent` to :class:`Progress`;
each snapshot replaces the previous one in the job's row, and the server pushes it to the page.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from transfer_automl.tracking import Tracker

Snapshot = dict[str, Any]


class Progress(Tracker):
    """Builds snapshots from search events and hands them to ``publish``.

    Epoch events come fast on cached features, so they are published at most every
    ``min_interval_s``; every other event is published at once.

    Args:
        max_trials: the job's trial budget (for "trial n of N").
        publish: called with each new snapshot.
        min_interval_s: least time between two snapshots caused by epoch events.
    """

    def __init__(self, max_trials: int, publish: Callable[[Snapshot], None],
                 min_interval_s: float = 1.0) -> None:
        self.max_trials, self.publish, self.min_interval_s = max_trials, publish, min_interval_s
        self.message = ""
        self.order: list[str] = []  # finished trials in the order they ended
        self.version = 0
        self._last = 0.0

    def on_event(self, event) -> None:
        study = event.study
        if event.kind == "planned":
            self.message = event.message
            restored = sorted(study.finished, key=lambda r: r.spec.number)
            self.order = [r.spec.trial_id for r in restored]
        elif event.kind == "finished" and event.trial.spec.trial_id not in self.order:
            self.order.append(event.trial.spec.trial_id)
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
            "trials": rows,
            "curve": self._curve(study),
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
