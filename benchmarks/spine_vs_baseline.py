"""fit_auto on datasets it has never seen vs the simplest transfer baseline, on the same split.

For each dataset: ``fit_auto(folder, max_trials=6, time_budget_s=900, executor="local",
seed=0, kb=False)`` (no knowledge base: the dataset is new to it), then logistic regression
(scikit-learn, C=1) on frozen, average-pooled EfficientNet-Lite0 features at 224 px trained
on the same train split and scored on the same test split. The exported model is reloaded
and must predict the same labels as the in-memory result.

    python benchmarks/spine_vs_baseline.py [--datasets food10,flowers12] [--max-trials 6]
        [--time-budget 900]

Results are appended to benchmarks/results/spine_vs_baseline.md.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "datasets"


def baseline(data, cache: Path) -> float:
    """Logistic regression on frozen Lite0 features (224 px, average pooling)."""
    from pretrained import load_backbone
    from sklearn.linear_model import LogisticRegression

    from transfer_automl.space import default_space
    from transfer_automl.training import frozen_part, select_pooled
    from transfer_automl.training import extract_features as extract

    backbone = load_backbone("efficientnet_lite0", cache_dir=cache / "backbones")
    config = {**default_space().default, "resolution": 224, "unfrozen_blocks": 0}
    feats = extract(frozen_part(backbone, config), data, 224)
    feats = {k: select_pooled(v, backbone, "avg") for k, v in feats.items()}
    clf = LogisticRegression(C=1.0, max_iter=3000)
    clf.fit(feats["train"], data.train.labels)
    return float(clf.score(feats["test"], data.test.labels))


def run_one(folder: Path, args, cache: Path) -> dict:
    from transfer_automl import fit_auto, load_model
    from transfer_automl.data import load_dataset

    t0 = time.monotonic()
    result = fit_auto(folder, max_trials=args.max_trials, time_budget_s=args.time_budget,
                      executor="local", seed=0, kb=False, cache_dir=cache)
    seconds = time.monotonic() - t0
    data = load_dataset(folder, seed=0, workdir=cache / "datasets")
    with tempfile.TemporaryDirectory() as tmp:
        out = result.export(Path(tmp) / "model")
        sample = list(data.test.paths[:50])
        same = load_model(out).predict(sample) == result.predict(sample)
    counts = {}
    for row in result.leaderboard:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {"dataset": folder.name, "test": result.test_score, "val": result.best_score,
            "baseline": baseline(data, cache), "seconds": seconds, "trials": counts,
            "reload_same": same, "best": result.explanation.split("Best: ")[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="")
    parser.add_argument("--max-trials", type=int, default=6)
    parser.add_argument("--time-budget", type=float, default=900)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} not found: the shared datasets are needed for this benchmark")
    from transfer_automl.api import default_cache_dir

    cache = args.cache_dir or default_cache_dir()
    names = [n for n in args.datasets.split(",") if n] or sorted(
        p.name for p in SHARED.iterdir() if p.is_dir())
    out = ROOT / "results" / "spine_vs_baseline.md"
    if not out.exists():
        out.write_text("# fit_auto on unseen datasets vs logistic regression on frozen Lite0 "
                       "features (same split)\n\n")
    with out.open("a") as handle:
        handle.write(f"\n## {time.strftime('%Y-%m-%d %H:%M')}: `python benchmarks/"
                     f"spine_vs_baseline.py --datasets {','.join(names)} --max-trials "
                     f"{args.max_trials} --time-budget {args.time_budget:g}`\n\n"
                     "| dataset | fit_auto test | LR baseline test | difference | best val | "
                     "seconds | trials | export reload same labels | best trial |\n"
                     "|---|---|---|---|---|---|---|---|---|\n")
    for name in names:
        row = run_one(SHARED / name, args, cache)
        line = (f"| {row['dataset']} | {row['test']:.4f} | {row['baseline']:.4f} | "
                f"{row['test'] - row['baseline']:+.4f} | {row['val']:.4f} | "
                f"{row['seconds']:.0f} | {row['trials']} | {row['reload_same']} | "
                f"{row['best']} |")
        print(line, flush=True)
        with out.open("a") as handle:
            handle.write(line + "\n")


if __name__ == "__main__":
    main()
