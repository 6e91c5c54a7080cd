"""The pruner interface: a pure decision from one running trial and the finished ones."""

from __future__ import annotations

import abc
from collections.abc import Sequence

from transfer_automl.study import TrialRecord


class Pruner(abc.ABC):
    """Decides whether a running trial should stop, after each of its epochs."""

    @abc.abstractmethod
    def prune(self, trial: TrialRecord, finished: Sequence[TrialRecord]) -> str | None:
        """Return the reason to stop ``trial`` now, or None to let it run.

        Args:
            trial: the running trial, with the epochs reported so far.
            finished: every finished trial of the search (complete, pruned or failed).
        """


def value_at(record: TrialRecord, epoch: int) -> float | None:
    """Best validation accuracy of ``record`` up to and including ``epoch`` (1-based)."""
    values = [e.val_accuracy for e in record.epochs if e.epoch <= epoch]
    return max(values) if values else None
