"""How weak a penalty must be before chained cross-validation folds leak.

Until the fix, the exact solver started each fold's L-BFGS from the previous fold's solution,
which had trained on the current fold's held-out rows. This suite measures, on frozen
EfficientNet-Lite0 features (224 px, max and average pooling), the 5-fold CV accuracy of the
linear head for a grid of weight decays, with each fold solved from zeros (what the runner
does now) and chained (what it did), with the real labels and with labels shuffled (no
signal: chance is the majority share). The weakest penalty at which the two agree says which
recorded exact-solver scores need re-scoring.

    transfer-automl benchmark cv_fold_leak --datasets brain_tumor_mri bccd_wbc3 gtsrb_signs10
    transfer-automl benchmark cv_fold_leak --audit-loo benchmarks/results/warm_start_loo.csv

Writes ``cv_fold_leak.md`` and ``cv_fold_leak.csv`` (one dataset's rows appended when it
finishes; finished datasets are skipped on a re-run). ``--quick``: the generated ``colours``
dataset at 64 px, two weight decays.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from benchmarks import harness

WEIGHT_DECAYS = (1e-6, 3e-6, 1e-5, 3e-5, 1e-4, 1.66e-4, 3e-4, 5e-4, 1e-3)
FIELDS = ("dataset", "n", "pooling", "labels", "weight_decay", "from_zeros", "chained", "gap")
QUICK = {"datasets": ["colours"], "weight_decays": [1e-4, 1e-3], "resolution": 64}
log = logging.getLogger("benchmarks.cv_fold_leak")


def configure(parser) -> None:
    harness.add_datasets(parser, ["brain_tumor_mri", "bccd_wbc3", "gtsrb_signs10"])
    parser.add_argument("--weight-decays", nargs="+", type=float, default=list(WEIGHT_DECAYS))
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--audit-loo", type=Path, default=None, metavar="CSV",
                        help="only flag the rows of a leave-one-out CSV a leak can explain")


def pooled_features(folder: Path, cache: Path, resolution: int
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Max- and average-pooled Lite0 features of training + validation images."""
    from pretrained import load_backbone

    from transfer_automl.data import load_dataset
    from transfer_automl.space import default_space
    from transfer_automl.training import extract_features, frozen_part, select_pooled

    data = load_dataset(folder, workdir=cache / "datasets", seed=0)
    backbone = load_backbone("efficientnet_lite0", cache_dir=cache / "backbones")
    config = {**default_space().default, "resolution": resolution}
    arrays = extract_features(frozen_part(backbone, config), data, resolution)
    x = np.concatenate([arrays["train"], arrays["val"]])
    y = np.concatenate([data.train.labels, data.val.labels])
    return {p: (select_pooled(x, backbone, p), y) for p in ("max", "avg")}


def cv_accuracy(x: np.ndarray, y: np.ndarray, wd: float, chained: bool) -> float:
    """5-fold CV accuracy of the exact linear head, folds from zeros or chained."""
    from sklearn.model_selection import StratifiedKFold

    from transfer_automl.training import evaluate_linear, fit_linear

    n_classes = int(y.max()) + 1
    solution, hits = None, 0.0
    for train, held in StratifiedKFold(5, shuffle=True, random_state=0).split(x, y):
        solution = fit_linear(x[train], y[train], n_classes, wd,
                              init=solution if chained else None)
        hits += evaluate_linear(solution, x[held], y[held])[1] * len(held)
    return hits / len(y)


def measure(name: str, folder: Path, args) -> list[dict]:
    """Every (pooling, labels, weight decay) row of one dataset."""
    rows = []
    for pooling, (x, y) in pooled_features(folder, args.cache, args.resolution).items():
        shuffled = np.random.default_rng(0).permutation(y)
        for labels, target in (("real", y), ("shuffled", shuffled)):
            for wd in args.weight_decays:
                zeros, chained = (cv_accuracy(x, target, wd, c) for c in (False, True))
                rows.append({"dataset": name, "n": len(y), "pooling": pooling,
                             "labels": labels, "weight_decay": wd, "from_zeros": zeros,
                             "chained": chained, "gap": chained - zeros})
                log.info("%s %s %s wd=%g: zeros %.3f chained %.3f", name, pooling, labels, wd,
                         zeros, chained)
    return rows


def report(rows: list[dict], args) -> None:
    rows = [{**r, **{k: float(r[k]) for k in ("weight_decay", "from_zeros", "chained", "gap")}}
            for r in rows]
    decays = sorted({r["weight_decay"] for r in rows})
    agree = [wd for wd in decays
             if all(abs(r["gap"]) <= 0.005 for r in rows if r["weight_decay"] >= wd)]
    lines = ["# Chained cross-validation folds of the exact solver: where they leak\n",
             f"{harness.Stamp.now().line()}. Command: `{args.command}`\n",
             f"5-fold CV accuracy of the L-BFGS linear head on frozen Lite0 features "
             f"({args.resolution} px) of the training + validation images, each fold solved "
             "from zeros against chained from the previous fold's solution; labels real or "
             "shuffled.\n",
             f"Weakest penalty from which up every chained score is within 0.005 of its "
             f"unchained score: **{min(agree) if agree else 'none'}**.\n",
             *harness.table(("dataset", "n", "pooling", "labels", "weight_decay", "from zeros",
                             "chained", "gap"),
                            [(r["dataset"], r["n"], r["pooling"], r["labels"],
                              f"{r['weight_decay']:g}", f"{r['from_zeros']:.3f}",
                              f"{r['chained']:.3f}", f"{r['gap']:+.3f}") for r in rows])]
    harness.write_report(args.out / "cv_fold_leak.md", lines)


def audit_loo(csv_path: Path, out: Path, command: str, margin: float = 0.01) -> None:
    """Flag the leave-one-out rows a leak can explain: a cross-validated cheap trial above its
    own search's default trial by more than ``margin`` (the CSV keeps no configurations, so
    the rows cannot be re-scored; these are the candidates), with the run's test score."""
    runs = defaultdict(list)
    for r in harness.ResultRows(csv_path, ()).read():
        runs[(r["dataset"], r["mode"], r["seed"])].append(r)
    lines = ["# Leave-one-out rows that chained folds can explain\n",
             f"{harness.Stamp.now().line()}. Command: `{command}`\n",
             f"Cheap (cached-feature, cross-validated) trials whose score exceeds their own "
             f"search's default trial by more than {margin}; `run test` is the exported "
             "model's test accuracy of that search.\n",
             "| dataset | mode | seed | trial | origin | score | default's score | run best | "
             "run test |", "|---|---|---|---|---|---|---|---|---|"]
    flagged, total = defaultdict(int), defaultdict(int)
    for (name, mode, seed), mine in sorted(runs.items()):
        total[mode] += sum(r["fidelity"] == "features" and bool(r["score"]) for r in mine)
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
    lines.append("\n" + "; ".join(f"mode {m}: {flagged[m]} of {total[m]} cheap trials flagged"
                                   for m in sorted(total)) + ".")
    harness.write_report(out, lines)


def run(args) -> int:
    if args.audit_loo:
        audit_loo(args.audit_loo, args.out / "cv_fold_leak_loo_audit.md", args.command)
        return 0
    table = harness.result_rows(args, "cv_fold_leak.csv", FIELDS)
    for name in args.datasets:
        folder = harness.resolve(name, args.root)
        if folder is None:
            raise SystemExit(f"dataset {name!r} not found under {args.root}")
        with table.locked():
            if name in table.done(lambda r: r["dataset"]):
                continue
        t0 = time.monotonic()
        rows = measure(name, folder, args)
        with table.locked():
            table.append(rows)
        log.info("%s: %.0f s", name, time.monotonic() - t0)
    report([r for r in table.read() if r["dataset"] in args.datasets], args)
    return 0
