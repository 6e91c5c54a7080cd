"""Warm start vs cold start, leaving each dataset out of the seed knowledge base.

For each dataset D under ``--root`` and each (mode, seed), a fresh temporary SQLite KB is
filled from the seed KB export (``knowledge_base/seed_kb.json``) minus every record of D
(datasets matched by name, with their runs and trials; groups are left out so the KB regroups
itself without D), then ``fit_auto(D, warm_start=mode, seed=seed, multi_fidelity=True,
refit=False)`` runs on it. A fresh KB per run matters: a run writes its own trials into its KB.

Best-so-far validation accuracy after each trial (trial-id order; failed trials add nothing,
pruned trials count with the score of their best epoch) goes to ``warm_start_loo.csv``; the
summary table to ``warm_start_loo.md``; the anytime plot to ``warm_start_loo.png``.

    transfer-automl benchmark warm_start_loo [--datasets food10 ...] [--modes auto none]
        [--seeds 0 1 2] [--max-trials 12] [--time-budget 900] [--seed-kb PATH]
    transfer-automl benchmark warm_start_loo --report-only    # rebuild md/png from the csv
    transfer-automl benchmark warm_start_loo --datasets none --absent digits shapes
    transfer-automl benchmark warm_start_loo --shard 1/2 &  ... --shard 2/2
    transfer-automl benchmark warm_start_loo --seed-kb OTHER.json --out DIR \\
        --cold-from benchmarks/results/warm_start_loo.csv    # another seed KB, same cold runs

``--absent`` adds datasets from domains the seed KB has never seen, run against the whole seed
KB: scikit-learn's handwritten digits (the demo dataset) and synthetic geometric shapes. There
warm start should back off and lose nothing against cold start; they are reported in their own
table and left out of the two goal statistics.

Resumable: (dataset, mode, seed) runs already in the csv are skipped, and a search whose
process was killed is resumed from its run directory (kept under the temp directory).
``--shard i/n`` runs every n-th search of the list, so n processes share the work, appending
to one csv under a file lock. The comparison is at equal trial budgets, so give a time budget
that rarely binds when processes share the cores. ``--quick``: the generated ``colours``
dataset, seed 0, 2 trials per search in a 64-px space.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import re
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks import harness
from transfer_automl import SearchOptions, TrackingOptions, api
from benchmarks._warm_start_report import ABSENT, FIELDS, Outputs, at, write_report

SEED_KB = Path(__file__).resolve().parents[1] / "knowledge_base" / "seed_kb.json"
SCORED = ("complete", "pruned")  # a pruned trial keeps the score of its best epoch
NOT_IN_COMMAND = ("--shard",)  # the report names the whole job, not one process's share
QUICK = {"datasets": ["colours"], "seeds": [0], "max_trials": 2, "time_budget": 120.0}
log = logging.getLogger("benchmarks.warm_start_loo")


def configure(parser) -> None:
    harness.add_datasets(parser, None, "dataset folder names ('none' for only --absent)")
    harness.add_seeds(parser, [0, 1, 2])
    parser.add_argument("--absent", nargs="*", default=[], choices=ABSENT,
                        help="generated datasets from domains absent from the KB")
    parser.add_argument("--modes", nargs="+", default=["auto", "none"])
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument("--time-budget", type=float, default=900, help="seconds per search")
    parser.add_argument("--seed-kb", type=Path, default=SEED_KB)
    parser.add_argument("--cold-from", type=Path, metavar="CSV",
                        help="take cold (mode none) runs of the job's datasets and seeds from "
                             "this csv (run with the same --max-trials) instead of running "
                             "them: a cold search never applies the KB")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--shard", type=harness.shard, default=(1, 1), metavar="I/N",
                        help="run the I-th of every N searches (default 1/1: all)")


def kb_tag(seed_kb: Path) -> str:
    """A short digest of the seed KB file: run directories carry it, so a search against one
    seed KB never resumes a search that an earlier process began against another."""
    return hashlib.sha256(seed_kb.read_bytes()).hexdigest()[:8]


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


def absent_folder(name: str, cache: Path) -> Path:
    """Generate (once) the absent-domain dataset ``name`` under the cache directory."""
    from transfer_automl.demo import write_digits

    root = cache / "benchmark-datasets" / name
    return write_digits(root) if name == "digits" else harness.write_shapes(root)


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


def run_one(folder: Path, doc: dict, mode: str, seed: int, args) -> list[dict]:
    """One search on a fresh KB without ``folder``'s records; its csv rows.

    A search that an earlier process started and was killed during (a session ending, say)
    is resumed from its run directory instead: its finished trials stand, the rest run, and
    its search seconds count the time spent before the kill.
    """
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
                log.info("%s %s seed %s: resuming run %s (%.0f s spent)", folder.name, mode,
                         seed, found[1], spent)
            else:
                _fill_kb(tmp, doc, folder.name)
            t0 = time.monotonic()
            r = _search(None if found else folder, tmp, mode, seed, args,
                        found[1] if found else None)
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


def _fill_kb(tmp: Path, doc: dict, name: str) -> None:
    from knowledge_base import KnowledgeBase

    filtered, dropped = without_dataset(doc, name)
    (tmp / "kb.json").write_text(json.dumps(filtered), encoding="utf-8")
    with KnowledgeBase(tmp / "kb.sqlite") as kb:
        counts = kb.import_json(tmp / "kb.json")
    log.debug("%s: dropped %d dataset records; KB %s", name, dropped, counts)


def _search(folder: Path | None, tmp: Path, mode: str, seed: int, args, resume: str | None):
    kb, tracking = str(tmp / "kb.sqlite"), TrackingOptions(runs_dir=tmp / "runs")
    if resume is not None:
        return api.resume(resume, kb=kb, cache_dir=args.cache, tracking=tracking)
    return api.fit_auto(folder, max_trials=args.max_trials, time_budget_s=args.time_budget,
                        kb=kb, seed=seed, cache_dir=args.cache, tracking=tracking,
                        search=SearchOptions(
                            warm_start=mode, multi_fidelity=True,
                            refit=False,  # the comparison is on validation scores: no refit
                            space=harness.quick_space() if args.quick else None))


def copy_cold(source: Path, target: harness.ResultRows, datasets: set[str],
              seeds: list[int]) -> int:
    """Append to ``target`` the cold runs in ``source`` of ``datasets`` at ``seeds`` that
    ``target`` lacks; the number of runs copied. Valid for any seed KB, because a cold search
    matches the KB only to report the match and never applies it."""
    have = {(r["dataset"], int(r["seed"])) for r in target.read() if r["mode"] == "none"}
    rows = [r for r in harness.ResultRows(source, FIELDS).read() if r["mode"] == "none"
            and r["dataset"] in datasets and int(r["seed"]) in seeds
            and (r["dataset"], int(r["seed"])) not in have]
    if rows:
        target.append(rows)
    return len({(r["dataset"], int(r["seed"])) for r in rows})


def run(args) -> int:
    table = harness.result_rows(args, "warm_start_loo.csv", FIELDS)
    out = Outputs.under(args.out, args.seed_kb, args.root)
    if args.report_only:  # re-render only: keep naming the command that produced the rows
        previous = out.md.read_text(encoding="utf-8") if out.md.exists() else ""
        found = re.search(r"^Command: `([^`]*)`", previous, re.MULTILINE)
        write_report(table.read(), args.max_trials, found.group(1) if found else args.command,
                     out)
        return 0
    doc = json.loads(args.seed_kb.read_text(encoding="utf-8"))
    folders = harness.dataset_folders(args.root)
    if not folders and not args.absent:
        log.info("no dataset folder at %s; nothing to benchmark", args.root)
        return 0
    if args.datasets:
        folders = [p for p in folders if p.name in args.datasets]
    folders += [absent_folder(name, args.cache) for name in args.absent]
    # Seed-major order: every dataset gets seed 0 before any gets seed 1. Shards split the
    # whole list, so processes started at different times still share it without overlap.
    jobs = [(folder, mode, seed) for seed in args.seeds for folder in folders
            for mode in args.modes]
    if args.cold_from:
        with table.locked():
            copied = copy_cold(args.cold_from, table, {p.name for p in folders}, args.seeds)
        log.info("took %d cold runs from %s", copied, args.cold_from)
    i, n = args.shard
    for folder, mode, seed in jobs[i - 1::n]:
        with table.locked():
            done = table.done(lambda r: (r["dataset"], r["mode"], int(r["seed"])))
        if (folder.name, mode, seed) in done:
            continue
        t0 = time.monotonic()
        try:
            rows = run_one(folder, doc, mode, seed, args)
        except Exception as exc:  # record nothing; a re-run retries it
            log.warning("%s %s seed %s: FAILED: %s", folder.name, mode, seed, exc)
            continue
        best = [r["best_so_far"] for r in rows]
        log.info("%s %s seed %s (%s): best@3 %s, best@%d %s, test %s, %.0f s", folder.name,
                 mode, seed, rows[0]["applied"], at(best, 3), len(rows), best[-1],
                 rows[0]["test_score"], time.monotonic() - t0)
        with table.locked():
            table.append(rows)
            write_report(table.read(), args.max_trials, args.command, out)
    with table.locked():
        write_report(table.read(), args.max_trials, args.command, out)
    return 0
