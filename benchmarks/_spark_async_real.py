"""Part c of the Spark benchmark: real fine-tuning trials on 1 vs 2 slots."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import harness
from benchmarks.harness import row as _row

QUIET = {"spark.ui.showConsoleProgress": "false"}
log = logging.getLogger("benchmarks.spark_async")


def _source(args) -> Path | None:
    """The dataset of part c: the one named, else brain_tumor_mri under --root if there."""
    if not args.datasets:
        return harness.resolve("brain_tumor_mri", args.root)
    found = harness.resolve(args.datasets[0], args.root)
    if found is None or len(args.datasets) > 1:
        raise SystemExit(f"--dataset: expected one folder or name under {args.root}, "
                         f"got {args.datasets}")
    return found


def part_c(args) -> str:
    from transfer_automl.data import load_dataset
    from transfer_automl.demo import write_digits
    from transfer_automl.trial import TrialContext
    from transfer_automl.space import default_space

    cache = args.cache
    source = _source(args) or write_digits(cache / "demo" / "digits")
    lrs = np.geomspace(3e-4, 1e-2, args.real_trials) if args.real_trials > 1 else [1e-3]
    base = {**default_space().default, "resolution": args.resolution, "unfrozen_blocks": 1,
            "epochs": args.real_epochs}
    configs = [{**base, "learning_rate": float(lr)} for lr in lrs]
    with tempfile.TemporaryDirectory(prefix="spark-async-c-") as tmp:
        data = load_dataset(source, workdir=cache / "datasets", seed=args.seed)
        manifest = data.save_manifest(Path(tmp) / "dataset.json")
        context = TrialContext(str(manifest), tmp, str(Path(tmp) / "features"),
                               str(cache / "backbones"))
        log.info("(c) warm-up: one 1-epoch trial fills the activation cache")
        warm = _run_real(context, [{**base, "epochs": 1}], 1, args)
        runs = {}
        for slots in (1, 2):
            log.info("(c) %d real trials on %d slot(s)", len(configs), slots)
            runs[slots] = _run_real(context, configs, slots, args)
    return _report_c(args, source, data, configs, warm, runs)


def _run_real(context, configs, slots: int, args) -> dict:
    """Run ``configs`` through run_search on a fresh session of ``slots`` slots."""
    from transfer_automl.executors.spark import SparkExecutor
    from transfer_automl.search import Budget, run_search
    from transfer_automl.space import default_space
    from transfer_automl.study import Study

    # The catalogue offers 5-40 epochs; hold the benchmark's short count fixed instead.
    study = Study(default_space().fix(epochs=configs[0]["epochs"]), seed=args.seed)
    for config in configs:
        study.enqueue(config, origin="benchmark")
    executor = SparkExecutor(args.master, n_slots=slots, spark_conf=QUIET)
    start = time.monotonic()
    run_search(study, executor, context, Budget(len(configs), 3600))
    wall = time.monotonic() - start
    return {"wall": wall, "results": [r.result for r in study.trials.values()]}


def _report_c(args, source, data, configs, warm, runs) -> str:
    lrs = ", ".join(f"{c['learning_rate']:.1e}" for c in configs)
    n = len(data.train.paths) + len(data.val.paths) + len(data.test.paths)
    w = warm["results"][0]
    out = ["### (c) Real fine-tuning trials, 1 vs 2 slots\n",
           f"Dataset `{Path(source).name}` ({n} images, {len(data.class_names)} classes), "
           f"EfficientNet-Lite0, {args.resolution} px, top block unfrozen (`unfrozen_blocks=1`, "
           f"trained on cached activations), {args.real_epochs} epochs, learning rates "
           f"{lrs}, batch 32, real `TrialRunner` (`trial_fn=None`), TensorFlow threads per "
           f"trial = 2 cores / slots. Each run starts a "
           f"fresh Spark session (wall time includes session start, worker start, TensorFlow "
           f"import and backbone load per worker). An untimed 1-epoch warm-up trial filled "
           f"the activation cache first ({w.state.value}, {w.seconds:.1f} s in the task, "
           f"features {w.extra.get('features_s', float('nan')):.1f} s, whole run "
           f"{warm['wall']:.1f} s).\n",
           _row("slots", "wall s", "sum of trial s", "trial s", "states", "best val acc"),
           _row(*["---"] * 6)]
    for slots, run in runs.items():
        results = run["results"]
        out.append(_row(slots, f"{run['wall']:.1f}", f"{sum(r.seconds for r in results):.1f}",
                        ", ".join(f"{r.seconds:.1f}" for r in results),
                        ", ".join(sorted({r.state.value for r in results})),
                        f"{max((r.score or 0.0) for r in results):.3f}"))
    ratio = runs[2]["wall"] / runs[1]["wall"]
    out.append(f"\n**Wall time 2 slots / 1 slot: {ratio:.3f}** (speed-up {1 / ratio:.2f}x).")
    return "\n".join(out) + "\n"
