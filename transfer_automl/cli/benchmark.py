"""``transfer-automl benchmark SUITE [--quick] [options]``: run one benchmark suite.

The suites live in the top-level ``benchmarks`` package (one module each over a shared
harness); every option after the suite's name goes to the suite, so
``transfer-automl benchmark SUITE --help`` shows that suite's own options.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import typer

from transfer_automl.paths import CACHE_ENV

benchmark_app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="Run a benchmark suite: results go to benchmarks/results (CSV/Markdown) unless "
         "--out says otherwise; --quick runs a suite end to end on tiny generated data in "
         "well under a minute. Options after SUITE go to the suite (SUITE --help lists them).")


def _suites():
    """The ``benchmarks`` package, found in a source checkout when it is not installed."""
    try:
        return importlib.import_module("benchmarks")
    except ImportError:
        checkout = Path(__file__).resolve().parents[2]
        if not (checkout / "benchmarks" / "__init__.py").is_file():
            return None
        sys.path.append(str(checkout))  # an editable install maps only the listed packages
        return importlib.import_module("benchmarks")


def _command(name: str):
    def command(ctx: typer.Context) -> None:
        argv = list(ctx.args)
        env = os.environ.get(CACHE_ENV)
        if env and name != "meta_dataset" and not any(
                a == "--cache-dir" or a.startswith("--cache-dir=") for a in argv):
            argv += ["--cache-dir", env]
        raise typer.Exit(_suites().run(name, argv))

    command.__name__ = name
    return command


def _register() -> None:
    suites = _suites()
    if suites is None:
        @benchmark_app.command("unavailable")
        def unavailable() -> None:
            """The benchmarks package is not installed (it ships with the source checkout)."""
            raise typer.Exit(2)
        return
    for name in suites.SUITES:
        benchmark_app.command(
            name, help=suites.describe(name), add_help_option=False,
            context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        )(_command(name))


_register()
