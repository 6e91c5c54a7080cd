"""Cost-aware search: feature cache, data path and multi-fidelity, measured in one run.

Three measurements, all in this one process so that every ratio compares two sides that saw
the same machine load:

a. head-trial cost: the default head configuration (linear head, frozen backbone, native
   resolution), solved exactly (the default) and trained by Adam, run through ``TrialRunner``
   in-process with a warm feature cache (cache hit) vs with the cache disabled (the trial
   extracts its own features once); and the same Adam trial on the holdout split, cached vs
   as a plain fine-tuning loop runs it (frozen backbone inside the model, a forward pass for
   every batch of every epoch); plus, for information, an Adam trial at fidelity "images"
   (``augment`` > 0: a forward pass per step).
b. extraction vs raw forward throughput: image files through the tf.data pipeline and the
   frozen backbone vs in-memory tensors through the same backbone (the method of the
   ``throughput`` suite, with the two sides interleaved), plus the real feature extraction
   the cache calls, and a decode/resize profile.
c. equal wall-clock budget: ``fit_auto`` with feature cache and multi-fidelity schedule vs
   without either, same budget, back to back; the first starts with an empty feature cache.

    transfer-automl benchmark cost_aware [--dataset flowers12] [--budget 300] [--parts abc]

Each dataset's section is appended to ``cost_aware.md`` with the exact command; a dataset
that is not found is skipped. ``--quick``: the generated ``colours`` dataset, 64 px, one
repeat and round, 1-trial searches of 40 s in a 64-px space.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks import harness
from transfer_automl import SearchOptions, fit_auto
from benchmarks._cost_head_trials import head_trial_cost
from benchmarks._cost_throughput import throughput

QUICK = {"datasets": ["colours"], "budget": 40.0, "max_trials": 1, "epochs": 2, "repeats": 1,
         "images": 16, "rounds": 1, "resolution": 64, "space": "quick"}
PREAMBLE = ("# Cost-aware search: feature cache, data path, multi-fidelity\n\n"
            "Appended by `benchmarks/cost_aware.py`, newest last.\n\n")
log = logging.getLogger("benchmarks.cost_aware")


def configure(parser) -> None:
    harness.add_datasets(parser, ["flowers12"])
    harness.add_options(
        parser, ("--budget", 300.0, "c: seconds per arm"), ("--max-trials", 30, "c: trials"),
        ("--epochs", 10, "a: head-trial epochs"),
        ("--image-epochs", 1, "a: epochs of the informational images-fidelity trial"),
        ("--repeats", 3, "a: warm-cache repeats"), ("--resolution", 224, "a, b: input size"),
        ("--images", 256, "b: images for throughput"), ("--rounds", 3, "b: interleaved rounds"),
        ("--parts", "abc", "which of a, b, c to run"))
    parser.add_argument("--space", choices=("default", "pinned", "quick"), default="default",
                        help="c: fit_auto's default space, Lite0 at 224 px only, or the "
                             "quick 64-px space")


def _space(name: str):
    from transfer_automl.space import default_space

    if name == "pinned":
        return default_space(("efficientnet_lite0",)).fix(resolution=224)
    return harness.quick_space() if name == "quick" else None


def _arm(data_dir: Path, cache: Path, budget: float, max_trials: int, seed: int, space,
         use_cache: bool, schedule: bool) -> dict:
    """One ``fit_auto`` arm of part c on a fresh cache root sharing the converted backbones."""
    root = Path(tempfile.mkdtemp(prefix="cost-aware-c-"))
    (root / "backbones").symlink_to(cache / "backbones", target_is_directory=True)
    t0 = time.perf_counter()
    r = fit_auto(str(data_dir), kb=False, max_trials=max_trials, time_budget_s=budget,
                 seed=seed, cache_dir=root,
                 search=SearchOptions(feature_cache=use_cache, multi_fidelity=schedule,
                                      space=space))
    wall = time.perf_counter() - t0
    board = r.leaderboard
    done = [row for row in board if row["status"] in ("complete", "pruned")]
    pairs = Counter((row["config"].get("backbone"), row["config"].get("resolution"))
                    for row in board)
    feats = root / "features"
    result = {
        "trials": len(board), "finished": len(done), "best_val": r.best_score,
        "test": r.test_score, "fidelity": dict(Counter(row["fidelity"] for row in board)),
        "fidelity_done": dict(Counter(row["fidelity"] for row in done)),
        "wall": wall, "states": dict(Counter(row["status"] for row in board)),
        "pairs": {f"{b}@{res}": c for (b, res), c in pairs.items()},
        "best": r.best_config,
        "cache_entries": len(list(feats.glob("*/meta.json"))) if feats.exists() else 0}
    shutil.rmtree(root, ignore_errors=True)  # the symlink goes, the shared backbones stay
    return result


def equal_budget(data_dir: Path, cache: Path, budget: float, max_trials: int,
                 seed: int, space_name: str) -> tuple[list[str], dict]:
    """``fit_auto`` with cache + schedule vs without, same budget, back to back.

    ``space_name`` "default" is fit_auto's default space (every installed backbone, four
    resolutions); "pinned" is EfficientNet-Lite0 at 224 px only, every other parameter as
    in the default space, so all frozen trials share one feature-cache entry.
    """
    space = _space(space_name)
    results = {}
    for label, use_cache, schedule in [("cache + schedule", True, True),
                                       ("no cache, no schedule", False, False)]:
        results[label] = _arm(data_dir, cache, budget, max_trials, seed, space, use_cache,
                              schedule)
        log.info("c: %s %s", label, results[label])
    described = {"pinned": "PINNED: EfficientNet-Lite0 at 224 px only, the rest as default",
                 "quick": "QUICK: the default space at 64 px, 3 epochs",
                 "default": "fit_auto default (3 backbones x 4 resolutions)"}[space_name]
    rows = [
        f"`fit_auto(dataset, kb=False, max_trials={max_trials}, time_budget_s={budget:g}, "
        f"seed={seed}{', space=' + space_name.upper() if space is not None else ''})`; search "
        f"space: {described}. Local executor (1 worker process), both arms start with the "
        f"converted backbone (symlinked `backbones/`); the cached arm starts with an EMPTY "
        f"feature cache, so its one-off extraction counts against its budget.",
        "",
        "| arm | trials (states) | finished | best val | test acc | fidelity of all trials | "
        "wall s (search + export + test) | feature-cache entries |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, v in results.items():
        states = ", ".join(f"{k} {c}" for k, c in sorted(v["states"].items()))
        fids = ", ".join(f"{k} {c}" for k, c in sorted(v["fidelity"].items()))
        test = f"{v['test']:.4f}" if v["test"] is not None else "-"
        rows.append(f"| {label} | {v['trials']} ({states}) | {v['finished']} | "
                    f"{v['best_val']:.4f} | {test} | {fids} | {v['wall']:.0f} | "
                    f"{v['cache_entries']} |")
    for label, v in results.items():
        rows += ["", f"'{label}': trials per (backbone@resolution): "
                 + ", ".join(f"{k} {c}" for k, c in sorted(v["pairs"].items()))
                 + f"; mean cost per trial {v['wall'] / max(v['trials'], 1):.0f} s of wall."]
    for label, v in results.items():
        cfg = v["best"]
        rows += ["", f"Best of '{label}': n_dense {cfg['n_dense']}, pooling {cfg['pooling']}, "
                 f"unfrozen_blocks {cfg['unfrozen_blocks']}, augment {cfg['augment']}, "
                 f"resolution {cfg['resolution']}, optimizer {cfg['optimizer']}, "
                 f"lr {cfg['learning_rate']:.2g}, epochs {cfg['epochs']}."]
    return rows, results


def _one_dataset(data_dir: Path, args) -> str:
    start, load = time.strftime("%Y-%m-%d %H:%M"), os.getloadavg()
    sections = []
    if "a" in args.parts:
        rows, _ = head_trial_cost(data_dir, args.cache, args.epochs, args.image_epochs,
                                  args.repeats, args.resolution)
        sections.append(("a. Head-trial cost: cache hit vs cache off", rows))
    if "b" in args.parts:
        rows, _ = throughput(data_dir, args.cache, args.images, args.resolution, 32,
                             args.rounds)
        sections.append(("b. Extraction vs raw forward throughput", rows))
    if "c" in args.parts:
        rows, _ = equal_budget(data_dir, args.cache, args.budget, args.max_trials, seed=0,
                               space_name=args.space)
        sections.append(("c. Equal wall-clock budget", rows))
    text = [f"## {start}: {data_dir.name}", "", f"Command: `{args.command}`", "",
            f"Machine: {os.cpu_count()} CPU cores, no GPU, commit {harness.commit()}; load "
            f"average at start {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}, at end "
            f"{os.getloadavg()[0]:.2f} (above ~{os.cpu_count()}, other work shared the cores). "
            f"Ratios compare sides measured in this one run.", ""]
    for title, rows in sections:
        text += [f"### {title}", "", *rows, ""]
    return "\n".join(text)


def run(args) -> int:
    for name in args.datasets:
        data_dir = harness.resolve(name, args.root)
        if data_dir is None:
            log.info("skipped: dataset %r not found (looked in %s)", name, args.root)
            continue
        report = _one_dataset(data_dir, args)
        log.info("%s", report)
        harness.append_section(args.out / "cost_aware.md", report, PREAMBLE)
    return 0
