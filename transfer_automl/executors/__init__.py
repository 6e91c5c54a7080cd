"""Executors run trials; the search loop only talks to the :class:`Executor` interface."""

from transfer_automl.executors.base import Event, Executor, TrialContext
from transfer_automl.executors.local import LocalExecutor

__all__ = ["Event", "Executor", "TrialContext", "LocalExecutor"]
