"""The shared benchmark harness.

Every suite in ``benchmarks/`` is a module with a docstring (first line: what it measures),
``configure(parser)`` adding its own options, ``QUICK`` (option defaults for ``--quick``) and
``run(args) -> int``. The harness gives them:

- common options (``--quick``, ``--out``, ``--resume/--no-resume``, ``--root``,
  ``--cache-dir``), ``add_datasets`` and ``add_seeds`` for suites that iterate over them,
  ``add_options`` for a suite's own simple options;
- dataset resolution (``../shared/datasets/<name>`` or a folder; tiny generated datasets
  for ``--quick``);
- resumable CSV rows (``ResultRows``: append per finished unit, skip done units, a file lock
  shared by shards);
- a machine stamp (``Stamp``: commit, time, host, cores, load average, Python/TF versions)
  and the command that reproduces a run;
- Markdown output (``table``, ``write_report``, ``append_section``);
"""

from benchmarks.harness._data import (QUICK_DATASETS, SHARED, dataset_folders, quick_space,
                                      resolve, write_quick_datasets, write_shapes)
from benchmarks.harness._report import append_section, cell, row, table, write_report
from benchmarks.harness._rows import ResultRows, shard
from benchmarks.harness._stamp import Stamp, command_line, commit, load_average, version
from benchmarks.harness._suite import (RESULTS, add_datasets, add_options, add_seeds,
                                       build_parser, cache_root, parse, result_rows, run_suite)

__all__ = ["QUICK_DATASETS", "RESULTS", "SHARED", "ResultRows", "Stamp", "add_datasets",
           "add_options", "add_seeds", "append_section", "build_parser", "cache_root", "cell",
           "command_line", "commit", "dataset_folders", "load_average", "parse", "quick_space",
           "resolve", "result_rows", "row", "run_suite", "shard", "table", "version",
           "write_quick_datasets", "write_report", "write_shapes"]
