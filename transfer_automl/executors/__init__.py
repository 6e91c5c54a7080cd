"""Executors run trials; the search loop only talks to the :class:`Executor` interface."""

from transfer_automl.executors.base import Event, Executor, TrialContext
from transfer_automl.errors import InputError
from transfer_automl.executors.local import LocalExecutor

__all__ = ["Event", "Executor", "TrialContext", "LocalExecutor", "SparkExecutor",
           "make_executor"]

#: Executor names; a string starting like a Spark master URL selects Spark on that master.
EXECUTORS = ("local", "spark")
_SPARK_MASTERS = ("spark://", "local[", "local-cluster[", "yarn", "k8s://", "mesos://")


def __getattr__(name: str):
    # SparkExecutor is imported on first use so that importing executors never loads pyspark.
    if name == "SparkExecutor":
        from transfer_automl.executors.spark import SparkExecutor

        return SparkExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_executor(executor: "str | Executor", n_parallel: int = 1,
                  spark_master: str | None = None) -> Executor:
    """``"local"`` (``n_parallel`` worker processes), ``"spark"`` (``local[*]``), a Spark
    master URL, or an :class:`Executor` passed through; ``spark_master`` runs Spark on that
    master (with ``executor`` left at ``"local"``, or ``"spark"``)."""
    if spark_master is not None:
        if not isinstance(spark_master, str) or not spark_master.startswith(_SPARK_MASTERS):
            raise InputError(f"spark_master: expected a Spark master URL (spark://host:port, "
                             f"local[n], yarn, k8s://...), got {spark_master!r}")
        if executor not in ("local", "spark", spark_master):
            raise InputError(f"spark_master={spark_master!r} runs trials on Spark: it does not "
                             f"go with executor={executor!r}")
        executor = spark_master
    if isinstance(executor, Executor):
        return executor
    if executor == "local":
        return LocalExecutor(n_parallel=n_parallel)
    if executor == "spark" or (isinstance(executor, str) and executor.startswith(_SPARK_MASTERS)):
        from transfer_automl.executors.spark import SparkExecutor

        return SparkExecutor(spark_master="local[*]" if executor == "spark" else executor)
    raise InputError(f"executor: expected one of {list(EXECUTORS)}, a Spark master URL "
                     f"(spark://host:port, local[n]) or an Executor, got {executor!r}")
