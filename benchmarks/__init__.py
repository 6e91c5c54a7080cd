"""Benchmark suites: short modules on the public APIs over one shared harness.

``transfer-automl benchmark SUITE [--quick] [options]`` (or ``python -m benchmarks SUITE``)
runs one; ``--quick`` runs it end to end on tiny generated data in well under a minute.
Published results live in ``benchmarks/results/`` with the command that produced them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# suite name -> module; a suite's one-line description is its module docstring's first line
SUITES = {
    "warm_start_loo": "benchmarks.warm_start_loo",
    "cost_aware": "benchmarks.cost_aware",
    "spark_async": "benchmarks.spark_async",
    "scheduling_replay": "benchmarks.scheduling_replay",
    "cv_fold_leak": "benchmarks.cv_fold_leak",
    "selection_bias": "benchmarks.selection_bias",
    "rescore_exact_kb": "benchmarks.rescore_exact_kb",
    "baseline_gain": "benchmarks.baseline_gain",
    "throughput": "benchmarks.throughput",
    "build_seed_kb": "benchmarks.build_seed_kb",
    "meta_dataset": "benchmarks.meta_dataset",
    "transfer": "benchmarks.transfer_replay",
    "radon_machine": "benchmarks.radon_machine",
}


def suite(name: str) -> ModuleType:
    """The module of suite ``name``.

    Raises:
        KeyError: with the known names, if ``name`` is not one.
    """
    if name not in SUITES:
        raise KeyError(f"unknown benchmark suite {name!r}; known: {', '.join(SUITES)}")
    return importlib.import_module(SUITES[name])


def describe(name: str) -> str:
    """The one-line description of suite ``name``."""
    return (suite(name).__doc__ or name).strip().splitlines()[0]


def run(name: str, argv: list[str] | None = None) -> int:
    """Run suite ``name`` with command-line arguments ``argv``; its exit code."""
    from benchmarks.harness import run_suite

    return run_suite(name, suite(name), list(argv or []))
