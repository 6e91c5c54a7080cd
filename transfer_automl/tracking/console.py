"""Progress of a search as plain lines: what ``fit_auto(verbose=True)`` prints.

One line when the search is planned, one per finished trial (its state and score, the best so
far), each headed by the shared :func:`clock` (elapsed, budget left, estimated time to the
end, trial n/N). The command line's display uses the same head, with a live status line.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from transfer_automl.diagnosis import Verdict, diagnose_trial
from transfer_automl.tracking.base import Tracker


def eta_s(event, max_trials: int | None, time_budget_s: float | None) -> float | None:
    """Estimated seconds until the search ends: the trials still to run at the mean cost of
    the finished ones, never more than the budget left (None when nothing bounds it)."""
    left = None if time_budget_s is None else max(0.0, time_budget_s - event.elapsed)
    finished = [r.result.seconds for r in event.study.finished if r.result is not None]
    if max_trials is None or not finished:
        return left
    to_run = max(0, max_trials - len(event.study.finished))
    estimate = to_run * sum(finished) / len(finished)
    return estimate if left is None else min(estimate, left)


def clock(event, max_trials: int | None, time_budget_s: float | None) -> str:
    """``[  45s, 855s left, ETA 5m] trial 3/20``: where the search is, in one head."""
    parts = [f"{event.elapsed:5.0f}s"]
    if time_budget_s:
        parts.append(f"{max(0.0, time_budget_s - event.elapsed):.0f}s left")
    eta = eta_s(event, max_trials, time_budget_s)
    if eta is not None:
        parts.append(f"ETA {_duration(eta)}")
    trial = f" trial {event.trial.spec.number + 1}" if event.trial is not None else ""
    return f"[{', '.join(parts)}]{trial}" + (f"/{max_trials}" if trial and max_trials else "")


def live_diagnosis(event, shown: dict):
    """For an epoch of a running trial: ``(diagnosis, stop suggestion or None)`` when its
    diagnosis differs from the last one shown (recorded in ``shown``), else None. The
    suggestion names the command that accepts it."""
    record = event.trial
    config = record.spec.config
    if config.get("optimizer") == "lbfgs":  # one exact solve: its finished line says it
        return None
    verdict = diagnose_trial(config, record.epochs)
    tid = record.spec.trial_id
    if verdict.verdict is Verdict.TOO_SHORT or shown.get(tid) == verdict.verdict:
        return None
    shown[tid] = verdict.verdict
    suggestion = verdict.stop_suggestion()
    if suggestion and len(record.epochs) >= int(config.get("epochs") or 0):
        suggestion = None  # its last epoch: nothing left to stop
    if suggestion:
        run = getattr(event.study, "run_id", "") or "RUN_ID"
        suggestion += f"; accept: transfer-automl tune {run} {tid} --stop"
    return verdict, suggestion


def _duration(seconds: float) -> str:
    return f"{seconds:.0f}s" if seconds < 90 else f"{seconds / 60:.0f}m"


class ConsoleProgress(Tracker):
    """Plain progress lines on ``stream`` (standard error by default)."""

    def __init__(self, max_trials: int | None, time_budget_s: float | None,
                 stream: TextIO | None = None) -> None:
        self.max_trials, self.time_budget_s = max_trials, time_budget_s
        self.stream = stream
        self._verdicts: dict = {}  # trial id -> the last diagnosis shown for it

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)

    def on_planned(self, event) -> None:
        self._print(event.message)

    def on_epoch(self, event) -> None:
        changed = live_diagnosis(event, self._verdicts)
        if changed is not None:
            verdict, suggestion = changed
            self._print(f"{clock(event, self.max_trials, self.time_budget_s)} "
                        f"{event.trial.spec.trial_id} epoch {event.trial.epochs[-1].epoch}: "
                        f"[{verdict.light}] {verdict}" + (f" | suggest: {suggestion}"
                                                          if suggestion else ""))

    def on_trial_finished(self, event) -> None:
        record, best = event.trial, event.study.best()
        res = record.result
        score = f"{res.score:.4f}" if res.score is not None else "-"
        why = f" ({res.reason})" if res.reason else ""
        best_text = f"{best.result.score:.4f}" if best else "-"
        self._print(f"{clock(event, self.max_trials, self.time_budget_s)} "
                    f"{record.spec.trial_id} {res.state.value}{why}: val_acc {score} in "
                    f"{res.seconds:.1f}s | best so far {best_text}")

    def close(self, status: str, result: Any = None) -> None:
        if result is not None:
            self._print(f"search {status}: {result!r}")
        else:
            self._print(f"search {status}")
