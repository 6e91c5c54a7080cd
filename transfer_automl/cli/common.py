"""Options shared by the commands, and how they become library arguments."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import enum

import typer

from transfer_automl.options import WarmStartMode
from transfer_automl.paths import CACHE_ENV, cache_dir

CacheDir = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help=f"Cache root (backbones, features, runs, default KB); default "
                        f"${CACHE_ENV} or ~/.cache/transfer-automl.")]
KB = Annotated[Optional[str], typer.Option(
    "--kb", help="Knowledge base: SQLite path or SQLAlchemy URL (default: CACHE/kb.sqlite).")]
NoKB = Annotated[bool, typer.Option("--no-kb", help="Search without a knowledge base.")]


class ExecutorChoice(str, enum.Enum):
    LOCAL = "local"
    SPARK = "spark"


#: The warm-start modes a user chooses from (``points+history`` is what ``auto`` resolves to).
WarmStartChoice = enum.Enum("WarmStartChoice", {m.name: m.value for m in WarmStartMode
                                                if m is not WarmStartMode.POINTS_HISTORY},
                            type=str)

ExecutorName = Annotated[Optional[ExecutorChoice], typer.Option(
    "--executor", help="Where trials run: local worker processes or Spark tasks (default: "
                       "local; spark when --spark-master is given).", show_default=False)]
WarmStart = Annotated[WarmStartChoice, typer.Option(
    "--warm-start", help="What the knowledge base contributes: auto (prior points, and prior "
                         "trials unless the dataset is far from all known ones), none, "
                         "points or history.")]
SparkMaster = Annotated[Optional[str], typer.Option(
    "--spark-master", help="Spark master URL: spark://HOST:PORT (a standalone cluster, see "
                           "'transfer-automl cluster'), local[N], yarn, k8s://...; implies "
                           "--executor spark (default with --executor spark: local[*]).")]


#: The loggers of the project's packages. They only log; the command line sets their level
#: (and ``main`` the handler), as a library must leave that to its application.
LOGGERS = ("transfer_automl", "knowledge_base", "pretrained")
#: Message format of the handler ``main`` installs on the root logger (stderr).
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def set_verbosity(quiet: bool, verbose: bool) -> int:
    """The project's log level for -q/--quiet (warnings and errors only), -v/--verbose
    (debug) or neither (info); other libraries' loggers stay at warnings."""
    if quiet and verbose:
        raise typer.BadParameter("-q/--quiet and -v/--verbose exclude each other",
                                 param_hint="-q/--quiet")
    level = logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO
    for name in LOGGERS:
        logging.getLogger(name).setLevel(level)
    return level


def cache_root(option: Optional[Path]) -> Path:
    """--cache-dir, else the library's cache root (``$TRANSFER_AUTOML_CACHE``, ...)."""
    return cache_dir(option)


def kb_arg(kb: Optional[str], no_kb: bool):
    """The ``kb`` argument of the library for --kb / --no-kb."""
    return False if no_kb else kb


def executor_arg(executor: ExecutorChoice | str | None, spark_master: Optional[str]) -> str:
    """The ``executor`` argument of the library for --executor / --spark-master (which
    implies the Spark executor when --executor is not given)."""
    executor = getattr(executor, "value", executor)
    if executor is None:
        executor = "spark" if spark_master else "local"
    if spark_master and executor != "spark":
        raise typer.BadParameter("--spark-master runs trials on Spark: it does not go with "
                                 "--executor local", param_hint="--spark-master")
    if executor == "spark" and spark_master:
        return spark_master
    return executor


#: Hex digits of a fingerprint shown to tell datasets of one name apart.
SHORT_FINGERPRINT = 6


def dataset_labels(datasets) -> dict[int, str]:
    """``{id: "name (3fa2c1)"}`` for knowledge-base datasets: the name and the start of the
    fingerprint, with more digits where two datasets would otherwise share a label."""
    prints = {d.fingerprint for d in datasets}
    n, longest = SHORT_FINGERPRINT, max((len(f) for f in prints), default=0)
    while n < longest and len({f[:n] for f in prints}) < len(prints):
        n += 2
    return {d.id: f"{d.name} ({d.fingerprint[:n]})" for d in datasets}
