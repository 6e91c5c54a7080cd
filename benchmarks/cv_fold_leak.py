"""How weak a penalty must be before chained cross-validation folds leak.

Until the fix, the exact solver started each fold's L-BFGS from the previous fold's solution,
which had trained on the current fold's held-out rows. This script measures, on real frozen
EfficientNet-Lite0 features of shared datasets (224 px, max and average pooling), the 5-fold
CV accuracy of the linear head for a grid of weight decays, with each fold solved from zeros
(what the runner does now) and chained (what it did), with the real labels and with labels
shuffled (no signal: chance is the majority share). The weakest penalty at which the two
agree says which recorded exact-solver scores need re-scoring.

    python benchmarks/cv_fold_leak.py --datasets brain_tumor_mri bccd_wbc3 gtsrb_signs10

Writes ``benchmarks/results/cv_fold_leak.md`` (and a CSV beside it).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "datasets"
WEIGHT_DECAYS = (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 1.66e-4, 3e-4, 5e-4, 1e-3)


def pooled_features(folder: Path, cache: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Max- and average-pooled Lite0 features of training + validation images (224 px)."""
    from pretrained import load_backbone

    from transfer_automl.data import load_dataset
    from transfer_automl.space import default_space
    from transfer_automl.training import frozen_part, select_pooled
    from transfer_automl.training._inputs import extract

    data = load_dataset(folder, workdir=cache / "datasets", seed=0)
    backbone = load_backbone("efficientnet_lite0", cache_dir=cache / "backbones")
    config = {**default_space().default, "resolution": 224}
    arrays = extract(frozen_part(backbone, config), data, 224)
    x = np.concatenate([arrays["train"], arrays["val"]])
    y = np.concatenate([data.train.labels, data.val.labels])
    return {p: (select_pooled(x, backbone, p), y) for p in ("max", "avg")}


def cv_accuracy(x: np.ndarray, y: np.ndarray, wd: float, chained: bool) -> float:
    from sklearn.model_selection import StratifiedKFold

    from transfer_automl.training._exact import evaluate, fit_linear

    n_classes = int(y.max()) + 1
    solution, hits = None, 0.0
    for train, held in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        solution = fit_linear(x[train], y[train], n_classes, wd,
                              init=solution if chained else None)
        hits += evaluate(solution, x[held], y[held])[1] * len(held)
    return hits / len(y)


def stamp() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return (f"commit {commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{platform.node()} ({os.cpu_count()} cores), load average {load}")


def audit_loo(csv_path: Path, out: Path, margin: float = 0.01) -> None:
    """Flag the leave-one-out rows a leak can explain: a cross-validated cheap trial above its
    own search's default trial by more than ``margin`` (the CSV keeps no configurations, so
    the rows cannot be re-scored; these are the candidates), with the run's test score."""
    from collections import defaultdict

    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    runs = defaultdict(list)
    for r in rows:
        runs[(r["dataset"], r["mode"], r["seed"])].append(r)
    lines = [f"# Leave-one-out rows that chained folds can explain\n",
             f"{stamp()}. Command: `python benchmarks/cv_fold_leak.py --audit-loo {csv_path}`\n",
             f"Cheap (cached-feature, cross-validated) trials whose score exceeds their own "
             f"search's default trial by more than {margin}; `run test` is the exported "
             "model's test accuracy of that search.\n",
             "| dataset | mode | seed | trial | origin | score | default's score | run best | "
             "run test |", "|---|---|---|---|---|---|---|---|---|"]
    flagged = defaultdict(int)
    for (name, mode, seed), mine in sorted(runs.items()):
        base = [float(r["score"]) for r in mine if r["origin"] == "default" and r["score"]]
        if not base:
            continue
        best = max(float(r["score"]) for r in mine if r["score"])
        for r in mine:
            if r["fidelity"] == "features" and r["score"] and float(r["score"]) > base[0] + margin:
                flagged[mode] += 1
                lines.append(f"| {name} | {mode} | {seed} | {r['trial']} | {r['origin']} | "
                             f"{float(r['score']):.4f} | {base[0]:.4f} | {best:.4f} | "
                             f"{float(r['test_score']):.4f} |")
    total = defaultdict(int)
    for (_, mode, _), mine in runs.items():
        total[mode] += sum(r["fidelity"] == "features" and bool(r["score"]) for r in mine)
    lines.append("\n" + "; ".join(f"mode {m}: {flagged[m]} of {total[m]} cheap trials flagged"
                                   for m in sorted(total)) + ".")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+",
                        default=["brain_tumor_mri", "bccd_wbc3", "gtsrb_signs10"])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "cv_fold_leak.md")
    parser.add_argument("--audit-loo", type=Path, default=None,
                        help="only flag the rows of a leave-one-out CSV a leak can explain")
    args = parser.parse_args()
    if args.audit_loo:
        audit_loo(args.audit_loo, HERE / "results" / "cv_fold_leak_loo_audit.md")
        return
    from transfer_automl.api import default_cache_dir

    cache, rows = Path(default_cache_dir()), []
    header = stamp()
    for name in args.datasets:
        t0 = time.monotonic()
        for pooling, (x, y) in pooled_features(SHARED / name, cache).items():
            shuffled = np.random.default_rng(0).permutation(y)
            for labels, target in (("real", y), ("shuffled", shuffled)):
                for wd in WEIGHT_DECAYS:
                    zeros, chained = (cv_accuracy(x, target, wd, c) for c in (False, True))
                    rows.append({"dataset": name, "n": len(y), "pooling": pooling,
                                 "labels": labels, "weight_decay": wd, "from_zeros": zeros,
                                 "chained": chained, "gap": chained - zeros})
                    print(f"{name} {pooling} {labels} wd={wd:g}: zeros {zeros:.3f} "
                          f"chained {chained:.3f}", flush=True)
        print(f"{name}: {time.monotonic() - t0:.0f} s", flush=True)
    with open(args.out.with_suffix(".csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    agree = [wd for wd in WEIGHT_DECAYS
             if all(abs(r["gap"]) <= 0.005 for r in rows if r["weight_decay"] >= wd)]
    lines = [f"# Chained cross-validation folds of the exact solver: where they leak\n",
             f"{header}. Command: `python benchmarks/cv_fold_leak.py --datasets "
             f"{' '.join(args.datasets)}`\n",
             "5-fold CV accuracy of the L-BFGS linear head on frozen Lite0 features (224 px) "
             "of the training + validation images, each fold solved from zeros against "
             "chained from the previous fold's solution; labels real or shuffled.\n",
             f"Weakest penalty from which up every chained score is within 0.005 of its "
             f"unchained score: **{min(agree) if agree else 'none'}**.\n",
             "| dataset | n | pooling | labels | weight_decay | from zeros | chained | gap |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['dataset']} | {r['n']} | {r['pooling']} | {r['labels']} | "
              f"{r['weight_decay']:g} | {r['from_zeros']:.3f} | {r['chained']:.3f} | "
              f"{r['gap']:+.3f} |" for r in rows]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
