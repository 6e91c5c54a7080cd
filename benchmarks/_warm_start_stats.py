"""Statistics of the leave-one-out warm-start benchmark, computed from its csv rows."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

ABSENT = ("digits", "shapes")  # generated datasets from domains absent from the seed KB
# Scores closer than this count as level: one configuration on one split scores up to ~1e-4
# apart between runs (multithreaded solvers), far below what tells two searches apart.
LEVEL = 1e-3
FIELDS = ("dataset", "mode", "seed", "trial_index", "trial", "status", "score", "best_so_far",
          "origin", "fidelity", "cost_s", "test_score", "applied", "n_trials", "run_seconds",
          "reason")


def curves(rows: list[dict]) -> dict[tuple[str, str, int], list[float]]:
    """(dataset, mode, seed) -> best-so-far after trial 1, 2, ... (nan before any success)."""
    out: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: (r["dataset"], r["mode"], int(r["seed"]),
                                           int(r["trial_index"]))):
        value = row["best_so_far"]
        out[(row["dataset"], row["mode"], int(row["seed"]))].append(
            float(value) if value not in ("", None) else math.nan)
    return out


def run_seconds(rows: list[dict]) -> dict[tuple[str, str, int], float]:
    """(dataset, mode, seed) -> wall-clock seconds of that search."""
    return {(r["dataset"], r["mode"], int(r["seed"])): float(r["run_seconds"]) for r in rows}


def at(c: list[float], k: int) -> float:
    """Best-so-far after ``k`` trials (the last value if the run had fewer)."""
    return c[min(k, len(c)) - 1] if c else math.nan


def cmp(a: float, b: float, tol: float = LEVEL) -> int:
    """1 if ``a`` beats ``b``, -1 if it is behind, 0 within ``tol``."""
    return 0 if abs(a - b) <= tol else (1 if a > b else -1)


def trials_to_reach(c: list[float], target: float) -> int | None:
    """First trial count at which ``c`` reaches ``target`` (within ``LEVEL``); None if never."""
    return next((i for i, v in enumerate(c, 1) if v >= target - LEVEL), None)


def summarise(rows: list[dict], max_trials: int) -> tuple[list[dict], dict]:
    """Per-dataset statistics over the seeds both modes ran, and the two goal statistics."""
    c, secs = curves(rows), run_seconds(rows)
    table = []
    for name in sorted({k[0] for k in c}):
        seeds = sorted(s for (d, m, s) in c if d == name and m == "auto"
                       and (name, "none", s) in c)
        if not seeds:
            continue
        cold = [c[(name, "none", s)] for s in seeds]
        warm = [c[(name, "auto", s)] for s in seeds]
        # Paired by seed: the same seed means the same split, so the same validation set.
        reach = [trials_to_reach(w, at(k, max_trials)) for w, k in zip(warm, cold)]
        censored = [r if r is not None else max_trials + 1 for r in reach]
        applied = sorted({r["applied"] for r in rows if r["dataset"] == name
                          and r["mode"] == "auto" and int(r["seed"]) in seeds})
        table.append({
            "dataset": name, "seeds": seeds, "applied": "/".join(applied),
            "cold_best": statistics.mean(at(k, max_trials) for k in cold),
            "warm_best": statistics.mean(at(w, max_trials) for w in warm),
            "reach": statistics.mean(censored), "never": sum(r is None for r in reach),
            "warm3": statistics.mean(at(w, 3) for w in warm),
            "cold3": statistics.mean(at(k, 3) for k in cold),
            "warm1": statistics.mean(at(w, 1) for w in warm),
            "cold1": statistics.mean(at(k, 1) for k in cold),
            # Per seed: warm best@3 ahead of, level with, behind cold best@3.
            "wtl3": tuple(sum(cmp(at(w, 3), at(k, 3)) == o for w, k in zip(warm, cold))
                          for o in (1, 0, -1)),
            # seed -> (trials to reach, warm best@3 vs cold: 1 ahead, 0 level, -1 behind)
            "by_seed": {s: (r, cmp(at(w, 3), at(k, 3)))
                        for s, r, w, k in zip(seeds, censored, warm, cold)},
            "trials": f"{min(map(len, warm))}/{min(map(len, cold))}",
            "seconds": f"{statistics.mean(secs[(name, 'auto', s)] for s in seeds):.0f}/"
                       f"{statistics.mean(secs[(name, 'none', s)] for s in seeds):.0f}",
        })
    goals = {}
    loo = [t for t in table if t["dataset"] not in ABSENT]
    if loo:
        goals = {"median_reach": statistics.median(t["reach"] for t in loo),
                 "beats3": sum(cmp(t["warm3"], t["cold3"]) == 1 for t in loo),
                 "ties3": sum(cmp(t["warm3"], t["cold3"]) == 0 for t in loo),
                 "n": len(loo),
                 "wtl3": tuple(sum(t["wtl3"][i] for t in loo) for i in range(3))}
        # The same two statistics at each seed alone: a mean over seeds can hide a seed where
        # warm start lost.
        goals["per_seed"] = {}
        for seed in sorted({s for t in loo for s in t["by_seed"]}):
            at_seed = [t["by_seed"][seed] for t in loo if seed in t["by_seed"]]
            goals["per_seed"][seed] = (len(at_seed), statistics.median(r for r, _ in at_seed),
                                       sum(o == 1 for _, o in at_seed),
                                       sum(o == 0 for _, o in at_seed))
    return table, goals


def trial_kind(row: dict) -> str | None:
    """What produced a trial, for the comparison against the default: a prior point (the
    cheap or the fine-tuning kind) or a TPE draw (by phase and mode); None for the default
    itself (every seed-KB run's ``t000`` is the default configuration)."""
    origin, mode = row["origin"], row["mode"]
    if origin == "default" or (origin.startswith("kb:") and origin.endswith("/t000")):
        return None
    if origin.startswith("kb:"):
        return ("prior point, cheap head" if row["fidelity"] == "features"
                else "prior point, fine-tuning")
    if origin.startswith("tpe/"):
        who = f"warm ({row['applied']})" if mode == "auto" else "cold"
        return f"TPE {origin.split('/', 1)[1]} phase, {who}"
    return None


def against_default(rows: list[dict]) -> list[str]:
    """Markdown table: each kind of trial's score minus the default's on the same split (the
    cold run's first trial of that dataset and seed), over every paired dataset and seed."""
    default = {(r["dataset"], int(r["seed"])): float(r["score"]) for r in rows
               if r["mode"] == "none" and int(r["trial_index"]) == 1 and r["score"] not in ("",)}
    paired = {(r["dataset"], int(r["seed"])) for r in rows if r["mode"] == "auto"} & set(default)
    diffs: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        key, kind = (r["dataset"], int(r["seed"])), trial_kind(r)
        if kind and key in paired and r["score"] not in ("", None):
            diffs[kind].append(float(r["score"]) - default[key])
    lines = ["| trial kind | trials | beat the default | median vs default | mean vs default |",
             "|---|---|---|---|---|"]
    for kind in sorted(diffs):
        d = diffs[kind]
        lines.append(f"| {kind} | {len(d)} | {sum(x > LEVEL for x in d)} of {len(d)} | "
                     f"{statistics.median(d):+.4f} | {statistics.mean(d):+.4f} |")
    return lines


def kb_evidence(doc: dict) -> list[str]:
    """Markdown table: per dataset of the seed KB, its trials by fidelity and status: what a
    warm start can draw on once the held-out dataset is left out (prior points come only from
    complete trials)."""
    from transfer_automl.space import fidelity

    dataset = {r["id"]: r["dataset"] for r in doc["runs"]}
    name = {d["fingerprint"]: d["name"] for d in doc["datasets"]}
    counts: dict[str, dict[tuple[bool, str], int]] = defaultdict(lambda: defaultdict(int))
    for t in doc["trials"]:
        tuned = fidelity(t["config"]) != "features"
        counts[name[dataset[t["run_id"]]]][tuned, t["status"]] += 1
    lines = ["| dataset | trials | cheap head: complete / pruned / failed | "
             "fine-tuning: complete / pruned / failed |", "|---|---|---|---|"]
    for n in sorted(counts):
        c = counts[n]
        split = ["/".join(str(c[tuned, s]) for s in ("complete", "pruned", "failed"))
                 for tuned in (False, True)]
        lines.append(f"| {n} | {sum(c.values())} | {split[0]} | {split[1]} |")
    total = sum(c[True, "complete"] for c in counts.values())
    lines += ["", f"{total} complete fine-tuning trials in {len(doc['trials'])}: "
              "the fine-tuning prior points a held-out dataset can be given."]
    return lines


def anytime(rows: list[dict], max_trials: int) -> list[str]:
    """Markdown table of mean best-so-far per trial, warm vs cold, per dataset, over the seeds
    both modes ran (a seed only one mode has run so far would skew the comparison)."""
    c = curves(rows)
    lines = ["| dataset | mode | " + " | ".join(str(k) for k in range(1, max_trials + 1)) + " |",
             "|---|---|" + "---|" * max_trials]
    for name in sorted({k[0] for k in c}):
        paired = {s for d, m, s in c if d == name and m == "auto"} & {
            s for d, m, s in c if d == name and m == "none"}
        for mode in ("auto", "none"):
            runs = [v for (d, m, s), v in c.items() if d == name and m == mode and s in paired]
            if runs:
                means = [statistics.mean(at(v, k) for v in runs) for k in range(1, max_trials + 1)]
                lines.append(f"| {name} | {mode} | " + " | ".join(f"{x:.3f}" for x in means) + " |")
    return lines
