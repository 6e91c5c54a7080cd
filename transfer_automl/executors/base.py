"""The executor interface: run trial specs somewhere, stream their events back."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping
from typing import Any

from transfer_automl.errors import TrialPruned
from transfer_automl.trial import EpochMetrics, TrialContext, TrialResult, TrialSpec, TrialState

Event = EpochMetrics | TrialResult

#: A custom trial: ``(spec, context, reporter) -> TrialResult``, where ``reporter(metrics)``
#: sends one epoch's metrics, raises :class:`TrialPruned` once the driver says stop, and
#: returns the live changes to apply from the next epoch (a mapping; None without any).
#: ``reporter.poll()`` returns such changes without sending metrics (between the epochs of
#: a trial that reports its epochs later, such as cross-validation folds in turn).
#: Picklable (module-level), since it runs in a worker. The default is ``TrialRunner``.
TrialFn = Callable[[TrialSpec, TrialContext, Callable[[EpochMetrics], None]], TrialResult]


def call_trial(trial_fn: TrialFn, spec: TrialSpec, context: TrialContext,
               reporter) -> TrialResult:
    """Call a custom trial function with the same guarantees as ``TrialRunner.run``: it
    always returns a result (pruned, failed with the reason, or its own)."""
    try:
        return trial_fn(spec, context, reporter)
    except TrialPruned as exc:
        return TrialResult(spec.trial_id, TrialState.PRUNED, reason=str(exc) or "stopped early")
    except MemoryError:
        return failed_result(spec, "out of memory")
    except Exception as exc:
        return failed_result(spec, f"{type(exc).__name__}: {exc}")


def failed_result(spec: TrialSpec, reason: str) -> TrialResult:
    return TrialResult(spec.trial_id, TrialState.FAILED, reason=reason)


class Executor(abc.ABC):
    """Runs trials asynchronously; the driver polls for their events.

    Implementations never import samplers or pruners: they only move specs out and
    events back, and honour stop and kill requests.
    """

    @property
    @abc.abstractmethod
    def n_slots(self) -> int:
        """How many trials can run at once."""

    @abc.abstractmethod
    def start(self, context: TrialContext) -> None:
        """Prepare workers for a run (may start processes)."""

    @abc.abstractmethod
    def submit(self, spec: TrialSpec) -> None:
        """Start ``spec`` on a free slot; the caller never submits more than ``n_slots``."""

    @abc.abstractmethod
    def poll(self, timeout: float) -> list[Event]:
        """Return the events that arrived, waiting at most ``timeout`` seconds for the first."""

    @abc.abstractmethod
    def stop(self, trial_id: str, reason: str) -> None:
        """Ask a running trial to stop after its current epoch (it reports a PRUNED result)."""

    @abc.abstractmethod
    def kill(self, trial_id: str, reason: str) -> None:
        """End a running trial now; a FAILED result with ``reason`` is reported."""

    def tune(self, trial_id: str, changes: Mapping[str, Any]) -> bool:
        """Pass live changes to a running trial, which applies them at its next epoch
        boundary; False when this executor cannot (the default) or the trial is not
        running."""
        return False

    @abc.abstractmethod
    def close(self) -> None:
        """Release workers. Idempotent."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
