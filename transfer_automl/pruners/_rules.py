"""Stop rules: the median rule, asynchronous successive halving, the learning-curve judge."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from transfer_automl.diagnosis import diagnose, is_diverging
from transfer_automl.pruners.base import Pruner, value_at
from transfer_automl.study import TrialRecord
from transfer_automl.trial import TrialState


class MedianPruner(Pruner):
    """Stop a trial whose best value so far is below the median of completed trials at the
    same epoch (Google Vizier's median stopping rule).

    Args:
        min_epochs: epochs a trial always gets.
        min_trials: finished trials with that many epochs needed before the rule applies.
    """

    def __init__(self, min_epochs: int = 3, min_trials: int = 3) -> None:
        self.min_epochs = min_epochs
        self.min_trials = min_trials

    def prune(self, trial: TrialRecord, finished: Sequence[TrialRecord]) -> str | None:
        epoch = len(trial.epochs)
        if epoch < self.min_epochs:
            return None
        # Peers are trials that ran to completion, as in Vizier and Optuna: counting pruned
        # trials would drag the median down and let weak trials run on.
        others = [v for r in finished if r.state == TrialState.COMPLETE and len(r.epochs) >= epoch
                  for v in [value_at(r, epoch)] if v is not None]
        if len(others) < self.min_trials:
            return None
        median = statistics.median(others)
        mine = value_at(trial, epoch)
        if mine is not None and mine < median:
            return f"median rule: {mine:.4f} < median {median:.4f} at epoch {epoch}"
        return None


class ASHAPruner(Pruner):
    """Asynchronous successive halving: at rung epochs ``min_epochs * eta**k`` a trial goes on
    only if it is in the top ``1/eta`` of all trials that reached that rung.

    Args:
        min_epochs: the first rung.
        eta: reduction factor.
    """

    def __init__(self, min_epochs: int = 2, eta: int = 3) -> None:
        self.min_epochs = min_epochs
        self.eta = eta

    def rungs(self, max_epochs: int) -> list[int]:
        out, r = [], self.min_epochs
        while r < max_epochs:
            out.append(r)
            r *= self.eta
        return out

    def prune(self, trial: TrialRecord, finished: Sequence[TrialRecord]) -> str | None:
        epoch = len(trial.epochs)
        if epoch not in self.rungs(trial.spec.config.get("epochs", epoch + 1)):
            return None
        peers = [v for r in finished if len(r.epochs) >= epoch
                 for v in [value_at(r, epoch)] if v is not None]
        mine = value_at(trial, epoch)
        if mine is None or len(peers) + 1 < self.eta:
            return None
        ranked = sorted(peers + [mine], reverse=True)
        keep = max(1, len(ranked) // self.eta)
        if mine < ranked[keep - 1]:
            return f"ASHA: not in the top 1/{self.eta} at rung epoch {epoch}"
        return None


class CurvePruner(Pruner):
    """Stop trials whose own curve says more epochs will not help: diverging, or stalled
    (no validation improvement for ``patience`` epochs)."""

    def __init__(self, patience: int = 5) -> None:
        self.patience = patience

    def prune(self, trial: TrialRecord, finished: Sequence[TrialRecord]) -> str | None:
        epochs = trial.epochs
        if epochs and is_diverging(epochs):
            return f"diverging: {diagnose(epochs).advice}"
        if len(epochs) > self.patience:
            val = [e.val_accuracy for e in epochs]
            if max(val[-self.patience:]) <= max(val[:-self.patience]):
                return f"stalled: no validation improvement in {self.patience} epochs"
        return None


class AnyPruner(Pruner):
    """Stops a trial as soon as one of several pruners would."""

    def __init__(self, *pruners: Pruner) -> None:
        self.pruners = pruners

    def prune(self, trial: TrialRecord, finished: Sequence[TrialRecord]) -> str | None:
        for pruner in self.pruners:
            reason = pruner.prune(trial, finished)
            if reason:
                return reason
        return None
