"""What runs inside a Spark task: one trial, with a runner cached in the Python worker.

Spark reuses Python workers between tasks (``spark.python.worker.reuse``), so a module-level
cache keeps TensorFlow, the dataset and loaded backbones alive from one trial to the next in
the same worker process. This module is imported on executors; it imports pyspark only to read the task's attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from transfer_automl.executors._spark_metrics import SocketReporter
from transfer_automl.executors.base import TrialFn, call_trial, failed_result
from transfer_automl.trial import TrialContext, TrialResult, TrialSpec

log = logging.getLogger(__name__)


# One runner per worker process, keyed by the run's context; a new run replaces it.
_RUNNERS: dict[TrialContext, object] = {}


@dataclass(frozen=True)
class TaskArgs:
    """Everything one trial's task needs; small and picklable."""

    spec: TrialSpec
    context: TrialContext
    metrics_address: tuple[str, int]
    token: str
    trial_fn: TrialFn | None = None
    attempt: int = 0


def run_partition(args: TaskArgs, rows: Iterable) -> Iterator[TrialResult]:
    """The ``mapPartitions`` function of a trial's one-partition job."""
    for _ in rows:  # drain the input: Spark only reuses a worker whose input was consumed
        pass
    yield run_trial(args)


def run_trial(args: TaskArgs) -> TrialResult:
    """Run one trial and return its result; only a dying process escapes."""
    reporter = SocketReporter(args.metrics_address, args.token, attempt=args.attempt,
                              task_attempt=_task_attempt())
    reporter.trial_id = args.spec.trial_id
    try:
        if args.trial_fn is not None:
            return call_trial(args.trial_fn, args.spec, args.context, reporter)
        try:
            runner = _runner(args.context)
        except Exception as exc:  # e.g. a missing manifest: the trial fails, the search goes on
            log.warning("trial %s: cannot set up the runner", args.spec.trial_id, exc_info=True)
            return failed_result(args.spec, f"{type(exc).__name__}: {exc}")
        return runner.run(args.spec, reporter)
    finally:
        reporter.close()


def _task_attempt() -> int:
    """Spark's attempt number of the running task: above 0 when Spark re-ran it, as it does
    on its own when an executor is lost."""
    try:
        from pyspark import TaskContext

        task = TaskContext.get()
        return task.attemptNumber() if task is not None else 0
    except ImportError:
        return 0


def _runner(context: TrialContext):
    if context not in _RUNNERS:
        from transfer_automl import quiet

        quiet.tensorflow()
        from transfer_automl.training import TrialRunner

        _RUNNERS.clear()
        _RUNNERS[context] = TrialRunner(context)
    return _RUNNERS[context]
