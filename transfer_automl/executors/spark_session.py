"""Getting a SparkSession for trials, and reading Spark's job failures."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from collections.abc import Iterator, Mapping

log = logging.getLogger(__name__)

# Failures that say "the process or machine running the task went away", not "the trial broke":
# those are worth one more attempt elsewhere. Matched case-insensitively against Spark's error.
_LOST = re.compile(
    r"python worker exited unexpectedly|worker crashed|crashed \(|executorlostfailure"
    r"|executor lost|lost executor|executor .* exited|worker lost|connection reset"
    r"|broken pipe|eofexception|eoferror|end of stream|container killed|killed by external signal"
    r"|remote rpc client disassociated",
    re.IGNORECASE)
_CRASHED = re.compile(r"exited unexpectedly|crashed", re.IGNORECASE)


def default_conf(python: str) -> dict[str, str]:
    """Spark settings trials need; a user's ``spark_conf`` is applied on top of these."""
    return {
        "spark.ui.enabled": "false",
        # One job per trial: Spark's console bar would interleave with the search's own
        # progress output, and says less (a trial's stage is one task).
        "spark.ui.showConsoleProgress": "false",
        # Workers (and the TrialRunner cached in them) survive from one task to the next.
        "spark.python.worker.reuse": "true",
        "spark.pyspark.python": python,
        "spark.pyspark.driver.python": python,
        "spark.executorEnv.PYSPARK_PYTHON": python,
        # A crashed task is retried by the executor (``retries``), which knows it is a trial.
        "spark.task.maxFailures": "1",
        "spark.python.worker.faulthandler.enabled": "true",
    }


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of the block only."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def get_or_create(master: str, conf: Mapping[str, str], python: str):
    """Return ``(session, created)``: the active session if there is one, else a new one.

    pyspark reads ``PYSPARK_PYTHON`` from the environment when the context starts, so it is set
    for that moment only; the configuration carries it to executors.
    """
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    # pyspark has no public "is a context running" query; this attribute is what it checks.
    existing = SparkContext._active_spark_context
    if existing is not None:
        if existing.master != master:
            log.warning("using the running Spark context (master %s), not %s",
                        existing.master, master)
        return SparkSession.builder.getOrCreate(), False
    builder = SparkSession.builder.master(master).appName("transfer-automl")
    for key, value in conf.items():
        builder = builder.config(key, str(value))
    with _environ(PYSPARK_PYTHON=python, PYSPARK_DRIVER_PYTHON=python):
        return builder.getOrCreate(), True


def driver_host(sc) -> str:
    """The address executors reach the driver at."""
    host = sc.getConf().get("spark.driver.host", None)
    if host:
        return host
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def failure_reason(exc: BaseException) -> str:
    """One readable line from a failed Spark job's error (the task's own message if present)."""
    text = str(exc)
    marker = "most recent failure:"
    if marker in text:
        text = text.split(marker, 1)[1]
        # "Lost task 0.0 in stage 3.0 (TID 3) (host executor 1): <the message>"
        text = re.sub(r"^\s*Lost task [^:]*?\)\s*\([^)]*\):\s*", "", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    skip = ("An error occurred while calling", "Traceback")
    line = next((ln for ln in lines if not ln.startswith(skip)), lines[0] if lines else "")
    # "org.apache.spark.SparkException: Python worker exited unexpectedly (crashed): "
    line = re.sub(r"^:?\s*(?:[a-z_]\w*\.)+[A-Z]\w*(?:Exception|Error):\s*", "", line).rstrip(" :")
    if _CRASHED.search(line):
        line += " (killed by a signal, or out of memory?)"
    return (line or type(exc).__name__)[:300]


def looks_lost(exc: BaseException) -> bool:
    """Whether a failed job looks like a lost worker or executor (worth retrying)."""
    return bool(_LOST.search(str(exc)))
