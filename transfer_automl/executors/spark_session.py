"""Getting a SparkSession for trials, and reading Spark's job failures."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import sys
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


def default_conf() -> dict[str, str]:
    """Spark settings trials need. They fill in what the Spark configuration does not already
    say (``spark-submit --conf``, ``spark-defaults.conf``); a user's ``spark_conf`` overrides
    both."""
    return {
        "spark.ui.enabled": "false",
        # One job per trial: Spark's console bar would interleave with the search's own
        # progress output, and says less (a trial's stage is one task).
        "spark.ui.showConsoleProgress": "false",
        # Workers (and the TrialRunner cached in them) survive from one task to the next.
        "spark.python.worker.reuse": "true",
        # A crashed task is retried by the executor (``retries``), which knows it is a trial.
        "spark.task.maxFailures": "1",
        "spark.python.worker.faulthandler.enabled": "true",
    }


#: Masters whose executors run on this machine, so they can run the driver's interpreter.
_LOCAL_MASTER = re.compile(r"^local(-cluster)?(\[|$)")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def runs_here(master: str) -> bool:
    """Whether ``master`` runs its executors on this machine: ``local[...]``,
    ``local-cluster[...]``, or a standalone master on a loopback address or this host."""
    if _LOCAL_MASTER.match(master):
        return True
    if not master.startswith("spark://"):
        return False  # yarn, k8s://, mesos://: executors are elsewhere
    hosts = [h.rsplit(":", 1)[0] for h in master[len("spark://"):].split(",")]
    here = {*_LOCAL_HOSTS, socket.gethostname(), socket.getfqdn()}
    with contextlib.suppress(OSError):
        here.add(socket.gethostbyname(socket.gethostname()))
    return all(h in here for h in hosts)


def executor_python(master: str, conf: Mapping[str, str] | None = None) -> str | None:
    """The Python interpreter executors start their Python workers with.

    pyspark takes it from the driver's ``PYSPARK_PYTHON`` when the context starts, and every
    executor runs that path (or, when unset, ``python3`` from its own ``PATH``). In order:
    ``spark.pyspark.python`` in ``conf``; ``PYSPARK_PYTHON`` in the environment (``spark-submit``
    sets it from its ``--conf spark.pyspark.python``); the driver's own interpreter when the
    executors run on this machine (:func:`runs_here`); else None, leaving Spark's default,
    since the driver's path means nothing on another node.
    """
    chosen = (conf or {}).get("spark.pyspark.python") or os.environ.get("PYSPARK_PYTHON")
    if chosen:
        return chosen
    return sys.executable if runs_here(master) else None


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


def get_or_create(master: str | None, conf: Mapping[str, str] | None = None,
                  defaults: Mapping[str, str] | None = None):
    """Return ``(session, created)``: the active session if there is one, else a new one.

    Args:
        master: the master URL; None takes the Spark configuration's (as under
            ``spark-submit --master``).
        conf: settings applied as given.
        defaults: settings applied only where the Spark configuration (``spark-submit``,
            ``spark-defaults.conf``) and ``conf`` say nothing.

    pyspark reads ``PYSPARK_PYTHON`` from the environment when the context starts, so it is set
    for that moment only, to :func:`executor_python`'s choice.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    conf = dict(conf or {})
    # pyspark has no public "is a context running" query; this attribute is what it checks.
    existing = SparkContext._active_spark_context
    if existing is not None:
        if master and existing.master != master:
            log.warning("using the running Spark context (master %s), not %s",
                        existing.master, master)
        return SparkSession.builder.getOrCreate(), False
    # the JVM first (pyspark's own step of starting a context, a no-op under spark-submit):
    # only a SparkConf made with it reads spark-submit's settings and spark-defaults.conf
    SparkContext._ensure_initialized()
    given = SparkConf()
    master = master or given.get("spark.master", None) or "local[*]"
    builder = SparkSession.builder.master(master).appName(
        given.get("spark.app.name", None) or "transfer-automl")
    for key, value in (defaults or {}).items():
        # pyspark's launcher turns the console bar on for its "shell": not the user's choice
        deferred = key != "spark.ui.showConsoleProgress" and given.contains(key)
        if key not in conf and not deferred:
            builder = builder.config(key, str(value))
    for key, value in conf.items():
        builder = builder.config(key, str(value))
    python = executor_python(master, conf)
    if python is None:
        log.info("executors on %s start Python workers with their own python3 (set "
                 "PYSPARK_PYTHON or spark.pyspark.python to choose another)", master)
        return builder.getOrCreate(), True
    with _environ(PYSPARK_PYTHON=python):
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
