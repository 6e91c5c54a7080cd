"""Run the portfolio on every shared dataset: the meta-dataset that warm starts are replayed on.

Each portfolio configuration (``transfer_automl.portfolio``) is trained once per dataset on
the same split (seed 0) and the same 5 cross-validation folds, through the trial runner the
search uses; each row records the per-epoch validation curve, wall and CPU seconds, and the
final score. Fine-tuning configurations train on a stratified subsample of at most
``--max-finetune-images`` training + validation images (cross-validated the same way), so the
whole build fits in hours on 2 cores. Rows are appended to a JSON-lines file as they finish:
the build is resumable (finished (dataset, configuration) pairs are skipped) and sharded
(``--shard i/n`` takes every n-th pair; shards may run in parallel and append to their own
files).

    python benchmarks/build_meta_dataset.py --shard 0/1
    python benchmarks/build_meta_dataset.py --datasets bccd_wbc3 --configs x-l0-224-avg

Writes ``benchmarks/results/meta_dataset/portfolio_v<version>[.shard-i-of-n].jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SHARED = HERE.parents[1] / "shared" / "datasets"
OUT = HERE / "results" / "meta_dataset"


def subsample(data, limit: int, seed: int = 0):
    """The dataset with at most ``limit`` training + validation images, classes kept in
    proportion (the test split is untouched); its own fingerprints, so caches never mix."""
    from transfer_automl.data import Split

    n = len(data.train) + len(data.val)
    if n <= limit:
        return data
    rng = np.random.default_rng(seed)
    parts = {}
    for name in ("train", "val"):
        split = getattr(data, name)
        keep = []
        for c in np.unique(split.labels):
            idx = np.flatnonzero(split.labels == c)
            keep += list(rng.choice(idx, max(1, round(len(idx) * limit / n)), replace=False))
        keep = np.sort(np.array(keep, int))
        parts[name] = Split(tuple(split.paths[i] for i in keep), split.labels[keep])
    tag = f"-sub{limit}-s{seed}"
    return replace(data, train=parts["train"], val=parts["val"],
                   fingerprint=data.fingerprint + tag,
                   content_fingerprint=(data.content_fingerprint or data.fingerprint) + tag)


class DatasetRunners:
    """One trial runner per (dataset, subsample), created when first needed."""

    def __init__(self, cache: Path, max_finetune: int) -> None:
        self.cache, self.max_finetune, self.runners = cache, max_finetune, {}

    def get(self, name: str, fine_tune: bool):
        from transfer_automl.data import load_dataset
        from transfer_automl.trial import TrialContext
        from transfer_automl.training import TrialRunner

        key = (name, fine_tune)
        if key not in self.runners:
            data = load_dataset(SHARED / name, seed=0, workdir=self.cache / "datasets")
            if fine_tune:
                data = subsample(data, self.max_finetune)
            work = Path(tempfile.mkdtemp(prefix=f"meta-{name}-"))
            manifest = data.save_manifest(work / "dataset.json")
            context = TrialContext(str(manifest), str(work), str(self.cache / "features"),
                                   str(self.cache / "backbones"), cv_folds=5, fold_seed=0,
                                   cv_max_images=self.max_finetune)
            self.runners[key] = (TrialRunner(context), len(data.train) + len(data.val))
        return self.runners[key]


def run_entry(runners: DatasetRunners, name: str, entry, commit: str) -> dict:
    from transfer_automl.portfolio import PORTFOLIO_VERSION
    from transfer_automl.trial import TrialSpec

    runner, n_images = runners.get(name, entry.fidelity != "features")
    spec = TrialSpec(entry.config_id, 0, entry.config, "portfolio", seed=0)
    t0, c0 = time.monotonic(), time.process_time()
    result = runner.run(spec, lambda metrics: None)
    return {"dataset": name, "portfolio_version": PORTFOLIO_VERSION,
            "config_id": entry.config_id, "fidelity": entry.fidelity,
            "state": result.state.value, "reason": result.reason, "score": result.score,
            "best_epoch": result.best_epoch, "n_images": n_images,
            "cv_folds": result.extra.get("cv_folds", 0),
            "curve": [{"epoch": m.epoch, "val_accuracy": m.val_accuracy,
                       "val_loss": m.val_loss, "accuracy": m.accuracy,
                       "seconds": round(m.seconds, 3)} for m in result.history],
            "wall_s": round(time.monotonic() - t0, 3),
            "cpu_s": round(time.process_time() - c0, 3),
            "features_s": result.extra.get("features_s"), "commit": commit,
            "load": round(os.getloadavg()[0], 2),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def done_pairs(out_dir: Path, version: int) -> set[tuple[str, str]]:
    done = set()
    for path in out_dir.glob(f"portfolio_v{version}*.jsonl"):
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done.add((row["dataset"], row["config_id"]))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=None)
    parser.add_argument("--configs", nargs="*", default=None)
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th pair from the i-th")
    parser.add_argument("--max-finetune-images", type=int, default=600)
    parser.add_argument("--out-dir", type=Path, default=OUT)
    args = parser.parse_args()
    from transfer_automl.api import default_cache_dir
    from transfer_automl.portfolio import PORTFOLIO_VERSION, portfolio

    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} not found: the shared datasets are needed")
    i, n = (int(v) for v in args.shard.split("/"))
    names = args.datasets or sorted(p.name for p in SHARED.iterdir() if p.is_dir())
    entries = [e for e in portfolio() if not args.configs or e.config_id in args.configs]
    # features first: a dataset's cheap rows land before its slow fine-tuning ones
    pairs = [(name, e) for fine in (False, True) for name in names for e in entries
             if (e.fidelity != "features") == fine]
    mine = pairs[i::n]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    suffix = "" if n == 1 else f".shard-{i}-of-{n}"
    out = args.out_dir / f"portfolio_v{PORTFOLIO_VERSION}{suffix}.jsonl"
    done = done_pairs(args.out_dir, PORTFOLIO_VERSION)
    todo = [(name, e) for name, e in mine if (name, e.config_id) not in done]
    print(f"shard {i}/{n}: {len(mine)} pairs, {len(mine) - len(todo)} done, "
          f"{len(todo)} to run -> {out}", flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=HERE).stdout.strip()
    runners, t_start = DatasetRunners(Path(default_cache_dir()), args.max_finetune_images), \
        time.monotonic()
    for k, (name, entry) in enumerate(todo, 1):
        row = run_entry(runners, name, entry, commit)
        with out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        elapsed = time.monotonic() - t_start
        print(f"[{k}/{len(todo)}] {name} {entry.config_id}: {row['state']} "
              f"score {row['score'] if row['score'] is None else round(row['score'], 4)} "
              f"in {row['wall_s']:.0f} s (elapsed {elapsed / 60:.0f} min, "
              f"eta {elapsed / k * (len(todo) - k) / 60:.0f} min)", flush=True)


if __name__ == "__main__":
    main()
