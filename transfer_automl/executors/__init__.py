"""Executors run trials; the search loop only talks to the :class:`Executor` interface."""

from transfer_automl.executors.base import Event, Executor, TrialContext
from transfer_automl.executors.local import LocalExecutor

__all__ = ["Event", "Executor", "TrialContext", "LocalExecutor", "SparkExecutor"]


def __getattr__(name: str):
    # SparkExecutor is imported on first use so that importing executors never loads pyspark.
    if name == "SparkExecutor":
        from transfer_automl.executors.spark import SparkExecutor

        return SparkExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
