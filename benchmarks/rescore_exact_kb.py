"""Re-score a KB export's exact-solver trials with folds that no longer leak.

Trials with ``optimizer="lbfgs"`` were scored with each cross-validation fold started from the
previous fold's solution (see ``benchmarks/results/cv_fold_leak.md``: with weak penalties the
held-out fold is scored by weights that saw it). This re-runs each such trial of a KB export
(``seed_kb.json``) through the trial runner, on the same split and folds as its search (the
run's seed), and writes the new scores back into the export, keeping the old one under
``extra["score_chained_folds"]``. Needs the shared datasets; a second run finds nothing left.

    python benchmarks/rescore_exact_kb.py knowledge_base/seed_kb.json \
        benchmarks/results/seed_kb_t3600/seed_kb.json

Writes ``benchmarks/results/rescore_exact_kb.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from build_seed_kb import write_json  # noqa: E402  the export's own one-record-per-line form

SHARED = HERE.parents[1] / "shared" / "datasets"


def rescore(trial: dict, name: str, seed: int, cache: Path, runners: dict) -> float | None:
    from transfer_automl.data import load_dataset
    from transfer_automl.trial import TrialContext
    from transfer_automl.training import TrialRunner
    from transfer_automl.trial import TrialSpec, TrialState

    if (name, seed) not in runners:
        work = Path(tempfile.mkdtemp(prefix=f"rescore-{name}-"))
        data = load_dataset(SHARED / name, seed=seed, workdir=cache / "datasets")
        manifest = data.save_manifest(work / "dataset.json")
        context = TrialContext(str(manifest), str(work), str(cache / "features"),
                               str(cache / "backbones"), cv_folds=5, fold_seed=seed)
        runners[(name, seed)] = TrialRunner(context)
    spec = TrialSpec(trial["trial_id"], trial["number"], trial["config"], trial["origin"],
                     seed=seed)
    result = runners[(name, seed)].run(spec, lambda metrics: None)
    return result.score if result.state == TrialState.COMPLETE else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("exports", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "rescore_exact_kb.md")
    args = parser.parse_args()
    from transfer_automl.api import default_cache_dir

    cache, runners, lines = Path(default_cache_dir()), {}, []
    for path in args.exports:
        export = json.loads(path.read_text())
        names = {d["fingerprint"]: d["name"] for d in export["datasets"]}
        runs = {r["id"]: (names[r["dataset"]], int(r["settings"]["seed"]))
                for r in export["runs"]}
        lines += [f"\n## `{path}`\n",
                  "| dataset | trial | pooling | weight_decay | chained folds | folds from zeros "
                  "| change | rank among the run's scored trials (before -> after) |",
                  "|---|---|---|---|---|---|---|---|"]
        changed = 0
        for trial in export["trials"]:
            config, extra = trial["config"], trial.setdefault("extra", {})
            if config.get("optimizer") != "lbfgs" or trial["score"] is None:
                continue
            name, seed = runs[trial["run_id"]]
            old = extra.get("score_chained_folds", trial["score"])
            if "score_chained_folds" in extra:
                new = trial["score"]
            else:
                new = rescore(trial, name, seed, cache, runners)
                if new is None:
                    continue
                extra["score_chained_folds"] = old
                trial["score"] = new
                for row in trial.get("metrics", [])[:1]:
                    row["val_accuracy"] = new
                changed += 1
            peers = [t for t in export["trials"]
                     if t["run_id"] == trial["run_id"] and t["score"] is not None]
            before = 1 + sum((t["extra"].get("score_chained_folds", t["score"])) > old
                             for t in peers)
            after = 1 + sum(t["score"] > new for t in peers)
            lines.append(f"| {name} | {trial['trial_id']} | {config['pooling']} | "
                         f"{config['weight_decay']:.2g} | {old:.4f} | {new:.4f} | "
                         f"{new - old:+.4f} | {before} -> {after} |")
            print(lines[-1], flush=True)
        # the run's best trial may move when a re-scored trial was (or now is) the best
        for run in export["runs"]:
            peers = [t for t in export["trials"] if t["run_id"] == run["id"]
                     and t["score"] is not None]
            if peers:
                run["best_trial_id"] = max(peers, key=lambda t: t["score"])["trial_id"]
        write_json(export, path)
        lines.append(f"\n{changed} trials re-scored in this pass.")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip()
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    head = ["# Exact-solver trials of the KB exports, re-scored with unchained folds\n",
            f"Commit {commit}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"load average {load}. Command: `python benchmarks/rescore_exact_kb.py "
            f"{' '.join(map(str, args.exports))}`"]
    args.out.write_text("\n".join(head + lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
