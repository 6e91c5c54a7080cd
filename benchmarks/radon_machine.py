"""Radon machines against the same learner on all the data and against averaging the partitions.

As Kamp et al. (NeurIPS 2017) compare them: for the largest shared datasets, frozen
EfficientNet-Lite0 features (224 px, average pooling; each image also horizontally flipped, so
the training set can be doubled beyond the dataset's size), a stratified 70/30 split per seed,
and training sets of 25%, 50% and 100% of the training rows and of all of them with their
flipped views. On each: logistic regression on all the rows and all 1,280 features (the
reference), the machine's own learner (one-against-the-rest logistic regressions on the same
projection) on all the rows, the average of the partition models, and the Radon machine
(height 1, the projection as large as the partitions allow); test accuracy on the original test
images, and wall time of training, with the partitions one after another here and as Spark
tasks on ``local[2]``. Features are cached under ``CACHE/benchmarks/radon``; finished (dataset,
seed) pairs are kept in the CSV and skipped.

    transfer-automl benchmark radon_machine --datasets food10 clothing10 sign_language_digits

Writes ``radon_machine.csv`` and ``radon_machine.md``. ``--quick``: the generated ``colours``
dataset at small sizes, without Spark.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from benchmarks import harness

FIELDS = ["dataset", "seed", "size", "n_train", "dims", "partitions", "full_acc", "same_acc",
          "avg_acc", "radon_acc", "full_s", "same_s", "radon_s", "radon_spark_s", "commit",
          "load"]
SIZES = ("25%", "50%", "100%", "100%+flips")
QUICK = {"datasets": ["colours"], "seeds": [0]}
log = logging.getLogger("benchmarks.radon_machine")


def configure(parser) -> None:
    harness.add_datasets(parser, ["food10", "clothing10", "sign_language_digits"])
    harness.add_seeds(parser, [0, 1, 2])
    harness.add_options(parser, ("--report-only", False, "rewrite the Markdown table from the "
                                                         "CSV, run nothing"))


def features(folder: Path, cache: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features, flipped features, labels) of every image of ``folder``, cached."""
    from transfer_automl.data import load_dataset

    data = load_dataset(folder, seed=0, workdir=cache / "datasets")
    splits = (data.train, data.val, data.test)  # every image once; this suite splits itself
    paths = [p for split in splits for p in split.paths]
    labels = np.concatenate([split.labels for split in splits])
    key = (data.content_fingerprint or data.fingerprint)[:12]
    store = cache / "benchmarks" / "radon" / f"{folder.name}-{key}.npz"
    if store.is_file():
        with np.load(store) as saved:
            return saved["x"], saved["flipped"], saved["y"]
    import tensorflow as tf
    from pretrained import load_backbone

    from transfer_automl.space import default_space
    from transfer_automl.training import frozen_part, image_dataset, select_pooled

    backbone = load_backbone("efficientnet_lite0", cache_dir=cache / "backbones")
    frozen = frozen_part(backbone, {**default_space().default, "resolution": 224})
    run = tf.function(lambda x: frozen(x, training=False), reduce_retracing=True)
    views: dict[str, list] = {"x": [], "flipped": []}
    t0 = time.monotonic()
    for images, _ in image_dataset(paths, None, 224, 32):
        views["x"].append(select_pooled(run(images).numpy(), backbone, "avg"))
        views["flipped"].append(select_pooled(run(tf.image.flip_left_right(images)).numpy(),
                                              backbone, "avg"))
    x, flipped = (np.concatenate(views[k]).astype(np.float32) for k in ("x", "flipped"))
    store.parent.mkdir(parents=True, exist_ok=True)
    np.savez(store, x=x, flipped=flipped, y=labels)
    log.info("%s: features of %d images (and their flips) in %.0f s", folder.name, len(x),
             time.monotonic() - t0)
    return x, flipped, labels


def _accuracy(predicted, truth) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(truth)))


def run_pair(folder: Path, seed: int, args, spark) -> list[dict]:
    """Every training size of one dataset and split seed: its CSV rows."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from transfer_automl.radon import RadonMachine, SparkMap, max_dims

    x, flipped, y = features(folder, args.cache)
    rows = np.arange(len(y))
    train, test = train_test_split(rows, test_size=0.3, stratify=y, random_state=seed)
    rng = np.random.default_rng(seed)
    out = []
    per_param = 1.0 if args.quick else 4.0  # rows a partition needs per parameter
    for size in (["100%+flips"] if args.quick else SIZES):
        if size.endswith("flips"):
            xs, ys = np.concatenate([x[train], flipped[train]]), np.concatenate([y[train]] * 2)
        else:
            keep = rng.permutation(train)[:int(len(train) * float(size[:-1]) / 100)]
            xs, ys = x[keep], y[keep]
        t0 = time.monotonic()
        scaler = StandardScaler().fit(xs)
        full = LogisticRegression(max_iter=2000).fit(scaler.transform(xs), ys)
        full_s = time.monotonic() - t0
        full_acc = _accuracy(full.predict(scaler.transform(x[test])), y[test])
        dims = max_dims(len(ys), 1, per_param, ceiling=32)
        row = {"dataset": folder.name, "seed": seed, "size": size, "n_train": len(ys),
               "dims": dims, "full_acc": full_acc, "full_s": round(full_s, 2),
               "commit": harness.commit(), "load": harness.load_average()}
        if dims >= 1:
            t0 = time.monotonic()
            machine = RadonMachine(height=1, dims=dims, min_rows_per_param=per_param,
                                   seed=seed).fit(xs, ys)
            radon_s = time.monotonic() - t0
            t0 = time.monotonic()
            same = machine.whole_data_weights(xs, ys), time.monotonic() - t0
            spark_s = None
            if spark is not None:
                t0 = time.monotonic()
                RadonMachine(height=1, dims=dims, min_rows_per_param=per_param, seed=seed).fit(
                    xs, ys, mapper=SparkMap(spark.sparkContext), workdir=args.cache)
                spark_s = round(time.monotonic() - t0, 2)
            row.update(partitions=machine.n_partitions_,
                       same_acc=_accuracy(machine.predict(x[test], same[0]), y[test]),
                       same_s=round(same[1], 2),
                       avg_acc=_accuracy(machine.predict(x[test], machine.averaged_), y[test]),
                       radon_acc=_accuracy(machine.predict(x[test]), y[test]),
                       radon_s=round(radon_s, 2), radon_spark_s=spark_s)
        out.append(row)
        log.info("%s seed %d %s: %s", folder.name, seed, size,
                 {k: row.get(k) for k in ("full_acc", "same_acc", "avg_acc", "radon_acc")})
    return out


def _mean(values) -> float:
    values = [v for v in values if v == v]
    return float(np.mean(values)) if values else float("nan")


def _interval(values) -> str:
    from scipy import stats

    values = np.asarray([v for v in values if v == v], float)
    if len(values) < 2:
        return f"{values.mean():+.3f}" if len(values) else "-"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    return f"{values.mean():+.3f} [{values.mean() - half:+.3f}, {values.mean() + half:+.3f}]"


def report(rows: list[dict], out: Path, args) -> None:
    def num(row, key):
        value = row.get(key)
        return float(value) if value not in (None, "") else float("nan")

    lines = ["# Radon machines against all-data learners and averaging", "",
             harness.Stamp.now().line(), "",
             f"Command: `{harness.command_line('radon_machine', args.argv)}`", "",
             "Test accuracy, mean over split seeds; the differences are paired per seed with "
             "95% t-intervals. *full*: logistic regression on all rows and all 1,280 "
             "features; *same*: the machine's learner (one-against-the-rest on the "
             "projection) on all rows; *avg*: the mean of the partition models; *radon*: "
             "their iterated Radon point (height 1).", ""]
    header = ("dataset", "size", "rows", "dims", "partitions", "full", "same", "avg", "radon",
              "radon - same", "radon - avg", "radon - full", "s full", "s same", "s radon",
              "s radon on Spark")
    body = []
    for name in sorted({r["dataset"] for r in rows}):
        for size in SIZES:
            group = [r for r in rows if r["dataset"] == name and r["size"] == size]
            if not group:
                continue
            mean = {k: _mean([num(r, k) for r in group]) for k in FIELDS[5:14]}
            diff = {k: [num(r, "radon_acc") - num(r, k) for r in group]
                    for k in ("same_acc", "avg_acc", "full_acc")}
            body.append((name, size, group[0]["n_train"],
                         group[0]["dims"], group[0].get("partitions") or "-",
                         *(f"{mean[k]:.3f}" for k in ("full_acc", "same_acc", "avg_acc",
                                                       "radon_acc")),
                         _interval(diff["same_acc"]), _interval(diff["avg_acc"]),
                         _interval(diff["full_acc"]),
                         *(f"{mean[k]:.2f}" for k in ("full_s", "same_s", "radon_s",
                                                       "radon_spark_s"))))
    lines += harness.table(header, body)
    harness.write_report(out, lines)


def run(args) -> int:
    table = harness.result_rows(args, "radon_machine.csv", FIELDS)
    if args.report_only:
        report(table.read(), args.out / "radon_machine.md", args)
        return 0
    spark = None
    try:
        if args.quick:  # a smoke run: the Spark path is tested on its own (tests/test_radon.py)
            raise RuntimeError("not started for --quick")
        from transfer_automl.executors.spark_session import default_conf, get_or_create

        spark, _ = get_or_create("local[2]", {"spark.ui.showConsoleProgress": "false"},
                                 defaults=default_conf())
        spark.sparkContext.setLogLevel("ERROR")
    except Exception as exc:  # no Java: the Spark column stays empty
        log.warning("no Spark session (%s): partitions run here only", exc)
    try:
        for seed in args.seeds:
            for name in args.datasets:
                folder = harness.resolve(name, args.root)
                if folder is None:
                    raise SystemExit(f"dataset {name!r} not found under {args.root}")
                with table.locked():
                    done = table.done(lambda r: (r["dataset"], int(r["seed"])))
                if (folder.name, seed) in done:
                    continue
                new = run_pair(folder, seed, args, spark)
                with table.locked():
                    table.append(new)
                    rows = table.read()
                report(rows, args.out / "radon_machine.md", args)
    finally:
        if spark is not None:
            spark.stop()
    return 0
