"""Backbone forward throughput vs the data pipeline's feature-extraction throughput.

Both are measured in this one process, on the same frozen model and batch size, so the ratio
is meaningful on a noisy machine:

- forward: in-memory float tensors (already decoded and resized) through the frozen backbone;
- extraction: image files through the tf.data pipeline (parallel decode, resize, prefetch)
  and the same backbone, exactly as the feature cache computes them.

    python benchmarks/throughput.py [--dataset DIR] [--images 512] [--resolution 224]

Without --dataset it uses ../shared/datasets/food10 if present, else the demo digits.
Results are appended to benchmarks/results/throughput.md.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
SHARED = ROOT.parent.parent / "shared" / "datasets" / "food10"


def _paths(dataset: Path | None, n: int, cache: Path) -> tuple[list[str], str]:
    from transfer_automl.data import load_dataset
    from transfer_automl.demo import write_digits

    source = dataset or (SHARED if SHARED.exists() else write_digits(cache / "demo" / "digits"))
    data = load_dataset(source, workdir=cache / "datasets")
    paths = list(data.train.paths + data.val.paths + data.test.paths)[:n]
    return paths, str(source)


def _timed(fn, repeats: int = 2) -> float:
    """Best of ``repeats`` wall-clock runs (after the caller's warm-up)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=None)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--cache-dir", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import tensorflow as tf
    from pretrained import load_backbone

    from transfer_automl.api import default_cache_dir
    from transfer_automl.space import default_space
    from transfer_automl.training._assemble import frozen_part
    from transfer_automl.training import image_dataset

    cache = args.cache_dir or default_cache_dir()
    paths, source = _paths(args.dataset, args.images, cache)
    backbone = load_backbone("efficientnet_lite0", cache_dir=cache / "backbones")
    config = {**default_space().default, "resolution": args.resolution}
    model = frozen_part(backbone, config)
    run = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    n = len(paths)
    rng = np.random.default_rng(0)
    batches = [tf.constant(rng.uniform(0, 255, (min(args.batch, n - i), args.resolution,
                                                 args.resolution, 3)).astype(np.float32))
               for i in range(0, n, args.batch)]
    pipeline = image_dataset(paths, None, args.resolution, args.batch)

    def forward():
        for b in batches:
            run(b).numpy()

    def extract():
        for x, _ in pipeline:
            run(x).numpy()

    forward(); extract()  # warm-up: tracing, file cache, thread pools
    t_forward, t_extract = _timed(forward), _timed(extract)
    fwd, ext = n / t_forward, n / t_extract
    line = (f"| {time.strftime('%Y-%m-%d')} | {Path(source).name} | {n} | {args.resolution} | "
            f"{fwd:.1f} | {ext:.1f} | {ext / fwd:.3f} |")
    print(f"forward (in-memory tensors): {fwd:.1f} images/s")
    print(f"extraction (files -> tf.data -> backbone): {ext:.1f} images/s")
    print(f"ratio extraction/forward: {ext / fwd:.3f}")
    out = ROOT / "results" / "throughput.md"
    if not out.exists():
        out.write_text("| date | dataset | images | px | forward img/s | extraction img/s | ratio |\n"
                       "|---|---|---|---|---|---|---|\n")
    with out.open("a") as handle:
        handle.write(line + "\n")


if __name__ == "__main__":
    main()
