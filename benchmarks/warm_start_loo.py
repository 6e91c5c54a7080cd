"""Leave-one-dataset-out benchmark of the knowledge-base warm start.

For each dataset D in ``../shared/datasets/`` and each (mode, seed), a fresh temporary SQLite KB
is filled from the seed KB export (``knowledge_base/seed_kb.json``) minus every record of D
(datasets matched by name, with their runs and trials; groups are left out so the KB regroups
itself without D), then ``fit_auto(D, warm_start=mode, seed=seed, multi_fidelity=True,
refit=False)`` runs on it. A fresh KB per run matters: a run writes its own trials into its KB.

Best-so-far validation accuracy after each trial (trial-id order; failed trials add nothing,
pruned trials count with the score of their best epoch)
goes to ``benchmarks/results/warm_start_loo.csv``; the summary table to ``warm_start_loo.md``;
the anytime plot to ``warm_start_loo.png`` when matplotlib is installed.

    python benchmarks/warm_start_loo.py [--datasets food10 ...] [--modes auto none]
        [--seeds 0 1 2] [--max-trials 12] [--time-budget 900] [--seed-kb PATH]
    python benchmarks/warm_start_loo.py --report-only     # rebuild md/png from the csv
    python benchmarks/warm_start_loo.py --datasets none --absent digits shapes
    python benchmarks/warm_start_loo.py --shard 1/2 & python benchmarks/warm_start_loo.py --shard 2/2
    python benchmarks/warm_start_loo.py --seed-kb OTHER.json --results DIR \
        --cold-from benchmarks/results/warm_start_loo.csv     # another seed KB, same cold runs

``--absent`` adds datasets from domains the seed KB has never seen, run against the whole seed
KB: scikit-learn's handwritten digits (the demo dataset) and synthetic geometric shapes drawn by
scikit-image (a test dependency). There warm start should back off (to the configurations
that rank best over the whole KB, no neighbour history) and lose nothing against cold start;
they are reported in their own table and left out of the two goal statistics.

Resumable: (dataset, mode, seed) runs already in the csv are skipped, and a search whose
process was killed is resumed from its run directory (kept under the temp directory).
``--shard i/n`` runs every n-th search of the list (skipping those done), so n processes (one
per core) share the work; they append to the same csv under a file lock. The comparison is at
equal trial budgets, so give a time budget that rarely binds when processes share the cores.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import fcntl
import hashlib
import json
import logging
import math
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
RESULTS = ROOT / "benchmarks" / "results"
CSV_PATH = RESULTS / "warm_start_loo.csv"
MD_PATH = RESULTS / "warm_start_loo.md"
PNG_PATH = RESULTS / "warm_start_loo.png"
SEED_KB = ROOT / "knowledge_base" / "seed_kb.json"


class Outputs(NamedTuple):
    """Where one benchmark job writes (its csv, md and png) and the seed KB it runs against."""

    csv: Path
    md: Path
    png: Path
    seed_kb: Path

    @classmethod
    def under(cls, results: Path, seed_kb: Path) -> "Outputs":
        return cls(results / CSV_PATH.name, results / MD_PATH.name, results / PNG_PATH.name,
                   seed_kb)


def kb_tag(seed_kb: Path) -> str:
    """A short digest of the seed KB file: run directories carry it, so a search against one
    seed KB never resumes a search that an earlier process began against another."""
    return hashlib.sha256(seed_kb.read_bytes()).hexdigest()[:8]
ABSENT = ("digits", "shapes")  # generated datasets from domains absent from the seed KB
SCORED = ("complete", "pruned")  # a pruned trial keeps the score of its best epoch
# Scores closer than this count as level: one configuration on one split scores up to ~1e-4
# apart between runs (multithreaded solvers), far below what tells two searches apart.
LEVEL = 1e-3
FIELDS = ("dataset", "mode", "seed", "trial_index", "trial", "status", "score", "best_so_far",
          "origin", "fidelity", "cost_s", "test_score", "applied", "n_trials", "run_seconds",
          "reason")


def without_dataset(doc: dict, name: str) -> tuple[dict, int]:
    """The KB export ``doc`` minus every dataset called ``name``, its runs and trials."""
    drop = {d["fingerprint"] for d in doc["datasets"] if d["name"] == name}
    runs = [r for r in doc["runs"] if r["dataset"] not in drop]
    keep_runs = {r["id"] for r in runs}
    out = dict(doc, datasets=[d for d in doc["datasets"] if d["fingerprint"] not in drop],
               runs=runs, trials=[t for t in doc["trials"] if t["run_id"] in keep_runs],
               groups=[])  # centroids were fitted with D; let the KB regroup without it
    return out, len(drop)


def curve(leaderboard: list[dict]) -> list[dict]:
    """Leaderboard rows in trial order with the best-so-far validation accuracy."""
    best, rows = None, []
    for row in sorted(leaderboard, key=lambda r: r["trial"]):
        score = row["score"] if row["status"] in SCORED else None
        if score is not None and (best is None or score > best):
            best = score
        rows.append({"trial": row["trial"], "status": row["status"], "score": score,
                     "best_so_far": best, "origin": row["origin"],
                     "fidelity": row["fidelity"], "cost_s": row["cost_s"],
                     "reason": row.get("reason") or ""})
    return rows


def write_shapes(out: Path, per_class: int = 150, size: int = 96) -> Path:
    """Synthetic geometric shapes (circle, rectangle, triangle, ellipse), one per image, of
    random colour, size and position on a white background; deterministic."""
    import numpy as np
    from PIL import Image
    from skimage.draw import random_shapes

    done = out / ".complete"
    if done.exists():
        return out
    rng = np.random.default_rng(0)
    for shape in ("circle", "rectangle", "triangle", "ellipse"):
        (out / shape).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image, _ = random_shapes((size, size), max_shapes=1, min_shapes=1, shape=shape,
                                     min_size=size // 3, max_size=size - 8,
                                     rng=int(rng.integers(2**31)), channel_axis=-1)
            Image.fromarray(image).save(out / shape / f"{i:03d}.png")
    done.write_text("ok")
    return out


def absent_folder(name: str, cache: Path) -> Path:
    """Generate (once) the absent-domain dataset ``name`` under the cache directory."""
    from transfer_automl.demo import write_digits

    root = cache / "benchmark-datasets" / name
    return write_digits(root) if name == "digits" else write_shapes(root)


def interrupted(prefix: str, args) -> tuple[Path, str] | None:
    """The work directory and run id of a search of this job that a kill cut short (its
    directory outlives the process), if it ran with the same trial and time budgets."""
    from transfer_automl.run import RunFiles

    for work in sorted(Path(tempfile.gettempdir()).glob(f"{prefix}*")):
        runs = [d for d in (work / "runs").glob("*") if (d / "run.json").is_file()]
        if len(runs) != 1 or not (work / "kb.sqlite").is_file():
            continue
        settings, _ = RunFiles(runs[0]).load_settings()
        if (settings["max_trials"], settings["time_budget_s"]) == (args.max_trials,
                                                                    args.time_budget):
            return work, runs[0].name
    return None


def run_one(folder: Path, doc: dict, mode: str, seed: int, args, cache: Path) -> list[dict]:
    """One search on a fresh KB without ``folder``'s records; its csv rows.

    A search that an earlier process started and was killed during (a session ending, say)
    is resumed from its run directory instead: its finished trials stand, the rest run, and
    its search seconds count the time spent before the kill.
    """
    from knowledge_base import KnowledgeBase
    from transfer_automl import fit_auto
    from transfer_automl.run import RunFiles

    prefix = f"loo-{kb_tag(args.seed_kb)}-{folder.name}-{mode}-{seed}-"
    found = interrupted(prefix, args)
    tmp = found[0] if found else Path(tempfile.mkdtemp(prefix=prefix))
    with open(tmp / "lock", "w") as lock:
        try:  # never two processes on one search
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(f"{tmp} is in use by another process") from None
        try:
            spent = 0.0
            if found:
                spent = RunFiles(tmp / "runs" / found[1]).journal()[1]
                print(f"{folder.name} {mode} seed {seed}: resuming run {found[1]} "
                      f"({spent:.0f} s spent)", flush=True)
            else:
                filtered, dropped = without_dataset(doc, folder.name)
                (tmp / "kb.json").write_text(json.dumps(filtered), encoding="utf-8")
                with KnowledgeBase(tmp / "kb.sqlite") as kb:
                    counts = kb.import_json(tmp / "kb.json")
                logging.getLogger("loo").info("%s: dropped %d dataset records; KB %s",
                                              folder.name, dropped, counts)
            t0 = time.monotonic()
            r = fit_auto(None if found else folder, max_trials=args.max_trials,
                         time_budget_s=args.time_budget, kb=str(tmp / "kb.sqlite"),
                         warm_start=mode, seed=seed, cache_dir=cache, runs_dir=tmp / "runs",
                         multi_fidelity=True, n_parallel=1, resume=found[1] if found else None,
                         refit=False)  # the comparison is on validation scores; no refit
            seconds = spent + time.monotonic() - t0
        except Exception:  # a failure, not a kill: the next attempt starts afresh
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    shutil.rmtree(tmp, ignore_errors=True)
    applied = r.explanation.rsplit("warm start ", 1)[-1].split(":", 1)[0]
    rows = curve(r.leaderboard)
    for i, row in enumerate(rows, 1):
        row.update(dataset=folder.name, mode=mode, seed=seed, trial_index=i,
                   test_score=r.test_score, applied=applied, n_trials=len(rows),
                   run_seconds=round(seconds, 1))
    return rows


def read_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock shared by every process writing ``path`` and its report."""
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def shard(value: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``1 <= i <= n``."""
    try:
        i, n = (int(x) for x in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/n, e.g. 1/2, got {value!r}") from None
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"expected 1 <= i <= n, got {value!r}")
    return i, n


def append_rows(path: Path, rows: list[dict]) -> None:
    """Append ``rows``; a csv written with fewer columns is first rewritten with all of them
    (the old rows' new columns left empty)."""
    if path.exists():
        with path.open(newline="") as f:
            header = next(csv.reader(f), [])
        if tuple(header) != FIELDS:
            old = read_rows(path)
            path.unlink()
            append_rows(path, old)
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        if new:
            w.writeheader()
        for row in rows:
            w.writerow({k: row.get(k) for k in FIELDS})


def copy_cold(source: Path, target: Path, datasets: set[str], seeds: list[int]) -> int:
    """Append to ``target`` the cold runs in ``source`` of ``datasets`` at ``seeds`` that
    ``target`` lacks; the number of runs copied. Valid for any seed KB, because a cold search
    matches the KB only to report the match and never applies it."""
    have = {(r["dataset"], int(r["seed"])) for r in read_rows(target) if r["mode"] == "none"}
    rows = [r for r in read_rows(source) if r["mode"] == "none" and r["dataset"] in datasets
            and int(r["seed"]) in seeds and (r["dataset"], int(r["seed"])) not in have]
    if rows:
        append_rows(target, rows)
    return len({(r["dataset"], int(r["seed"])) for r in rows})


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


def cell(text: str | None) -> str:
    """``text`` fit for one markdown table cell."""
    return " ".join((text or "").split()).replace("|", "/")


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


def write_report(rows: list[dict], max_trials: int, command: str, out: Outputs) -> None:
    table, goals = summarise(rows, max_trials)
    lines = ["# Warm start vs cold start, leave one dataset out", "",
             f"Command: `{command}`  ", f"Date: {dt.date.today().isoformat()}", "",
             "For each dataset, the KB is the seed KB without that dataset. `auto` = warm start "
             "from the KB, `none` = cold start, same trial budget, same seeds (a seed fixes the "
             "split, so warm and cold runs of one seed share the validation set). Values are "
             "validation accuracy, means over the seeds listed. *Trials to reach*: trials the "
             f"warm run needs to reach the cold run's best-of-{max_trials} for the same seed "
             f"({max_trials + 1} when it never does within the budget). Scores less than "
             f"{LEVEL} apart count as level, here and in the best@3 comparisons (one "
             "configuration scores up to ~1e-4 apart between runs). Under a time budget a "
             "search may end before the trial budget (see *fewest trials run*): its best-of-"
             f"{max_trials} is then the best of the trials it ran, and the anytime table "
             "carries that value forward.", "",
             "Every search here draws its trial seeds from its run seed and the trial number "
             "mixed (`transfer_automl.study.trial_seed`), so no cold search replays the "
             "configurations the seed KB holds, whatever seed built the KB. (With the earlier "
             "run seed + trial number, seed 1 replayed seed 0 shifted by one trial.) The seed "
             "KB's own searches ran at seeds 100-107.", "",
             "*Warm start* is what `auto` applied: `points+history` from the nearest datasets, "
             "or `points` alone for a dataset the KB finds far from everything (the "
             "configurations that rank best over the whole KB; README, step 2).", "",
             f"| dataset | seeds | warm start | cold best-of-{max_trials} | "
             f"warm best-of-{max_trials} | "
             "trials to reach (mean) | never reached | warm best@1 | cold best@1 | "
             "warm best@3 | cold best@3 | seeds warm@3 ahead/level/behind | "
             "fewest trials run (warm/cold) | search seconds, mean (warm/cold) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    absent = [t for t in table if t["dataset"] in ABSENT]
    for t in (t for t in table if t["dataset"] not in ABSENT):
        lines.append(f"| {t['dataset']} | {','.join(map(str, t['seeds']))} | {t['applied']} | "
                     f"{t['cold_best']:.4f} | {t['warm_best']:.4f} | {t['reach']:.2f} | "
                     f"{t['never']} | {t['warm1']:.4f} | {t['cold1']:.4f} | "
                     f"{t['warm3']:.4f} | {t['cold3']:.4f} | {'/'.join(map(str, t['wtl3']))} | "
                     f"{t['trials']} | {t['seconds']} |")
    missing = sorted({p.name for p in SHARED.iterdir() if p.is_dir()} - {t["dataset"] for t in table}
                     ) if SHARED.is_dir() else []
    if missing:
        lines += ["", f"Not run yet (no seed with both modes): {', '.join(missing)}. The goal "
                  "statistics below cover only the datasets in the table."]
    if goals:
        lines += ["", f"**Median over {goals['n']} datasets of trials to reach cold best-of-"
                  f"{max_trials}: {goals['median_reach']:.2f}** (goal: <= 4).  ",
                  f"**Datasets where warm best@3 beats cold best@3: {goals['beats3']} of "
                  f"{goals['n']}** ({goals['ties3']} ties; goal: >= 6 of 8).  ",
                  "Per (dataset, seed) pair, warm best@3 is ahead/level/behind cold best@3: "
                  f"{'/'.join(map(str, goals['wtl3']))}.",
                  "", "The same statistics at each seed alone:", "",
                  "| seed | datasets | median trials to reach | warm best@3 beats cold | level |",
                  "|---|---|---|---|---|"]
        lines += [f"| {seed} | {n} | {reach:.1f} | {beats} of {n} | {level} |"
                  for seed, (n, reach, beats, level) in goals["per_seed"].items()]
    if absent:
        lines += ["", "## Domains absent from the KB (whole seed KB; warm start should back off "
                  "and lose nothing)",
                  "", f"| dataset | seeds | warm start | cold best-of-{max_trials} | warm best-of-"
                  f"{max_trials} | warm - cold | warm best@3 | cold best@3 | warm - cold @3 |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for t in absent:
            lines.append(f"| {t['dataset']} | {','.join(map(str, t['seeds']))} | {t['applied']} | "
                         f"{t['cold_best']:.4f} | {t['warm_best']:.4f} | "
                         f"{t['warm_best'] - t['cold_best']:+.4f} | {t['warm3']:.4f} | "
                         f"{t['cold3']:.4f} | {t['warm3'] - t['cold3']:+.4f} |")
    failed = [r for r in rows if r["status"] == "failed"]
    if failed:
        lines += ["", "## Failed trials", "",
                  "A failed trial counts as no result: the search goes on without it.", "",
                  "| dataset | mode | seed | trial | fidelity | seconds | reason |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {r['dataset']} | {r['mode']} | {r['seed']} | {r['trial']} | "
                  f"{r['fidelity']} | {r['cost_s']} | {cell(r.get('reason')) or '(not recorded)'} |"
                  for r in failed]
    lines += ["", "## Which trials beat the default", "",
              "Every trial's validation accuracy minus the default configuration's on the same "
              "split (the cold run's first trial for that dataset and seed), by what produced "
              "it: a prior point from the KB (the default itself left out) or a TPE draw, per "
              "phase of the multi-fidelity schedule. Pruned trials count with their best "
              "epoch. Every dataset and seed both modes ran, absent domains included.", ""]
    lines += against_default(rows)
    if out.seed_kb.exists():
        shown = (out.seed_kb.resolve().relative_to(ROOT) if out.seed_kb.resolve().is_relative_to(
            ROOT) else out.seed_kb)
        lines += ["", "## What the seed KB holds", "",
                  f"The trials of the seed KB (`{shown}`, built by "
                  "`benchmarks/build_seed_kb.py`) by dataset, fidelity and status.", ""]
        lines += kb_evidence(json.loads(out.seed_kb.read_text(encoding="utf-8")))
    lines += ["", "## Anytime: mean best-so-far validation accuracy after k trials", "",
              "Over the seeds both modes ran; the plot also shows runs still unpaired.", ""]
    lines += anytime(rows, max_trials)
    out.md.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out.md}", flush=True)
    plot(rows, max_trials, out.png)


def plot(rows: list[dict], max_trials: int, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed; no plot written (the md has the anytime table)",
              flush=True)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    c = curves(rows)
    names = sorted({k[0] for k in c})
    cols = min(4, len(names)) or 1
    fig, axes = plt.subplots(math.ceil(len(names) / cols), cols, squeeze=False,
                             figsize=(3.2 * cols, 2.6 * math.ceil(len(names) / cols)))
    for ax, name in zip(axes.flat, names):
        for mode, colour in (("auto", "tab:red"), ("none", "tab:blue")):
            for (d, m, s), v in c.items():
                if d == name and m == mode:
                    ax.plot(range(1, len(v) + 1), v, color=colour, alpha=0.7,
                            label=f"{'warm' if mode == 'auto' else 'cold'} s{s}")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("trials", fontsize=8)
        ax.set_ylabel("best val acc", fontsize=8)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}", flush=True)


def main(argv: list[str] | None = None) -> int:
    from transfer_automl.api import default_cache_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+",
                    help="dataset folder names (default: all; 'none' for only --absent)")
    ap.add_argument("--absent", nargs="*", default=[], choices=ABSENT,
                    help="generated datasets from domains absent from the KB")
    ap.add_argument("--root", type=Path, default=SHARED)
    ap.add_argument("--modes", nargs="+", default=["auto", "none"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--max-trials", type=int, default=12)
    ap.add_argument("--time-budget", type=float, default=900, help="seconds per search")
    ap.add_argument("--seed-kb", type=Path, default=SEED_KB)
    ap.add_argument("--cache-dir", type=Path, default=None)
    ap.add_argument("--results", type=Path, default=RESULTS,
                    help="folder for the csv, md and png (default benchmarks/results)")
    ap.add_argument("--cold-from", type=Path, metavar="CSV",
                    help="take cold (mode none) runs of the job's datasets and seeds from this "
                         "csv (run with the same --max-trials) instead of running them: a cold "
                         "search never applies the KB")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--shard", type=shard, default=(1, 1), metavar="I/N",
                    help="run the I-th of every N searches (default 1/1: all)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    given = list(argv if argv is not None else sys.argv[1:])
    if "--shard" in given:  # the report names the whole job, not this process's share
        del given[given.index("--shard"):given.index("--shard") + 2]
    given = [a for a in given if not a.startswith("--shard=")]
    command = "python benchmarks/warm_start_loo.py " + " ".join(given)
    out = Outputs.under(args.results, args.seed_kb)
    args.results.mkdir(parents=True, exist_ok=True)
    if args.report_only:  # re-render only: keep naming the command that produced the rows
        previous = out.md.read_text(encoding="utf-8") if out.md.exists() else ""
        found = re.search(r"^Command: `([^`]*)`", previous, re.MULTILINE)
        write_report(read_rows(out.csv), args.max_trials, found.group(1) if found else command,
                     out)
        return 0
    doc = json.loads(args.seed_kb.read_text(encoding="utf-8"))
    cache = (args.cache_dir or default_cache_dir()).expanduser()
    folders = sorted(p for p in args.root.iterdir() if p.is_dir()) if args.root.is_dir() else []
    if not folders and not args.absent:
        print(f"no dataset folder at {args.root}; nothing to benchmark", flush=True)
        return 0
    if args.datasets:
        folders = [p for p in folders if p.name in args.datasets]
    folders += [absent_folder(name, cache) for name in args.absent]
    # Seed-major order: every dataset gets seed 0 before any gets seed 1. Shards split the
    # whole list, so processes started at different times still share it without overlap.
    jobs = [(folder, mode, seed) for seed in args.seeds for folder in folders
            for mode in args.modes]
    if args.cold_from:
        with locked(out.csv):
            copied = copy_cold(args.cold_from, out.csv, {p.name for p in folders}, args.seeds)
        print(f"took {copied} cold runs from {args.cold_from}", flush=True)
    i, n = args.shard
    for folder, mode, seed in jobs[i - 1::n]:
        with locked(out.csv):
            done = {(r["dataset"], r["mode"], int(r["seed"])) for r in read_rows(out.csv)}
        if (folder.name, mode, seed) in done:
            continue
        t0 = time.monotonic()
        try:
            rows = run_one(folder, doc, mode, seed, args, cache)
        except Exception as exc:  # record nothing; a re-run retries it
            print(f"{folder.name} {mode} seed {seed}: FAILED: {exc}", flush=True)
            continue
        best = [r["best_so_far"] for r in rows]
        print(f"{folder.name} {mode} seed {seed} ({rows[0]['applied']}): best@3 "
              f"{at(best, 3)}, best@{len(rows)} {best[-1]}, test {rows[0]['test_score']}, "
              f"{time.monotonic() - t0:.0f} s", flush=True)
        with locked(out.csv):
            append_rows(out.csv, rows)
            write_report(read_rows(out.csv), args.max_trials, command, out)
    with locked(out.csv):
        write_report(read_rows(out.csv), args.max_trials, command, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
