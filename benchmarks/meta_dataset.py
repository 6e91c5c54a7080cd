"""Run the portfolio on every shared dataset: the meta-dataset that warm starts are replayed on.

A thin suite over ``benchmarks/build_meta_dataset.py`` (kept as it is: a long build runs it
as a script): its ``main`` is called with the arguments below. Each portfolio configuration
(``transfer_automl.portfolio``) is trained once per dataset on the same split and folds;
rows are appended to ``meta_dataset/portfolio_v<version>[.shard-i-of-n].jsonl`` under the
output folder, resumable and sharded (``--shard i/n``, counted from 0 as the script does).

    transfer-automl benchmark meta_dataset --shard 0/1
    transfer-automl benchmark meta_dataset --datasets bccd_wbc3 --configs x-l0-224-avg

The script always uses the library's default cache root (it takes no cache option), so this
suite refuses ``--cache-dir``. ``--quick``: the generated ``colours`` dataset, one cheap
configuration (``x-l0-160-avg``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks import harness

QUICK = {"datasets": ["colours"], "configs": ["x-l0-160-avg"]}


def configure(parser) -> None:
    harness.add_datasets(parser, None)
    parser.add_argument("--configs", nargs="+", default=None, metavar="ID",
                        help="portfolio configuration ids (default: all)")
    parser.add_argument("--shard", default="0/1", help="i/n: every n-th pair from the i-th")
    parser.add_argument("--max-finetune-images", type=int, default=600)


def run(args) -> int:
    from benchmarks import build_meta_dataset as script

    if args.cache_dir is not None:
        raise SystemExit("meta_dataset: --cache-dir is not supported: build_meta_dataset.py "
                         "always uses the library's default cache root")
    # The published rows live in results/meta_dataset; any other --out gets its own folder.
    out_dir = script.OUT if args.out.resolve() == harness.RESULTS.resolve() else (
        args.out / "meta_dataset")
    argv = ["--shard", args.shard, "--max-finetune-images", str(args.max_finetune_images),
            "--out-dir", str(out_dir)]
    if args.datasets:
        argv += ["--datasets", *args.datasets]
    if args.configs:
        argv += ["--configs", *args.configs]
    # The script reads its options from sys.argv and its datasets from its module-level
    # SHARED; both are set for the call only and put back afterwards.
    saved = sys.argv, script.SHARED
    sys.argv, script.SHARED = ["build_meta_dataset.py", *argv], Path(args.root)
    try:
        script.main()
    finally:
        sys.argv, script.SHARED = saved
    return 0
