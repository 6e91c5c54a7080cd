"""Running one suite: its command line (common options + its own), --quick, the cache root."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path
from types import ModuleType

from benchmarks.harness._data import SHARED, write_quick_datasets
from benchmarks.harness._rows import ResultRows
from benchmarks.harness._stamp import command_line

RESULTS = Path(__file__).resolve().parents[1] / "results"
log = logging.getLogger("benchmarks")


def add_datasets(parser: argparse.ArgumentParser, default: list[str] | None,
                 help: str = "dataset names under --root, or folders") -> None:
    """The common ``--datasets NAME...`` option (alias ``--dataset``)."""
    parser.add_argument("--datasets", "--dataset", nargs="+", default=default,
                        metavar="NAME", help=f"{help} (default: {default or 'all'})")


def add_seeds(parser: argparse.ArgumentParser, default: list[int]) -> None:
    """The common ``--seeds N...`` option: one unit of work per seed (it fixes the split)."""
    parser.add_argument("--seeds", nargs="+", type=int, default=default, metavar="N",
                        help=f"seeds of split and search (default: {default})")


def build_parser(name: str, suite: ModuleType) -> argparse.ArgumentParser:
    """The suite's parser: the common options, then the suite's own (``suite.configure``)."""
    doc = (suite.__doc__ or name).strip()
    parser = argparse.ArgumentParser(prog=f"transfer-automl benchmark {name}",
                                     description=doc,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = parser.add_argument_group("common options")
    common.add_argument("--quick", action="store_true",
                        help="smoke run: tiny generated datasets and sizes, well under a "
                             "minute; written to a new temporary folder unless --out is given")
    common.add_argument("--out", "--results", type=Path, default=RESULTS, metavar="DIR",
                        help="folder for the CSV and Markdown results (default "
                             "benchmarks/results)")
    common.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                        help="skip units of work already in the results CSV (default); "
                             "--no-resume moves the CSV to NAME.csv.bak and starts afresh")
    common.add_argument("--root", type=Path, default=SHARED, metavar="DIR",
                        help="folder of dataset folders (default ../shared/datasets)")
    common.add_argument("--cache-dir", type=Path, default=None, metavar="DIR",
                        help="cache root holding backbones/ (default: the library's)")
    suite.configure(parser)
    return parser


def parse(name: str, suite: ModuleType, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv`` for ``suite``. Under ``--quick`` the suite's ``QUICK`` values become the
    defaults (options given explicitly still win), the datasets are generated and the output
    goes to a temporary folder unless ``--out`` names one."""
    parser = build_parser(name, suite)
    quick = "--quick" in argv
    if quick:
        parser.set_defaults(out=None, root=None, **getattr(suite, "QUICK", {}))
    args = parser.parse_args(argv)
    if quick and args.out is None:
        args.out = Path(tempfile.mkdtemp(prefix=f"benchmark-{name}-"))
    if quick and args.root is None:
        args.root = write_quick_datasets(args.out / "quick-data")
    args.out = args.out.expanduser()
    args.out.mkdir(parents=True, exist_ok=True)
    args.suite, args.argv = name, list(argv)
    args.command = command_line(name, argv, getattr(suite, "NOT_IN_COMMAND", ()))
    args.cache = cache_root(args.cache_dir)
    return args


def cache_root(given: Path | None) -> Path:
    """``given``, else the library's default cache root (backbones, features, datasets)."""
    if given is not None:
        return Path(given).expanduser().resolve()
    from transfer_automl.paths import default_cache_dir

    return default_cache_dir().expanduser().resolve()


def result_rows(args: argparse.Namespace, filename: str, fields) -> ResultRows:
    """The suite's CSV under ``--out`` (call once per run: under ``--no-resume`` an existing
    file is set aside)."""
    rows = ResultRows(args.out / filename, fields)
    if not args.resume:
        backup = rows.set_aside()
        if backup:
            log.info("--no-resume: moved the previous results to %s", backup)
    return rows


def run_suite(name: str, suite: ModuleType, argv: list[str]) -> int:
    """Parse ``argv`` and run ``suite.run(args)``; its exit code."""
    if not logging.getLogger("benchmarks").handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logging.getLogger("benchmarks").addHandler(handler)
    logging.getLogger("benchmarks").setLevel(logging.INFO)
    args = parse(name, suite, argv)
    return int(suite.run(args) or 0)


def add_options(parser: argparse.ArgumentParser, *specs: tuple) -> None:
    """Add simple options from ``(flag, default, help)`` rows: the type is the default's
    (a bool default makes a switch); a fourth item overrides the type."""
    for flag, default, help, *kind in specs:
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=help)
        else:
            parser.add_argument(flag, type=kind[0] if kind else type(default),
                                default=default, help=help)
