"""Build the seed knowledge base shipped with the project.

Runs one cold search (``warm_start="none"``) over every dataset in ``../shared/datasets/``
into one SQLite KB, the i-th dataset (sorted by name) with seed ``--seed + i`` (default 100 + i),
then exports that KB to
``knowledge_base/seed_kb.json`` (embeddings, configurations, scores, groups; no images).
A fresh install seeds its default KB from that file (``transfer_automl.warmstart.open_kb``).

    python benchmarks/build_seed_kb.py [--datasets food10 cats_dogs] [--max-trials 12]
        [--time-budget 600] [--kb /tmp/seed_kb.sqlite] [--out knowledge_base/seed_kb.json]
        [--cache-dir ~/.cache/transfer-automl]

Resumable: a dataset whose fingerprint already has a complete run in ``--kb`` is skipped, so
re-running after an interruption only searches the missing datasets and re-exports.

Why a seed per dataset: with one seed, every cold search draws the same sampler sequence, so
the KB holds the same handful of configurations on every dataset. Priors can then only offer
what any cold search of that seed tries anyway; distinct seeds spread the KB's evidence over
more of the space. ``--same-seed`` restores one seed for all. The default seeds start at 100 so
that no benchmark search at a small seed draws the KB's own configurations.

Two processes can build one KB at once (the store takes concurrent writers); the shipped KB
was built as ``--datasets brain_tumor_mri clothing10 flowers12 rsscn7_aerial --time-budget 500``
beside ``--datasets cats_dogs dtd_textures10 food10 sign_language_digits --time-budget 500``,
then ``--export-only``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DEFAULT_OUT = ROOT / "knowledge_base" / "seed_kb.json"
DEFAULT_KB = Path("/tmp/transfer-automl-seed/seed_kb.sqlite")


def dataset_folders(root: Path, names: list[str] | None) -> list[Path]:
    """The dataset folders under ``root`` (sub-folders only), optionally a named subset."""
    found = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if names:
        known = {p.name: p for p in found}
        missing = [n for n in names if n not in known]
        if missing:
            raise SystemExit(f"unknown datasets {missing}; available: {sorted(known)}")
        found = [known[n] for n in names]
    return found


def has_complete_run(kb, fingerprint: str) -> bool:
    """Whether ``kb`` already holds a complete run of the dataset with ``fingerprint``."""
    for d in kb.datasets():
        if d.fingerprint == fingerprint and kb.runs(d.id, status="complete"):
            return True
    return False


def fingerprint_of(folder: Path, cache: Path, seed: int) -> str:
    from transfer_automl.data import load_dataset

    return load_dataset(folder, seed=seed, workdir=cache / "datasets").fingerprint


def build(folders: list[Path], kb_path: Path, cache: Path, max_trials: int,
          time_budget: float, seeds: list[int]) -> None:
    from knowledge_base import KnowledgeBase
    from transfer_automl import fit_auto

    for i, (folder, seed) in enumerate(zip(folders, seeds), 1):
        with KnowledgeBase(kb_path) as kb:
            done = has_complete_run(kb, fingerprint_of(folder, cache, seed))
        if done:
            print(f"[{i}/{len(folders)}] {folder.name}: complete run already in {kb_path}; "
                  "skipped", flush=True)
            continue
        t0 = time.monotonic()
        try:
            r = fit_auto(folder, max_trials=max_trials, time_budget_s=time_budget,
                         kb=str(kb_path), warm_start="none", seed=seed, cache_dir=cache,
                         n_parallel=1)
        except Exception as exc:  # one bad dataset must not lose the others
            print(f"[{i}/{len(folders)}] {folder.name}: FAILED after "
                  f"{time.monotonic() - t0:.0f} s: {exc}", flush=True)
            continue
        ok = sum(row["score"] is not None for row in r.leaderboard)
        test = "n/a" if r.test_score is None else f"{r.test_score:.4f}"
        print(f"[{i}/{len(folders)}] {folder.name}: best val {r.best_score:.4f}, test {test}, "
              f"{ok}/{len(r.leaderboard)} trials scored, {time.monotonic() - t0:.0f} s",
              flush=True)


def compact(doc: dict) -> dict:
    """The export trimmed for shipping, without changing what a KB imports from it.

    - vectors keep float32 precision only (the store keeps float32), in the shortest form;
    - only the latest group version is kept (older versions are history nobody matches on);
    - runs that hold no finished trial (e.g. interrupted in their first trial) are left out,
      and so are datasets left without a run;
    - the data report's ``source`` (a path on the building machine) becomes the folder name.
    """
    def f32(values):
        return [float(str(np.float32(v))) for v in values]

    trials = [t for t in doc["trials"] if t["status"] not in ("running", "pending")]
    with_trials = {t["run_id"] for t in trials}
    runs = [r for r in doc["runs"] if r["id"] in with_trials]
    datasets = []
    for d in (d for d in doc["datasets"] if d["fingerprint"] in {r["dataset"] for r in runs}):
        report = dict(d.get("report") or {})
        if report.get("source"):
            report["source"] = d["name"]
        datasets.append(dict(d, embedding=f32(d["embedding"]), report=report))
    latest = max((g["version"] for g in doc["groups"]), default=None)
    groups = [dict(g, centroid=f32(g["centroid"])) for g in doc["groups"]
              if g["version"] == latest]
    return dict(doc, datasets=datasets, runs=runs, trials=trials, groups=groups)


def write_json(doc: dict, out: Path) -> None:
    """One record per line: small, and diffs stay readable when the seed is rebuilt."""
    parts = []
    for key, value in doc.items():
        if isinstance(value, list):
            items = ",\n".join("  " + json.dumps(v, separators=(",", ":"), allow_nan=False)
                                for v in value)
            parts.append(f" {json.dumps(key)}: [\n{items}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value, allow_nan=False)}")
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("{\n" + ",\n".join(parts) + "\n}\n", encoding="utf-8")
    os.replace(tmp, out)


def export(kb_path: Path, out: Path) -> None:
    from knowledge_base import KnowledgeBase

    with KnowledgeBase(kb_path) as kb:
        if kb.datasets():
            kb.regroup()  # groups over every dataset, shipped with the seed
        raw = out.with_name(out.name + ".full")
        kb.export_json(raw)
    doc = compact(json.loads(raw.read_text(encoding="utf-8")))
    raw.unlink()
    write_json(doc, out)
    counts = {k: len(doc[k]) for k in ("datasets", "runs", "trials", "groups")}
    size = out.stat().st_size
    print(f"wrote {out} ({size / 1e6:.2f} MB): {counts}", flush=True)
    if size > 2e6:
        print(f"warning: {out} is larger than 2 MB", flush=True)


def main(argv: list[str] | None = None) -> int:
    from transfer_automl.api import default_cache_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", help="dataset folder names (default: all)")
    ap.add_argument("--root", type=Path, default=SHARED, help="folder of dataset folders")
    ap.add_argument("--max-trials", type=int, default=12)
    ap.add_argument("--time-budget", type=float, default=600, help="seconds per dataset")
    ap.add_argument("--seed", type=int, default=100,
                    help="seed of the first dataset; the i-th gets seed + i")
    ap.add_argument("--same-seed", action="store_true", help="use --seed for every dataset")
    ap.add_argument("--kb", type=Path, default=DEFAULT_KB, help="SQLite KB the runs go into")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON export path")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="shared backbone/feature cache (default ~/.cache/transfer-automl)")
    ap.add_argument("--export-only", action="store_true",
                    help="only re-export --kb to --out (no searches)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    if not args.root.is_dir():
        print(f"no dataset folder at {args.root}; nothing to build (the seed KB needs "
              "../shared/datasets/)", flush=True)
        return 0
    cache = (args.cache_dir or default_cache_dir()).expanduser()
    args.kb.parent.mkdir(parents=True, exist_ok=True)
    folders = dataset_folders(args.root, args.datasets)
    print(f"{len(folders)} datasets, {args.max_trials} trials, {args.time_budget:.0f} s each; "
          f"KB {args.kb}; cache {cache}", flush=True)
    if not args.export_only:
        everything = dataset_folders(args.root, None)  # a dataset's seed is its position
        seeds = [args.seed if args.same_seed else args.seed + everything.index(f)
                 for f in folders]
        build(folders, args.kb, cache, args.max_trials, args.time_budget, seeds)
    export(args.kb, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
