"""fit_auto on datasets it has never seen vs the simplest transfer baseline, on the same split.

For each dataset: ``fit_auto(folder, max_trials=6, time_budget_s=900, executor="local",
seed=0, kb=False)`` (no knowledge base: the dataset is new to it), then logistic regression
(scikit-learn, C=1) on frozen, average-pooled EfficientNet-Lite0 features at 224 px trained
on the same train split and scored on the same test split. The exported model is reloaded
and must predict the same labels as the in-memory result.

    transfer-automl benchmark spine_vs_baseline [--datasets food10 flowers12] [--max-trials 6]
        [--time-budget 900]

Results are appended to ``spine_vs_baseline.md``. ``--quick``: the generated ``colours``
dataset, a 2-trial search in a 64-px space.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from benchmarks import harness
from transfer_automl import SearchOptions, fit_auto

QUICK = {"datasets": ["colours"], "max_trials": 2, "time_budget": 120.0}
log = logging.getLogger("benchmarks.spine_vs_baseline")


def configure(parser) -> None:
    harness.add_datasets(parser, None, "dataset names under --root (commas also separate)")
    harness.add_options(parser, ("--max-trials", 6, "trials per search"),
                        ("--time-budget", 900.0, "seconds per search"))


def baseline(data, cache: Path) -> float:
    """Logistic regression on frozen Lite0 features (224 px, average pooling)."""
    from pretrained import load_backbone
    from sklearn.linear_model import LogisticRegression

    from transfer_automl.space import default_space
    from transfer_automl.training import extract_features, frozen_part, select_pooled

    backbone = load_backbone("efficientnet_lite0", cache_dir=cache / "backbones")
    config = {**default_space().default, "resolution": 224, "unfrozen_blocks": 0}
    feats = extract_features(frozen_part(backbone, config), data, 224)
    feats = {k: select_pooled(v, backbone, "avg") for k, v in feats.items()}
    clf = LogisticRegression(C=1.0, max_iter=3000)
    clf.fit(feats["train"], data.train.labels)
    return float(clf.score(feats["test"], data.test.labels))


def run_one(folder: Path, args) -> dict:
    from transfer_automl import load_model
    from transfer_automl.data import load_dataset

    t0 = time.monotonic()
    result = fit_auto(folder, max_trials=args.max_trials, time_budget_s=args.time_budget,
                      executor="local", seed=0, kb=False, cache_dir=args.cache,
                      search=SearchOptions(space=harness.quick_space() if args.quick else None))
    seconds = time.monotonic() - t0
    data = load_dataset(folder, seed=0, workdir=args.cache / "datasets")
    with tempfile.TemporaryDirectory() as tmp:
        out = result.export(Path(tmp) / "model")
        sample = list(data.test.paths[:50])
        same = load_model(out).predict(sample) == result.predict(sample)
    counts: dict[str, int] = {}
    for row in result.leaderboard:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {"dataset": folder.name, "test": result.test_score, "val": result.best_score,
            "baseline": baseline(data, args.cache), "seconds": seconds, "trials": counts,
            "reload_same": same, "best": result.explanation.split("Best: ")[-1]}


def run(args) -> int:
    names = [n for given in args.datasets or [] for n in given.split(",") if n]
    folders = harness.dataset_folders(args.root, names)
    if not folders:
        raise SystemExit(f"{args.root} holds no dataset: this benchmark needs the shared "
                         "datasets (or --root / --quick)")
    out = args.out / "spine_vs_baseline.md"
    harness.append_section(out, f"\n## {time.strftime('%Y-%m-%d %H:%M')}: `{args.command}`\n\n"
                                "| dataset | fit_auto test | LR baseline test | difference | "
                                "best val | seconds | trials | export reload same labels | "
                                "best trial |\n|---|---|---|---|---|---|---|---|---|",
                           "# fit_auto on unseen datasets vs logistic regression on frozen Lite0 "
                           "features (same split)\n\n")
    for folder in folders:
        row = run_one(folder, args)
        harness.append_section(out, f"| {row['dataset']} | {row['test']:.4f} | "
                                    f"{row['baseline']:.4f} | "
                                    f"{row['test'] - row['baseline']:+.4f} | {row['val']:.4f} | "
                                    f"{row['seconds']:.0f} | {row['trials']} | "
                                    f"{row['reload_same']} | {row['best']} |")
    return 0
