"""Build the seed knowledge base shipped with the project.

Runs one cold search (``warm_start="none"``) over every dataset under ``--root``
into one SQLite KB, the i-th dataset (sorted by name) with seed ``--seed + i`` (default 100 + i),
then exports that KB to
``knowledge_base/seed_kb.json`` (embeddings, configurations, scores, groups; no images).
A fresh install seeds its default KB from that file (``transfer_automl.warmstart.open_kb``).

    transfer-automl benchmark build_seed_kb [--datasets food10 cats_dogs] [--max-trials 12]
        [--time-budget 600] [--kb /tmp/seed_kb.sqlite] [--export knowledge_base/seed_kb.json]
        [--cache-dir ~/.cache/transfer-automl]

Resumable: a dataset whose fingerprint already has a complete run in ``--kb`` is skipped, so
re-running after an interruption only searches the missing datasets and re-exports.

Why a seed per dataset: with one seed, every cold search draws the same sampler sequence, so
the KB holds the same handful of configurations on every dataset. Priors can then only offer
what any cold search of that seed tries anyway; distinct seeds spread the KB's evidence over
more of the space. ``--same-seed`` restores one seed for all. The default seeds start at 100 so
that no benchmark search at a small seed draws the KB's own configurations.

``--from-meta-dataset`` runs no search: it refreshes the seed's portfolio meta-dataset (the
portfolio rows of ``benchmarks/build_meta_dataset.py`` and the embeddings of the datasets
they ran on, ``--meta-rows`` and ``--meta-embeddings``) in the ``--export`` file, keeping its
datasets, runs, trials and groups as they are. Datasets are keyed by the content fingerprint of
their folder under ``--root``; curves are rounded to 4 decimals. Rows are summaries only
(scores, curves, costs): no images, no features.

    transfer-automl benchmark build_seed_kb --from-meta-dataset

Two processes can build one KB at once (the store takes concurrent writers); the shipped KB
was built as ``--datasets brain_tumor_mri clothing10 flowers12 rsscn7_aerial --time-budget 500``
beside ``--datasets cats_dogs dtd_textures10 food10 sign_language_digits --time-budget 500``,
then ``--export-only``. ``--quick``: the generated ``colours`` dataset, one trial in a
64-px space, KB and export written under the output folder (never the shipped seed).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np

from benchmarks import harness
from transfer_automl import SearchOptions, fit_auto

DEFAULT_EXPORT = Path(__file__).resolve().parents[1] / "knowledge_base" / "seed_kb.json"
DEFAULT_KB = Path("/tmp/transfer-automl-seed/seed_kb.sqlite")
META = harness.RESULTS / "meta_dataset"
QUICK = {"datasets": ["colours"], "max_trials": 1, "time_budget": 60.0, "kb": None,
         "export": None}
log = logging.getLogger("benchmarks.build_seed_kb")


def configure(parser) -> None:
    harness.add_datasets(parser, None)
    parser.add_argument("--max-trials", type=int, default=12)
    parser.add_argument("--time-budget", type=float, default=600, help="seconds per dataset")
    parser.add_argument("--seed", type=int, default=100,
                        help="seed of the first dataset; the i-th gets seed + i")
    parser.add_argument("--same-seed", action="store_true", help="use --seed for every dataset")
    parser.add_argument("--kb", type=Path, default=DEFAULT_KB, help="SQLite KB the runs go into")
    parser.add_argument("--export", type=Path, default=DEFAULT_EXPORT,
                        help="JSON export path (default knowledge_base/seed_kb.json)")
    parser.add_argument("--export-only", action="store_true",
                        help="only re-export --kb to --export (no searches)")
    parser.add_argument("--from-meta-dataset", action="store_true",
                        help="only refresh the portfolio rows and embeddings in --export from "
                             "--meta-rows and --meta-embeddings (no searches)")
    parser.add_argument("--meta-rows", type=Path, default=META / "portfolio_v1.jsonl")
    parser.add_argument("--meta-embeddings", type=Path, default=META / "embeddings_v1.json")


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
          time_budget: float, seeds: list[int], space=None) -> None:
    from knowledge_base import KnowledgeBase

    for i, (folder, seed) in enumerate(zip(folders, seeds), 1):
        with KnowledgeBase(kb_path) as kb:
            done = has_complete_run(kb, fingerprint_of(folder, cache, seed))
        if done:
            log.info("[%d/%d] %s: complete run already in %s; skipped", i, len(folders),
                     folder.name, kb_path)
            continue
        t0 = time.monotonic()
        try:
            r = fit_auto(folder, max_trials=max_trials, time_budget_s=time_budget,
                         kb=str(kb_path), seed=seed, cache_dir=cache,
                         search=SearchOptions(warm_start="none", space=space))
        except Exception as exc:  # one bad dataset must not lose the others
            log.warning("[%d/%d] %s: FAILED after %.0f s: %s", i, len(folders), folder.name,
                        time.monotonic() - t0, exc)
            continue
        ok = sum(row["score"] is not None for row in r.leaderboard)
        test = "n/a" if r.test_score is None else f"{r.test_score:.4f}"
        log.info("[%d/%d] %s: best val %.4f, test %s, %d/%d trials scored, %.0f s", i,
                 len(folders), folder.name, r.best_score, test, ok, len(r.leaderboard),
                 time.monotonic() - t0)


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
    meta = [dict(d, embedding=None if d["embedding"] is None else f32(d["embedding"]))
            for d in doc.get("portfolio_datasets", [])]
    return dict(doc, datasets=datasets, runs=runs, trials=trials, groups=groups,
                portfolio_datasets=meta)


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
    counts = {k: len(doc.get(k, [])) for k in ("datasets", "runs", "trials", "groups",
                                                "portfolio_datasets", "portfolio")}
    size = out.stat().st_size
    log.info("wrote %s (%.2f MB): %s", out, size / 1e6, counts)
    if size > 3e6:  # the portfolio meta-dataset is most of it (about 2.7 KB per row)
        log.warning("%s is larger than 3 MB", out)


def content_fingerprints(names: list[str], root: Path, cache: Path) -> dict[str, str]:
    """Each dataset's content fingerprint, for the folders of ``names`` under ``root`` (a
    name without a folder is left out: its rows are then keyed by name)."""
    from transfer_automl.data import load_dataset

    out = {}
    for name in names:
        folder = harness.resolve(name, root)
        if folder is None:
            log.warning("%s: no folder under %s; its portfolio rows are keyed by name", name,
                        root)
            continue
        data = load_dataset(folder, seed=0, workdir=cache / "datasets")
        out[name] = data.content_fingerprint or data.fingerprint
    return out


def refresh_meta_dataset(seed: Path, rows: Path, embeddings: Path, root: Path,
                         cache: Path) -> None:
    """Add the build's ``rows`` (and the ``embeddings`` of their datasets) to the export
    ``seed`` (created when missing), updating the rows it holds already; its datasets, runs,
    trials and groups stay as they are."""
    import tempfile

    from knowledge_base import KnowledgeBase, rows_from_jsonl
    from transfer_automl.portfolio import PORTFOLIO_VERSION, portfolio

    text = rows.read_text()
    if text and not text.endswith("\n"):  # a build is appending to it: keep whole lines
        text = text[:text.rfind("\n") + 1]
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    versions = {r["portfolio_version"] for r in lines}
    if versions - {PORTFOLIO_VERSION}:
        raise SystemExit(f"{rows}: portfolio versions {sorted(versions)}; this code knows "
                         f"version {PORTFOLIO_VERSION} only")
    names = sorted({r["dataset"] for r in lines})
    vectors = json.loads(embeddings.read_text()) if embeddings.exists() else {}
    unmatched = [n for n in names if n not in vectors]
    if unmatched:
        log.warning("no embedding for %s: their rows cannot be matched", ", ".join(unmatched))
    fingerprints = content_fingerprints(names, root, cache)
    configs = {e.config_id: e.config for e in portfolio()}
    new = rows_from_jsonl(text.splitlines(), configs, fingerprints,
                          {n: vectors[n] for n in names if n in vectors}, digits=4)
    with tempfile.TemporaryDirectory() as tmp:
        with KnowledgeBase(Path(tmp) / "kb.sqlite") as kb:
            if seed.exists():
                kb.import_json(seed)
            counts = kb.add_portfolio_rows(new)
            kb.export_json(Path(tmp) / "full.json")
        doc = compact(json.loads((Path(tmp) / "full.json").read_text(encoding="utf-8")))
    write_json(doc, seed)
    log.info("%s: %d portfolio rows over %d datasets from %s (%s); %.2f MB", seed,
             len(doc["portfolio"]), len(doc["portfolio_datasets"]), rows, counts,
             seed.stat().st_size / 1e6)


def run(args) -> int:
    if args.from_meta_dataset:
        refresh_meta_dataset(args.export or args.out / "seed_kb.json", args.meta_rows,
                             args.meta_embeddings, args.root, args.cache)
        return 0
    if not args.root.is_dir():
        log.info("no dataset folder at %s; nothing to build (the seed KB needs "
                 "../shared/datasets/)", args.root)
        return 0
    kb_path = args.kb or args.out / "seed_kb.sqlite"
    export_path = args.export or args.out / "seed_kb.json"
    kb_path.parent.mkdir(parents=True, exist_ok=True)
    folders = harness.dataset_folders(args.root, args.datasets)
    log.info("%d datasets, %d trials, %.0f s each; KB %s; cache %s", len(folders),
             args.max_trials, args.time_budget, kb_path, args.cache)
    if not args.export_only:
        everything = [p.name for p in harness.dataset_folders(args.root)]  # seed = position
        seeds = [args.seed if args.same_seed else args.seed + everything.index(f.name)
                 for f in folders]
        build(folders, kb_path, args.cache, args.max_trials, args.time_budget, seeds,
              harness.quick_space() if args.quick else None)
    export(kb_path, export_path)
    return 0
