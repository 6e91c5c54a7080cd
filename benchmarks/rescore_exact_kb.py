"""Re-score a KB export's exact-solver trials with folds that no longer leak.

Trials with ``optimizer="lbfgs"`` were scored with each cross-validation fold started from the
previous fold's solution (see ``benchmarks/results/cv_fold_leak.md``: with weak penalties the
held-out fold is scored by weights that saw it). This re-runs each such trial of a KB export
(``seed_kb.json``) through the trial runner, on the same split and folds as its search (the
run's seed), and writes the new scores back into the export, keeping the old one under
``extra["score_chained_folds"]``. Needs the datasets under ``--root``; a second run finds
nothing left.

    transfer-automl benchmark rescore_exact_kb knowledge_base/seed_kb.json \\
        benchmarks/results/seed_kb_t3600/seed_kb.json

Writes ``rescore_exact_kb.md``. ``--quick`` (without exports): builds a one-trial seed KB of
the generated ``colours`` dataset with the ``build_seed_kb`` suite's code, then re-scores it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from benchmarks import harness
from benchmarks.build_seed_kb import build, export, write_json

QUICK = {"datasets": ["colours"]}
log = logging.getLogger("benchmarks.rescore_exact_kb")


def configure(parser) -> None:
    parser.add_argument("exports", nargs="*", type=Path, help="KB exports (JSON) to re-score")
    harness.add_datasets(parser, None, "--quick: the dataset of the KB it builds")


def rescore(trial: dict, name: str, seed: int, args, runners: dict) -> float | None:
    """The trial's score re-run on its search's split and folds (None if it failed)."""
    from transfer_automl.data import load_dataset
    from transfer_automl.training import TrialRunner
    from transfer_automl.trial import TrialContext, TrialSpec, TrialState

    if (name, seed) not in runners:
        folder = harness.resolve(name, args.root)
        if folder is None:
            raise SystemExit(f"dataset {name!r} of the export not found under {args.root}")
        work = Path(tempfile.mkdtemp(prefix=f"rescore-{name}-"))
        data = load_dataset(folder, seed=seed, workdir=args.cache / "datasets")
        manifest = data.save_manifest(work / "dataset.json")
        context = TrialContext(str(manifest), str(work), str(args.cache / "features"),
                               str(args.cache / "backbones"), cv_folds=5, fold_seed=seed)
        runners[(name, seed)] = TrialRunner(context)
    spec = TrialSpec(trial["trial_id"], trial["number"], trial["config"], trial["origin"],
                     seed=seed)
    result = runners[(name, seed)].run(spec, lambda metrics: None)
    return result.score if result.state == TrialState.COMPLETE else None


def rescore_export(path: Path, args, runners: dict) -> list[str]:
    """Re-score one export in place; its report lines."""
    doc = json.loads(path.read_text())
    names = {d["fingerprint"]: d["name"] for d in doc["datasets"]}
    runs = {r["id"]: (names[r["dataset"]], int(r["settings"]["seed"])) for r in doc["runs"]}
    lines = [f"\n## `{path}`\n",
             "| dataset | trial | pooling | weight_decay | chained folds | folds from zeros "
             "| change | rank among the run's scored trials (before -> after) |",
             "|---|---|---|---|---|---|---|---|"]
    changed = 0
    for trial in doc["trials"]:
        config, extra = trial["config"], trial.setdefault("extra", {})
        if config.get("optimizer") != "lbfgs" or trial["score"] is None:
            continue
        name, seed = runs[trial["run_id"]]
        old = extra.get("score_chained_folds", trial["score"])
        if "score_chained_folds" in extra:
            new = trial["score"]
        else:
            new = rescore(trial, name, seed, args, runners)
            if new is None:
                continue
            extra["score_chained_folds"] = old
            trial["score"] = new
            for row in trial.get("metrics", [])[:1]:
                row["val_accuracy"] = new
            changed += 1
        peers = [t for t in doc["trials"]
                 if t["run_id"] == trial["run_id"] and t["score"] is not None]
        before = 1 + sum((t["extra"].get("score_chained_folds", t["score"])) > old
                         for t in peers)
        after = 1 + sum(t["score"] > new for t in peers)
        lines.append(f"| {name} | {trial['trial_id']} | {config['pooling']} | "
                     f"{config['weight_decay']:.2g} | {old:.4f} | {new:.4f} | "
                     f"{new - old:+.4f} | {before} -> {after} |")
        log.info("%s", lines[-1])
    # the run's best trial may move when a re-scored trial was (or now is) the best
    for run_ in doc["runs"]:
        peers = [t for t in doc["trials"] if t["run_id"] == run_["id"]
                 and t["score"] is not None]
        if peers:
            run_["best_trial_id"] = max(peers, key=lambda t: t["score"])["trial_id"]
    write_json(doc, path)
    return lines + [f"\n{changed} trials re-scored in this pass."]


def _quick_export(args) -> Path:
    """A one-trial seed KB of the quick dataset, built the way the shipped one is."""
    folders = harness.dataset_folders(args.root, args.datasets)
    kb_path, out = args.out / "quick_kb.sqlite", args.out / "quick_seed_kb.json"
    build(folders, kb_path, args.cache, 1, 60.0, [100 + i for i in range(len(folders))],
          harness.quick_space())
    export(kb_path, out)
    return out


def run(args) -> int:
    exports = args.exports or ([_quick_export(args)] if args.quick else [])
    if not exports:
        raise SystemExit("rescore_exact_kb: name at least one KB export (or use --quick)")
    runners: dict = {}
    lines = []
    for path in exports:
        lines += rescore_export(path, args, runners)
    stamp = harness.Stamp.now()
    head = ["# Exact-solver trials of the KB exports, re-scored with unchained folds\n",
            f"Commit {stamp.commit}, {stamp.time_utc}, load average {stamp.load}. "
            f"Command: `{args.command}`"]
    harness.write_report(args.out / "rescore_exact_kb.md", head + lines)
    return 0
