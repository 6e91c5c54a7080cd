"""The executor interface: run trial specs somewhere, stream their events back."""

from __future__ import annotations

import abc

from transfer_automl.trial import EpochMetrics, TrialContext, TrialResult, TrialSpec

Event = EpochMetrics | TrialResult


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

    @abc.abstractmethod
    def close(self) -> None:
        """Release workers. Idempotent."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
