"""Spark executor: async trials with early stopping, dispatch overhead, 1 vs 2 slots.

Asynchronous trials with early stopping vs synchronous batches (a), per-trial dispatch
overhead vs hyperopt's SparkTrials (b), real fine-tuning trials on 1 vs 2 slots (c).

    transfer-automl benchmark spark_async [--parts a,b,c] [--trials 24] [--epochs 10]
        [--epoch-min 0.2] [--epoch-max 2.0] [--dispatch-trials 20] [--real-trials 4]
        [--real-epochs 3] [--resolution 128] [--dataset DIR] [--seed 0] [--note TEXT]

(a) and (b) share one session of ``--master`` (default ``local[2]``). (c) starts a fresh
session per slot count, so each run's Python workers set TensorFlow's thread count for that
count (it can be set only once per process). Every part appends its section to
``spark_async.md`` as it finishes, under a dated heading with the command and the machine's
load average. ``--quick``: 4 synthetic trials of 3 epochs of 0.02-0.1 s, 4 dispatch trials,
2 one-epoch real trials on the generated ``colours`` dataset at 128 px.
"""

from __future__ import annotations

import logging
import os
import time

from benchmarks import _spark_async_trials as trials
from benchmarks import harness
from benchmarks._spark_async_parts import part_a, part_b
from benchmarks._spark_async_real import QUIET, part_c

QUICK = {"datasets": ["colours"], "trials": 4, "epochs": 3, "epoch_min": 0.02,
         "epoch_max": 0.1, "dispatch_trials": 4, "real_trials": 2, "real_epochs": 1,
         "resolution": 128}
log = logging.getLogger("benchmarks.spark_async")


def configure(parser) -> None:
    harness.add_datasets(parser, None, "(c) one image folder or name under --root; default "
                                       "brain_tumor_mri if present, else the demo digits")
    parser.add_argument("--parts", default="a,b,c", type=_parts,
                        help="comma-separated subset of a,b,c")
    harness.add_options(
        parser, ("--master", "local[2]", "Spark master of every part"),
        ("--slots", 2, "parallel trials in (a) and (b)"), ("--seed", 0, "seed of every part"),
        ("--trials", 24, "(a) trials"), ("--epochs", 10, "(a) epochs per trial"),
        ("--epoch-min", 0.2, "(a) shortest epoch, s"), ("--epoch-max", 2.0, "(a) longest epoch, s"),
        ("--a-without-stopping", False,
         "(a) also run asynchronously without early stopping (~+50%% time)"),
        ("--dispatch-trials", 20, "(b) trivial trials"),
        ("--real-trials", 4, "(c) fine-tuning trials"),
        ("--real-epochs", 3, "(c) epochs per trial"),
        ("--resolution", 128, "(c) input resolution"),
        ("--note", "", "a remark recorded with the results"))


def _parts(value: str) -> set[str]:
    import argparse

    parts = {s.strip() for s in value.split(",") if s.strip()}
    if not parts or parts - {"a", "b", "c"}:
        raise argparse.ArgumentTypeError(f"expected a comma-separated subset of a,b,c, "
                                         f"got {value!r}")
    return parts


def run(args) -> int:
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(trials)  # Spark workers cannot import benchmarks/
    out = args.out / "spark_async.md"
    harness.append_section(out, _header(args))
    if {"a", "b"} & args.parts:
        spark = _session(args.master)
        try:
            _warm_workers(spark, args.slots)
            if "a" in args.parts:
                harness.append_section(out, part_a(spark, args))
            if "b" in args.parts:
                harness.append_section(out, part_b(spark, args))
        finally:
            spark.stop()
    if "c" in args.parts:
        harness.append_section(out, part_c(args))
    harness.append_section(out, f"Load average (1, 5, 15 min) at the end: "
                                f"{harness.load_average()}.\n")
    return 0


def _session(master: str):
    from transfer_automl.executors.spark_session import default_conf, get_or_create

    spark, _ = get_or_create(master, QUIET, defaults=default_conf())
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def _warm_workers(spark, slots: int) -> None:
    """Start the Python workers once, so neither mode of (a) pays for their start-up."""
    sc = spark.sparkContext
    for _ in range(3):
        sc.parallelize(range(slots), slots).map(lambda _: os.getpid()).collect()


def _header(args) -> str:
    stamp = harness.Stamp.now()
    lines = [f"\n## {time.strftime('%Y-%m-%d %H:%M %Z')}\n",
             f"Command: `{args.command}`\n",
             f"Machine: {stamp.cpus} CPU cores, no GPU; commit {stamp.commit}; Python "
             f"{stamp.python}, pyspark {harness.version('pyspark')}, hyperopt "
             f"{harness.version('hyperopt')}; `{args.master}` master. Load average "
             f"(1, 5, 15 min) at the start: {stamp.load}.\n"]
    if args.note:
        lines.append(f"Note: {args.note}\n")
    return "\n".join(lines)
