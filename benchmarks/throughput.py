"""Backbone forward throughput vs the data pipeline's feature-extraction throughput.

Both are measured in this one process, on the same frozen model and batch size, so the ratio
is meaningful on a noisy machine:

- forward: in-memory float tensors (already decoded and resized) through the frozen backbone;
- extraction: image files through the tf.data pipeline (parallel decode, resize, prefetch)
  and the same backbone, exactly as the feature cache computes them.

    transfer-automl benchmark throughput [--dataset DIR] [--images 512] [--resolution 224]

Without --dataset it uses food10 under --root if present, else the demo digits. One line per
run is appended to ``throughput.md``. ``--quick``: 16 images of the generated ``colours``
dataset at 64 px.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from benchmarks import harness
from benchmarks._throughput_probe import Probe, frozen_lite0, sample_paths, timed

QUICK = {"datasets": ["colours"], "images": 16, "resolution": 64}
log = logging.getLogger("benchmarks.throughput")


def configure(parser) -> None:
    harness.add_datasets(parser, None, "one dataset name under --root, or a folder")
    harness.add_options(parser, ("--images", 512, "images to time"),
                        ("--resolution", 224, "input size"), ("--batch", 32, "batch size"))


def _source(args) -> Path:
    from transfer_automl.demo import write_digits

    if args.datasets:
        if len(args.datasets) > 1:
            raise SystemExit(f"--dataset: expected one dataset, got {args.datasets}")
        found = harness.resolve(args.datasets[0], args.root)
        if found is None:
            raise SystemExit(f"--dataset: {args.datasets[0]!r} not found under {args.root}")
        return found
    return harness.resolve("food10", args.root) or write_digits(args.cache / "demo" / "digits")


def run(args) -> int:
    source = _source(args)
    paths = sample_paths(source, args.images, args.cache)
    probe = Probe(frozen_lite0(args.cache, args.resolution), paths, args.resolution,
                  args.batch)
    probe.forward(); probe.extraction()  # warm-up: tracing, file cache, thread pools
    n = probe.n
    fwd = n / timed(probe.forward, repeats=2)
    ext = n / timed(probe.extraction, repeats=2)
    log.info("forward (in-memory tensors): %.1f images/s", fwd)
    log.info("extraction (files -> tf.data -> backbone): %.1f images/s", ext)
    log.info("ratio extraction/forward: %.3f", ext / fwd)
    line = (f"| {time.strftime('%Y-%m-%d')} | {source.name} | {n} | {args.resolution} | "
            f"{fwd:.1f} | {ext:.1f} | {ext / fwd:.3f} |")
    header = harness.table(("date", "dataset", "images", "px", "forward img/s",
                            "extraction img/s", "ratio"), [])
    harness.append_section(args.out / "throughput.md", line, "\n".join(header) + "\n")
    return 0
