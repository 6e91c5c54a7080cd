"""The scheduling replay's report: paired makespan ratios and best-score differences.

Per dataset and slot count, the ratio of a scheduler's makespan to a reference's is taken
per repetition (same trial order) and summarised by its geometric mean with a 95%
t-interval of the mean log ratio over repetitions. Pooled over datasets: the mean of the
datasets' mean log ratios, with a t-interval over datasets (each dataset one unit).
Best-score differences (scheduler minus reference, accuracy points) are summarised the
same way on the plain difference.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

from benchmarks import harness
from benchmarks._sched_policies import SCHEDULERS

REFERENCES = ("sync-batches", "sync-sha")
GOALS = {"sync-batches": 0.5, "sync-sha": 0.8}
NAMES = {"sync-batches": "synchronous batches",
         "sync-sha": "synchronous successive halving",
         "sync-sha-free": "synchronous successive halving, free resume",
         "async": "asynchronous, no early stopping",
         "async+asha": "asynchronous + ASHA (`ASHAPruner`)",
         "async+stop": "asynchronous + default pruner (curve rules + median rule)",
         "async+asha-nolag": "asynchronous + ASHA, no stop latency (counterfactual)",
         "async+stop-nolag": "asynchronous + default pruner, no stop latency (counterfactual)"}


def t_interval(values: list[float]) -> tuple[float, float, float]:
    """Mean and 95% t-interval (the mean twice when there is one value)."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, mean, mean
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, mean - half, mean + half


def _index(rows: list[dict]) -> dict:
    """(dataset, slots, rep) -> scheduler -> row."""
    out: dict = defaultdict(dict)
    for r in rows:
        out[(r["dataset"], int(r["slots"]), int(r["rep"]))][r["scheduler"]] = r
    return out


def paired(rows: list[dict], scheduler: str, reference: str, slots: int,
           measure: str) -> dict[str, list[float]]:
    """Dataset -> per-repetition log makespan ratio (``measure="makespan"``) or best-score
    difference in points (``"best"``) of ``scheduler`` against ``reference``."""
    out: dict[str, list[float]] = defaultdict(list)
    for (dataset, n, _), by in sorted(_index(rows).items()):
        if n != slots or scheduler not in by or reference not in by:
            continue
        a, b = by[scheduler], by[reference]
        if measure == "makespan":
            out[dataset].append(math.log(float(a["makespan_s"]) / float(b["makespan_s"])))
        else:
            out[dataset].append(100 * (float(a["best_score"]) - float(b["best_score"])))
    return dict(out)


def pooled(per_dataset: dict[str, list[float]], log: bool) -> tuple[float, float, float]:
    """Mean over datasets of their means, with the t-interval over datasets."""
    mean, low, high = t_interval([statistics.fmean(v) for v in per_dataset.values()])
    return (math.exp(mean), math.exp(low), math.exp(high)) if log else (mean, low, high)


def fmt(stat: tuple[float, float, float], digits: int = 3) -> str:
    mean, low, high = stat
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def report(rows: list[dict], table: dict, args, stamp, source) -> list[str]:
    slot_counts = sorted({int(r["slots"]) for r in rows})
    reps = len({int(r["rep"]) for r in rows})
    n_curves = sum(len(v) for v in table.values())
    out = ["# Scheduling replay: asynchronous + early stopping on real curves\n",
           f"Measured: {stamp.line()}.\n",
           f"Command: `{args.command}`\n",
           f"Replayed: `{source}` ({len(table)} datasets, {n_curves} recorded trials with "
           f"curves of >= {args.min_curve} epochs; their per-epoch seconds and validation "
           f"accuracies, and their start-up: wall time less epochs). {args.trials} trials per "
           f"search, {reps} repetitions (trial orders) per dataset, the same order for every "
           f"scheduler and slot count; {', '.join(map(str, slot_counts))} simulated slots. "
           f"Successive halving: eta {args.eta}, rungs at {args.sha_min_epochs}, "
           f"{args.sha_min_epochs * args.eta}, ... epochs and the whole curve.\n"]
    if args.note:
        out.append(f"Note: {args.note}\n")
    out += ["Makespan ratios are geometric means with 95% t-intervals (paired by "
            "repetition within a dataset; pooled: over the datasets' means, each dataset one "
            "unit). Best-score differences are in accuracy points (best validation accuracy "
            "of any epoch run, scheduler minus reference).\n"]
    for slots in slot_counts:
        out += _pooled_table(rows, slots)
    out += _verdict(rows, slot_counts)
    for slots in slot_counts:
        out += _dataset_table(rows, slots)
    return out


def _pooled_table(rows: list[dict], slots: int) -> list[str]:
    body = []
    for name in SCHEDULERS:
        cells = [NAMES[name]]
        for ref in REFERENCES:
            cells.append(fmt(pooled(paired(rows, name, ref, slots, "makespan"), True))
                         if name != ref else "1")
        cells.append(fmt(pooled(paired(rows, name, "sync-batches", slots, "best"), False), 2)
                     if name != "sync-batches" else "0")
        mine = [r for r in rows if int(r["slots"]) == slots and r["scheduler"] == name]
        cells.append(f"{statistics.fmean(int(r['stopped']) / int(r['trials']) for r in mine):.2f}")
        cells.append(f"{statistics.fmean(float(r['makespan_s']) for r in mine):.0f}")
        body.append(cells)
    return [f"\n## {slots} slots, pooled over datasets\n",
            *harness.table(("scheduler", "makespan / sync batches", "makespan / sync SHA",
                            "best score - sync batches, points", "trials stopped early",
                            "mean makespan s"), body)]


def _verdict(rows: list[dict], slot_counts: list[int]) -> list[str]:
    out = ["\n## Goals (asynchronous + default pruner)\n"]
    for slots in slot_counts:
        parts = []
        for ref in REFERENCES:
            mean, low, high = pooled(paired(rows, "async+stop", ref, slots, "makespan"), True)
            met = "met" if high <= GOALS[ref] else ("met on the mean only" if mean <= GOALS[ref]
                                                    else "not met")
            parts.append(f"{mean:.3f} [{low:.3f}, {high:.3f}] of {NAMES[ref]} "
                         f"(goal <= {GOALS[ref]}: {met})")
        best = pooled(paired(rows, "async+stop", "sync-batches", slots, "best"), False)
        out.append(f"- **{slots} slots**: {'; '.join(parts)}; best score {fmt(best, 2)} points "
                   f"against synchronous batches.")
    return out


def _dataset_table(rows: list[dict], slots: int) -> list[str]:
    batches = paired(rows, "async+stop", "sync-batches", slots, "makespan")
    sha = paired(rows, "async+stop", "sync-sha", slots, "makespan")
    plain = paired(rows, "async", "sync-batches", slots, "makespan")
    best = paired(rows, "async+stop", "sync-batches", slots, "best")
    sha_best = paired(rows, "sync-sha", "sync-batches", slots, "best")
    body = []
    for dataset in sorted(batches):
        ratio = [tuple(math.exp(x) for x in t_interval(v[dataset]))
                 for v in (batches, sha, plain)]
        body.append([dataset, *(fmt(r) for r in ratio), fmt(t_interval(best[dataset]), 2),
                     fmt(t_interval(sha_best[dataset]), 2)])
    return [f"\n## {slots} slots, per dataset\n",
            *harness.table(("dataset", "async+stop / sync batches", "async+stop / sync SHA",
                            "async / sync batches", "async+stop best - batches, points",
                            "sync SHA best - batches, points"), body)]
