"""Scheduling on real curves: async + early stopping vs synchronous batches and successive halving.

Replays recorded trials of the meta-dataset (their per-epoch seconds and validation curves)
on simulated slots, so the product's driver and pruners are compared with synchronous
baselines on real curve shapes, 2-8 slots on any machine, in seconds of compute.

    transfer-automl benchmark scheduling_replay [--rows JSONL] [--datasets NAME...]
        [--slots 2 4 8] [--reps 5] [--trials 24] [--min-curve 3] [--eta 3]
        [--sha-min-epochs 2] [--note TEXT]

For each dataset the recorded rows with curves of at least ``--min-curve`` epochs are the
space (gradient heads and fine-tuning; exact-solver rows have one epoch). Repetition ``r``
draws a trial order from them (a random permutation, continued by another when the budget
exceeds the rows); every scheduler and slot count of that repetition runs that order, so
ratios are paired. Rows go to ``scheduling_replay.csv`` (resumed per dataset), the report to
``scheduling_replay.md``. ``--quick``: a generated set of 2 x 8 curves, 2 repetitions.
"""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path

import numpy as np

from benchmarks import _sched_policies as policies
from benchmarks import harness
from benchmarks._sched_replay import Recorded

ROWS = harness.RESULTS / "meta_dataset" / "portfolio_v1.jsonl"
FIELDS = ("dataset", "slots", "rep", "scheduler", "trials", "makespan_s", "best_score",
          "busy_s", "epochs", "stopped", "commit")
QUICK = {"rows": "", "reps": 2, "trials": 9, "slots": [2, 4]}
log = logging.getLogger("benchmarks.scheduling_replay")


def configure(parser) -> None:
    harness.add_datasets(parser, None, "datasets of the rows to replay")
    parser.add_argument("--rows", default=str(ROWS),
                        help="meta-dataset JSON lines to replay ('' under --quick: generated)")
    parser.add_argument("--slots", nargs="+", type=int, default=[2, 4, 8],
                        help="simulated slot counts (default 2 4 8)")
    harness.add_options(
        parser, ("--reps", 5, "repetitions: trial orders per dataset"),
        ("--trials", 24, "trials per search (every scheduler)"),
        ("--min-curve", 3, "epochs a recorded curve needs to be replayed"),
        ("--eta", 3, "reduction factor of successive halving (sync and ASHA)"),
        ("--sha-min-epochs", 2, "first rung of successive halving, epochs"),
        ("--note", "", "a remark recorded with the results"))


def load(path: Path, min_curve: int, names: list[str] | None = None) -> dict[str, dict]:
    """Dataset -> config id -> :class:`Recorded`: the complete rows with long enough curves
    (the first row of a configuration when one appears twice); datasets left with fewer than
    three rows are dropped."""
    table: dict[str, dict[str, Recorded]] = {}
    for line in Path(path).read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a build still appending: whole lines only
            continue
        if (row.get("state") != "complete" or len(row.get("curve") or ()) < min_curve
                or (names and row["dataset"] not in names)):
            continue
        table.setdefault(row["dataset"], {}).setdefault(row["config_id"], Recorded.from_row(row))
    return {d: rows for d, rows in sorted(table.items()) if len(rows) >= 3}


def trial_order(keys, trials: int, dataset: str, rep: int) -> list[str]:
    """Repetition ``rep``'s trial order: permutations of ``keys`` end to end, ``trials`` long."""
    rng = np.random.default_rng([rep, zlib.crc32(dataset.encode())])
    keys, order = sorted(keys), []
    while len(order) < trials:
        order += [keys[i] for i in rng.permutation(len(keys))]
    return order[:trials]


def replay_dataset(dataset: str, recorded: dict, args) -> list[dict]:
    """Every (slots, repetition, scheduler) of one dataset, as CSV rows."""
    out, commit = [], harness.commit()
    for rep in range(args.reps):
        order = trial_order(recorded, args.trials, dataset, rep)
        for slots in args.slots:
            for name in policies.SCHEDULERS:
                o = policies.run(name, recorded, order, slots, args.eta, args.sha_min_epochs)
                out.append({"dataset": dataset, "slots": slots, "rep": rep, "scheduler": name,
                            "trials": len(order), "makespan_s": round(o.makespan_s, 3),
                            "best_score": round(o.best_score, 5), "busy_s": round(o.busy_s, 3),
                            "epochs": o.epochs, "stopped": o.stopped, "commit": commit})
    return out


def write_synthetic(path: Path, datasets: int = 2, rows: int = 8, seed: int = 0) -> Path:
    """Generated rows in the meta-dataset's format: saturating curves of 5-20 epochs with
    noise, epoch seconds log-uniform in [0.5, 8], a start-up of 0-3 s."""
    rng = np.random.default_rng(seed)
    lines = []
    for d in range(datasets):
        for c in range(rows):
            epochs, final = int(rng.choice([5, 10, 20])), float(rng.uniform(0.4, 0.95))
            rate, epoch_s = float(rng.uniform(0.5, 4)), float(np.exp(rng.uniform(np.log(0.5),
                                                                                  np.log(8))))
            curve = [{"epoch": e, "seconds": round(epoch_s * rng.uniform(0.8, 1.2), 3),
                      "val_accuracy": round(min(1.0, final * (1 - np.exp(-e / rate))
                                                + 0.01 * rng.standard_normal()), 4),
                      "val_loss": 1.0, "accuracy": 1.0} for e in range(1, epochs + 1)]
            wall = sum(e["seconds"] for e in curve) + float(rng.uniform(0, 3))
            lines.append(json.dumps({"dataset": f"synthetic{d}", "config_id": f"c{c:02d}",
                                     "state": "complete", "curve": curve, "wall_s": wall}))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def run(args) -> int:
    from benchmarks import _sched_report as report

    path = Path(args.rows) if args.rows else write_synthetic(args.out / "synthetic_rows.jsonl")
    table = load(path, args.min_curve, args.datasets)
    if not table:
        raise SystemExit(f"{path}: no dataset with three or more curves of >= "
                         f"{args.min_curve} epochs")
    stamp = harness.Stamp.now()
    rows = harness.result_rows(args, "scheduling_replay.csv", FIELDS)
    with rows.locked():
        done = rows.done(lambda r: r["dataset"])
        for dataset, recorded in table.items():
            if dataset in done:
                log.info("%s: already in %s", dataset, rows.path.name)
                continue
            log.info("%s: %d curves, %d repetitions x %s slots", dataset, len(recorded),
                     args.reps, args.slots)
            rows.append(replay_dataset(dataset, recorded, args))
        found = [r for r in rows.read() if r["dataset"] in table
                 and int(r["slots"]) in args.slots and int(r["rep"]) < args.reps
                 and int(r["trials"]) == args.trials]
    lines = report.report(found, table, args, stamp, path)
    harness.write_report(args.out / "scheduling_replay.md", lines)
    return 0
