"""Forward passes vs feature extraction through one frozen backbone, for two suites.

``forward`` feeds in-memory float tensors (already decoded and resized) to the frozen part;
``extraction`` feeds image files through the tf.data pipeline (parallel decode, resize,
prefetch) to the same model, exactly as the feature cache computes them. Same model, same
batch size, same process: the ratio means something on a noisy machine.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def sample_paths(source: Path, n: int, cache: Path, seed: int = 0) -> list[str]:
    """The first ``n`` image paths of a dataset (train, then val, then test)."""
    from transfer_automl.data import load_dataset

    data = load_dataset(source, workdir=cache / "datasets", seed=seed)
    return list(data.train.paths + data.val.paths + data.test.paths)[:n]


def frozen_lite0(cache: Path, resolution: int):
    """EfficientNet-Lite0's frozen part (preprocess + backbone + pooling) at ``resolution``."""
    from pretrained import load_backbone

    from transfer_automl.space import default_space
    from transfer_automl.training import frozen_part

    backbone = load_backbone("efficientnet_lite0", cache_dir=cache / "backbones")
    return frozen_part(backbone, {**default_space().default, "resolution": resolution})


class Probe:
    """The two ways into ``model`` over the same ``paths``; each call runs one full pass."""

    def __init__(self, model, paths: list[str], resolution: int, batch: int) -> None:
        import tensorflow as tf

        from transfer_automl.training import image_dataset

        self.n = len(paths)
        self.run = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        rng = np.random.default_rng(0)
        self.batches = [
            tf.constant(rng.uniform(0, 255, (min(batch, self.n - i), resolution, resolution, 3))
                        .astype(np.float32)) for i in range(0, self.n, batch)]
        self.pipeline = image_dataset(paths, None, resolution, batch)

    def forward(self) -> None:
        """In-memory tensors through the model."""
        for b in self.batches:
            self.run(b).numpy()

    def extraction(self) -> None:
        """Files through the tf.data pipeline and the model."""
        for x, _ in self.pipeline:
            self.run(x).numpy()


def timed(fn, repeats: int = 1) -> float:
    """Best of ``repeats`` wall-clock seconds of ``fn()``."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)
