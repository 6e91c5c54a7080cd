"""Selection bias: how far a search's validation scores sit above the same models' test scores.

A search ranks trials by cross-validated (or validation-split) accuracy and reports the best:
a maximum over trials, optimistic even without a leak. For each dataset and seed this runs
``fit_auto(folder, max_trials, time_budget_s, seed, kb=False)`` and then scores every trial's
own checkpoint on the test split (which no trial saw), so the gap ``val - test`` is measured
per trial and for the chosen one. Resumable: finished (dataset, seed) pairs are read back
from the CSV and skipped.

    transfer-automl benchmark selection_bias --datasets bccd_wbc3 gtsrb_signs10 --seeds 0 1

Writes ``selection_bias.csv`` and ``selection_bias.md``. ``--quick``: the generated
``colours`` dataset, seed 0, a 2-trial search in a 64-px space.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

from benchmarks import harness
from transfer_automl import SearchOptions, TrackingOptions, fit_auto

FIELDS = ["dataset", "seed", "trial", "state", "fidelity", "origin", "val", "test", "chosen",
          "exported_test", "n_val", "n_test", "commit"]
QUICK = {"datasets": ["colours"], "seeds": [0], "max_trials": 2, "time_budget": 120.0}
log = logging.getLogger("benchmarks.selection_bias")


def configure(parser) -> None:
    harness.add_datasets(parser, ["bccd_wbc3", "gtsrb_signs10", "busi_breast_ultrasound",
                                  "elpv_solar_cells"])
    harness.add_seeds(parser, [0, 1])
    harness.add_options(parser, ("--max-trials", 12, "trials per search"),
                        ("--time-budget", 600.0, "seconds per search"),
                        ("--report-only", False, "rewrite the Markdown table from the CSV, "
                                                 "run nothing"))


def trial_test_scores(result, cache: Path) -> dict[str, float]:
    """Test accuracy of every scored trial's own checkpoint."""
    from transfer_automl.data import load_manifest
    from transfer_automl.restore import restore
    from transfer_automl.training import image_dataset, trial_classifier

    out, backbones, data = {}, {}, None
    for row in result.leaderboard:
        if row.get("score") is None:
            continue
        trial = restore(result.run_id, row["trial"], cache_dir=cache)
        if not trial.result.artifact or not Path(trial.result.artifact).is_file():
            continue
        data = data or load_manifest(trial.files.manifest)
        config = dict(trial.spec.config)
        model = trial_classifier(config, len(data.class_names), trial.result.artifact,
                                 backbones, cache / "backbones")
        hits = 0
        for images, labels in image_dataset(data.test.paths, data.test.labels,
                                            config["resolution"], 64):
            hits += int(np.sum(np.argmax(model(images, training=False), -1) == labels.numpy()))
        out[row["trial"]] = hits / len(data.test)
    return out


def run_pair(folder: Path, seed: int, args) -> list[dict]:
    """One search on ``folder`` and the test score of every trial it scored; its csv rows."""
    from transfer_automl.data import load_dataset

    cache = args.cache
    result = fit_auto(folder, max_trials=args.max_trials, time_budget_s=args.time_budget,
                      seed=seed, kb=False, cache_dir=cache,
                      search=SearchOptions(space=harness.quick_space() if args.quick else None),
                      tracking=TrackingOptions(keep_checkpoints=None))
    tests = trial_test_scores(result, cache)
    chosen = result.leaderboard[0]["trial"]
    data = load_dataset(folder, seed=seed, workdir=cache / "datasets")
    n_test, n_val = len(data.test), len(data.train) + len(data.val)
    commit = harness.commit()
    return [{"dataset": folder.name, "seed": seed, "trial": row["trial"], "state": row["status"],
             "fidelity": row["fidelity"], "origin": row["origin"], "val": row.get("score"),
             "test": tests.get(row["trial"]), "chosen": row["trial"] == chosen,
             "exported_test": result.test_score, "n_val": n_val, "n_test": n_test,
             "commit": commit} for row in result.leaderboard]


@functools.lru_cache(maxsize=None)
def holdout_size(folder: Path, seed: int, cache: Path) -> int:
    """Images of the validation split: what an augmented (images-fidelity) trial is scored on."""
    from transfer_automl.data import load_dataset

    return len(load_dataset(folder, seed=seed, workdir=cache / "datasets").val)


def scored_on(row: dict) -> int:
    """How many images a trial's validation score counts: every training + validation image
    under cross-validation, the validation split alone for augmented trials."""
    if row["fidelity"] == "images":
        return holdout_size(row["folder"], int(row["seed"]), row["cache"])
    return int(row["n_val"])


def standardised_gap(row: dict) -> float:
    """(val - test) in standard deviations of the difference of two binomial estimates."""
    val, test = float(row["val"]), float(row["test"])
    p = min(max((val + test) / 2, 0.02), 0.98)
    sd = np.sqrt(p * (1 - p) * (1 / scored_on(row) + 1 / int(row["n_test"])))
    return (val - test) / sd


def t_interval(values: list[float]) -> str:
    from scipy.stats import t

    v = np.asarray(values, float)
    if len(v) < 2:
        return f"{v.mean():+.3f}" if len(v) else "-"
    half = t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return f"{v.mean():+.3f} [{v.mean() - half:+.3f}, {v.mean() + half:+.3f}]"


def report(rows: list[dict], out: Path, args) -> None:
    scored = [{**r, "folder": harness.resolve(r["dataset"], args.root), "cache": args.cache}
              for r in rows if r["val"] not in ("", None) and r["test"] not in ("", None)]
    gaps = np.array([float(r["val"]) - float(r["test"]) for r in scored])
    chosen = [r for r in scored if r["chosen"] == "True"]
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    commits = sorted({r["commit"] for r in rows})
    lines = ["# Selection bias: validation minus test accuracy, per trial and for the chosen one\n",
             f"Commit(s) {', '.join(commits)}; written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} "
             f"on {platform.node()} ({os.cpu_count()} cores, load average {load}). "
             f"Command: `{args.command}`\n",
             "Each trial's own checkpoint is scored on the test split (never seen by any "
             "trial). Validation is 5-fold CV over training + validation images for trials on "
             "cached features or activations, the validation split for augmented trials. "
             "The chosen trial is the search's best; the exported model is its refit. "
             "n_val in the CSV is the cross-validated count (training + validation); an "
             "augmented trial's allowance uses the validation split's size.\n",
             "| dataset | seed | trials scored | chosen val | chosen test | chosen gap | "
             "exported test | max over trials of val - test |",
             "|---|---|---|---|---|---|---|---|"]
    pairs = sorted({(r["dataset"], int(r["seed"])) for r in scored})
    for name, seed in pairs:
        mine = [r for r in scored if r["dataset"] == name and int(r["seed"]) == seed]
        best = [r for r in mine if r["chosen"] == "True"]
        worst = max(float(r["val"]) - float(r["test"]) for r in mine)
        if best:
            b = best[0]
            lines.append(f"| {name} | {seed} | {len(mine)} | {float(b['val']):.3f} | "
                         f"{float(b['test']):.3f} | {float(b['val']) - float(b['test']):+.3f} | "
                         f"{float(b['exported_test']):.3f} | {worst:+.3f} |")
    if len(gaps):
        z = np.array([standardised_gap(r) for r in scored])
        beyond = [r for r, v in zip(scored, z) if v > 3.0]
        q = np.quantile(gaps, [0.5, 0.9, 0.95, 1.0])
        lines += ["", f"Trials whose val - test exceeds the allowance (3 standard deviations of "
                  f"the two splits' binomial noise, sqrt(p(1-p)(1/n_val + 1/n_test))): "
                  f"**{len(beyond)} of {len(scored)}**"
                  + ("" if not beyond else ": " + ", ".join(
                      f"{r['dataset']} s{r['seed']} {r['trial']} ({float(r['val']):.3f} vs "
                      f"{float(r['test']):.3f})" for r in beyond)) + "."]
        lines += ["", f"All {len(gaps)} scored trials: val - test median {q[0]:+.3f}, "
                  f"90th percentile {q[1]:+.3f}, 95th {q[2]:+.3f}, max {q[3]:+.3f}.",
                  f"Chosen trials ({len(chosen)}): mean gap with 95% t-interval "
                  f"{t_interval([float(r['val']) - float(r['test']) for r in chosen])}."]
    harness.write_report(out, lines)


def run(args) -> int:
    """Run the missing (dataset, seed) pairs, or with ``--report-only`` rewrite the table."""
    table = harness.result_rows(args, "selection_bias.csv", FIELDS)
    if args.report_only:
        report(table.read(), args.out / "selection_bias.md", args)
        return 0
    for seed in args.seeds:
        for name in args.datasets:
            folder = harness.resolve(name, args.root)
            if folder is None:
                raise SystemExit(f"dataset {name!r} not found under {args.root}")
            with table.locked():
                done = table.done(lambda r: (r["dataset"], int(r["seed"])))
            if (folder.name, seed) in done:
                continue
            t0 = time.monotonic()
            new = run_pair(folder, seed, args)
            with table.locked():
                table.append(new)
                rows = table.read()
            report(rows, args.out / "selection_bias.md", args)
            log.info("%s seed %s: %.0f s", name, seed, time.monotonic() - t0)
    return 0
