"""Dataset embeddings: one fixed-length vector per dataset, for matching in the knowledge base.

The vector joins statistics of backbone features over a bounded, seeded sample of images
(mean and standard deviation of the pooled features, each scaled to unit length) with simple
meta-features (classes, images per class, imbalance, image size, greyscale share).
"""

from __future__ import annotations

import abc
import logging
import math
import os
import time

import numpy as np

log = logging.getLogger(__name__)

META_FEATURES = ("log_classes", "log_images_per_class", "imbalance", "log_mean_side",
                 "greyscale_share")


class Embedder(abc.ABC):
    """Maps a dataset to a fixed-length vector; deterministic for a seed."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Identifies the embedding space (vectors of different embedders never mix)."""

    @abc.abstractmethod
    def embed(self, dataset) -> np.ndarray:
        """Return the float32 embedding of ``dataset`` (a ``transfer_automl.data.Dataset``)."""


def meta_features(dataset) -> dict[str, float]:
    """Size, balance and colour facts of a dataset, on comparable scales."""
    report = dataset.report
    counts = np.array(list(report.class_counts.values()), dtype=float)
    height, width = report.mean_size
    # Each value is scaled so that typical datasets fall in [0, 1].
    return {
        "log_classes": math.log(len(dataset.class_names)) / math.log(100),
        "log_images_per_class": math.log(max(counts.mean(), 1.0)) / math.log(1000),
        "imbalance": math.log(counts.max() / max(counts.min(), 1.0)) / math.log(10),
        "log_mean_side": math.log(max(math.sqrt(height * width), 1.0)) / math.log(512),
        "greyscale_share": float(report.greyscale_share),
    }


class BackboneStatsEmbedder(Embedder):
    """Feature statistics of a frozen backbone over a seeded, class-stratified image sample.

    Args:
        backbone: catalogue name of the backbone that computes the features.
        sample_size: images sampled at most (spread evenly over classes).
        resolution: input size for the backbone (small keeps the cost bounded).
        seed: sampling seed.
        cache_dir: backbone cache directory (None: the ``pretrained`` default).
        meta_weight: weight of the meta-feature block relative to each feature block.
    """

    def __init__(self, backbone: str = "efficientnet_lite0", sample_size: int = 160,
                 resolution: int = 160, seed: int = 0, cache_dir: str | os.PathLike | None = None,
                 meta_weight: float = 0.5) -> None:
        self.backbone = backbone
        self.sample_size = sample_size
        self.resolution = resolution
        self.seed = seed
        self.cache_dir = cache_dir
        self.meta_weight = meta_weight

    @property
    def name(self) -> str:
        return f"stats:{self.backbone}@{self.resolution}/n{self.sample_size}"

    def sample(self, dataset) -> list[str]:
        """Up to ``sample_size`` training paths, the same number from each class."""
        rng = np.random.default_rng(self.seed)
        split = dataset.train
        labels = np.asarray(split.labels)
        per_class = max(1, self.sample_size // len(dataset.class_names))
        chosen: list[int] = []
        for c in range(len(dataset.class_names)):
            idx = np.flatnonzero(labels == c)
            chosen += sorted(rng.choice(idx, min(per_class, len(idx)), replace=False).tolist())
        return [split.paths[i] for i in chosen]

    def features(self, paths: list[str]) -> np.ndarray:
        """Average-pooled backbone features of ``paths`` (``[n, C]``)."""
        import tensorflow as tf
        from pretrained import load_backbone

        from transfer_automl.training import image_dataset

        backbone = load_backbone(self.backbone, cache_dir=self.cache_dir)
        run = tf.function(lambda x: backbone.features(x), reduce_retracing=True)
        out = [run(x).numpy() for x, _ in image_dataset(paths, None, self.resolution, 32)]
        feats = np.concatenate(out)
        return feats.mean(axis=(1, 2)) if feats.ndim == 4 else feats

    def embed(self, dataset) -> np.ndarray:
        t0 = time.monotonic()
        feats = self.features(self.sample(dataset))
        mean, std = feats.mean(axis=0), feats.std(axis=0)
        meta = np.array(list(meta_features(dataset).values()), dtype=np.float64)
        vector = np.concatenate([_unit(mean), _unit(std), self.meta_weight * meta])
        log.info("embedded %d images in %.1f s", len(feats), time.monotonic() - t0)
        return vector.astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v
