"""fit_auto with its default settings against the ten-line baseline, paired on the same splits.

For every dataset and split seed: ``fit_auto(folder, time_budget_s=900, seed=seed, kb=False)``
(the default settings; no knowledge base, so no dataset is matched to its own earlier runs),
then, on exactly the same split, logistic regression with C chosen by 5-fold
cross-validation on frozen, average-pooled EfficientNet-Lite0 features at 224 px (the
baseline, fitted on training + validation images like the product's refit). Both are scored
on the same test images. A row also holds the best single trial's test accuracy (the
product without its ensemble), the wall seconds of each phase, and the exported model's size
and latency per image against the baseline exported the same way.

    transfer-automl benchmark baseline_gain [--datasets food10 ...] [--seeds 0 1 2]
        [--time-budget 900] [--shard i/n] [--report-only]

Resumable: finished (dataset, seed) pairs are kept in ``baseline_gain.csv`` and skipped;
``--shard i/n`` runs every n-th pair, so shards may run side by side. The Markdown table
``baseline_gain.md`` is rewritten from the CSV after every pair: per dataset the paired test
accuracy difference (mean over seeds, with a 95% t-interval), the median over datasets, and
the time and latency figures; it names every commit its rows came from.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from benchmarks import harness
from benchmarks._baseline_gain_report import FIELDS, report

QUICK = {"datasets": ["colours"], "seeds": [0], "time_budget": 20.0}
log = logging.getLogger("benchmarks.baseline_gain")


def configure(parser) -> None:
    harness.add_datasets(parser, None)
    harness.add_seeds(parser, [0, 1, 2])
    harness.add_options(parser, ("--time-budget", 900.0, "seconds per search"))
    parser.add_argument("--shard", type=harness.shard, default=(1, 1), metavar="i/n",
                        help="run every n-th (dataset, seed) pair from the i-th (default 1/1)")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the Markdown table from the CSV and stop")


def run_pair(folder: Path, seed: int, args) -> dict:
    """One search and the baseline on one split; the CSV row."""
    from transfer_automl import SearchOptions, fit_auto, load_model
    from transfer_automl.data import load_dataset
    from transfer_automl.trial_model import split_report

    from benchmarks._baseline_model import baseline, latency_ms, size_mb

    stamp = harness.Stamp.now()
    t0 = time.monotonic()
    result = fit_auto(folder, time_budget_s=args.time_budget, seed=seed, kb=False,
                      cache_dir=args.cache,
                      search=SearchOptions(space=harness.quick_space()) if args.quick else None)
    wall = time.monotonic() - t0
    data = load_dataset(folder, seed=seed, workdir=args.cache / "datasets")
    with tempfile.TemporaryDirectory() as tmp:
        base = baseline(data, args.cache, seed, Path(tmp))
        single_test = result.test_score
        if result.ensemble is not None:
            single = load_model(result.export(Path(tmp) / "single", single=True))
            single_test = split_report(single, data.test, data.class_names).accuracy
        product = load_model(result.model.path)
        test_paths = list(data.test.paths)
        latency, base_latency = latency_ms(product, test_paths), latency_ms(base["model"],
                                                                              test_paths)
        base_size = size_mb(base["model"].path)
    statuses = [row["status"] for row in result.leaderboard if row["trial"] != "ensemble"]
    return {"dataset": folder.name, "seed": seed, "n_test": len(data.test),
            "test": result.test_score, "baseline": base["accuracy"],
            "diff": result.test_score - base["accuracy"], "single_test": single_test,
            "baseline_C": base["C"], "baseline_s": round(base["seconds"], 1),
            "wall_s": round(wall, 1), **result.timings,
            "trials": len(statuses), "complete": statuses.count("complete"),
            "ensemble": len(result.ensemble.weights) if result.ensemble else 0,
            "passes": result.ensemble.passes if result.ensemble else 1,
            "size_mb": round(size_mb(result.model.path), 1), "baseline_size_mb": round(base_size, 1),
            "latency_ms": round(latency, 2), "baseline_latency_ms": round(base_latency, 2),
            "best": result.explanation.split("Best: ")[-1].split(".")[0][:160],
            "commit": stamp.commit, "load": stamp.load, "finished": stamp.time_utc}


def run(args) -> int:
    """Run the missing (dataset, seed) pairs of this shard, rewriting the table after each."""
    table = harness.result_rows(args, "baseline_gain.csv", FIELDS)
    out = args.out / "baseline_gain.md"
    if args.report_only:
        report(table.read(), out, args.command)
        return 0
    names = [n for given in args.datasets or [] for n in given.split(",") if n]
    folders = harness.dataset_folders(args.root, names)
    if not folders:
        raise SystemExit(f"{args.root} holds no dataset: this benchmark needs the shared "
                         "datasets (or --root / --quick)")
    pairs = [(folder, seed) for seed in args.seeds for folder in folders]
    i, n = args.shard
    mine = pairs[i - 1::n]
    for number, (folder, seed) in enumerate(mine, start=1):
        with table.locked():
            done = table.done(lambda r: (r["dataset"], int(r["seed"])))
        if (folder.name, seed) in done:
            continue
        log.info("[%d/%d] %s seed %d", number, len(mine), folder.name, seed)
        row = run_pair(folder, seed, args)
        log.info("%s seed %d: test %.4f, baseline %.4f (%+.4f), %s s", folder.name, seed,
                 row["test"], row["baseline"], row["diff"], row["wall_s"])
        with table.locked():
            table.append([row])
            report(table.read(), out, args.command)
    return 0
