"""Options shared by the commands, and how they become library arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from transfer_automl.paths import CACHE_ENV, cache_dir

CacheDir = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help=f"Cache root (backbones, features, runs, default KB); default "
                        f"${CACHE_ENV} or ~/.cache/transfer-automl.")]
KB = Annotated[Optional[str], typer.Option(
    "--kb", help="Knowledge base: SQLite path or SQLAlchemy URL (default: CACHE/kb.sqlite).")]
NoKB = Annotated[bool, typer.Option("--no-kb", help="Search without a knowledge base.")]
ExecutorName = Annotated[str, typer.Option("--executor", help="local or spark.")]
SparkMaster = Annotated[Optional[str], typer.Option(
    "--spark-master", help="Spark master URL (default local[*]).")]


def cache_root(option: Optional[Path]) -> Path:
    """--cache-dir, else the library's cache root (``$TRANSFER_AUTOML_CACHE``, ...)."""
    return cache_dir(option)


def kb_arg(kb: Optional[str], no_kb: bool):
    """The ``kb`` argument of the library for --kb / --no-kb."""
    return False if no_kb else kb


def executor_arg(executor: str, spark_master: Optional[str]) -> str:
    """The ``executor`` argument of the library for --executor / --spark-master."""
    if executor not in ("local", "spark"):
        raise typer.BadParameter(f"expected local or spark, got {executor!r}",
                                 param_hint="--executor")
    if executor == "spark" and spark_master:
        return spark_master
    return executor
