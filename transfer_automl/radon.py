"""Radon machines: a linear head trained on data partitions, aggregated by iterated Radon points.

Kamp et al., "Effective Parallelisation for Machine Learning" (NeurIPS 2017): train the same
learner on ``r ** h`` disjoint partitions of the data, then replace every group of ``r`` models
by their Radon point, ``h`` times. With ``r = d + 2`` for models of ``d`` parameters, any ``r``
points have a Radon point (a point in the convex hulls of both parts of a partition of them),
and iterating it drives the failure probability of the aggregate down doubly exponentially in
``h``: a confidence boost that plain averaging does not give. Only models travel between the
partitions and the aggregation, so each partition may live on another Spark worker.

Where it applies: ``r ** h`` partitions must each hold enough rows for a ``d``-parameter
model. Pooled backbone features have 1,280 dimensions or more, so the features are first
projected to ``dims`` principal components fitted on a sample, and each class's weights are
aggregated on their own (one-against-the-rest heads, ``d = dims + 1`` each). A training set
too small for ``r ** h`` partitions of at least ``min_rows_per_param * d`` rows is refused
with the numbers: the learner on all the data is then the right choice.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transfer_automl.errors import InputError

__all__ = ["radon_point", "iterated_radon_point", "RadonMachine", "serial_map", "SparkMap",
           "max_dims"]

#: ``mapper(fn, items) -> [fn(item) for item in items]``, possibly on other machines.
Mapper = Callable[[Callable[[Any], Any], Sequence[Any]], list]


def radon_point(points: np.ndarray) -> np.ndarray:
    """The Radon point of ``r >= d + 2`` points in ``d`` dimensions (rows of ``points``).

    A nonzero ``lam`` with ``sum(lam_i x_i) = 0`` and ``sum(lam_i) = 0`` exists because the
    ``(d + 1) x r`` system has more unknowns than equations; its positive and non-positive
    parts split the points in two sets whose convex hulls meet at the Radon point.
    """
    points = np.asarray(points, np.float64)
    r, d = points.shape
    if r < d + 2:
        raise InputError(f"a Radon point of points in {d} dimensions needs at least {d + 2} "
                         f"points, got {r}")
    system = np.vstack([points.T, np.ones((1, r))])
    lam = np.linalg.svd(system)[2][-1]  # a null-space vector (the smallest singular value)
    positive = lam > 0
    if not positive.any() or positive.all():  # degenerate (repeated points): any hull point
        return points.mean(axis=0)
    weights = lam[positive]
    return weights @ points[positive] / weights.sum()


def iterated_radon_point(points: np.ndarray, r: int, height: int) -> np.ndarray:
    """Aggregate ``r ** height`` points: Radon points of consecutive groups of ``r``, then of
    those, ``height`` times."""
    points = np.asarray(points, np.float64)
    if len(points) != r ** height:
        raise InputError(f"expected r ** height = {r ** height} points, got {len(points)}")
    for _ in range(height):
        points = np.stack([radon_point(points[i:i + r]) for i in range(0, len(points), r)])
    return points[0]


def max_dims(n_rows: int, height: int = 1, min_rows_per_param: float = 4.0,
             ceiling: int = 64) -> int:
    """The largest projection size whose ``(dims + 3) ** height`` partitions each get at
    least ``min_rows_per_param * (dims + 1)`` rows (0 when none does)."""
    best = 0
    for dims in range(1, ceiling + 1):
        r = dims + 3
        if n_rows / r ** height >= min_rows_per_param * (dims + 1):
            best = dims
    return best


def serial_map(fn, items):
    """Run the partitions one after another, here."""
    return [fn(item) for item in items]


class SparkMap:
    """Run each partition as one Spark task (``sc.parallelize(items, len(items))``)."""

    def __init__(self, spark_context) -> None:
        self.sc = spark_context

    def __call__(self, fn, items):
        return self.sc.parallelize(list(items), len(items)).map(fn).collect()


@dataclass
class _Partition:
    """What one task needs: where the projected rows are, which rows, the learner's C."""

    path: str
    rows: np.ndarray
    n_classes: int
    C: float
    seed: int


def _fit_partition(part: _Partition) -> np.ndarray:
    """One-against-the-rest logistic regressions on one partition: ``(classes, dims + 1)``."""
    from sklearn.linear_model import LogisticRegression

    data = np.load(part.path, mmap_mode="r")  # only this partition's rows are read
    x, y = np.asarray(data[part.rows, :-1]), np.asarray(data[part.rows, -1]).astype(int)
    weights = np.zeros((part.n_classes, x.shape[1] + 1))
    for c in range(part.n_classes):
        target = (y == c).astype(int)
        if target.min() == target.max():  # the class is absent (or alone) here
            weights[c, -1] = 10.0 if target[0] else -10.0
            continue
        model = LogisticRegression(C=part.C, max_iter=500, random_state=part.seed)
        model.fit(x, target)
        weights[c, :-1], weights[c, -1] = model.coef_[0], model.intercept_[0]
    return weights


class RadonMachine:
    """A linear head on projected features, trained on ``r ** height`` partitions.

    Args:
        height: Radon iterations ``h`` (1 or 2 in practice: the partitions grow as ``r ** h``).
        dims: principal components the features are projected to (None: the largest that
            :func:`max_dims` allows, at most 32).
        C: inverse L2 strength of each partition's logistic regressions.
        min_rows_per_param: rows a partition needs per model parameter.
        sample: rows the standardisation and projection are fitted on.
        seed: seed of the sample, the partitions and the learners.

    After :meth:`fit`: ``weights_`` (Radon aggregate), ``averaged_`` (mean of the partition
    models, for comparison), ``partition_weights_``, ``n_partitions_``, ``r_``, ``dims_``.
    """

    def __init__(self, height: int = 1, dims: int | None = None, C: float = 1.0,
                 min_rows_per_param: float = 4.0, sample: int = 2000, seed: int = 0) -> None:
        if not isinstance(height, int) or height < 1:
            raise InputError(f"height: expected an integer >= 1, got {height!r}")
        self.height, self.dims, self.C = height, dims, C
        self.min_rows_per_param, self.sample, self.seed = min_rows_per_param, sample, seed

    def fit(self, x: np.ndarray, y: np.ndarray, mapper: Mapper = serial_map,
            workdir: str | os.PathLike | None = None) -> "RadonMachine":
        """Fit on features ``x`` (rows) and integer labels ``y``; ``mapper`` runs the
        partitions (``SparkMap(sc)`` on a cluster: ``workdir`` must then be on storage every
        worker reads, since the tasks read their rows from a file there)."""
        from sklearn.decomposition import PCA

        x, y = np.asarray(x, np.float32), np.asarray(y)
        n = len(x)
        rng = np.random.default_rng(self.seed)
        allowed = max_dims(n, self.height, self.min_rows_per_param, ceiling=32)
        dims = self.dims if self.dims is not None else allowed
        r = dims + 3
        if dims < 1 or n / r ** self.height < self.min_rows_per_param * (dims + 1):
            raise InputError(
                f"a Radon machine of height {self.height} on {n} rows does not apply: "
                f"{r ** self.height} partitions of {n // max(1, r ** self.height)} rows are too "
                f"few for {dims + 1} parameters each (at least "
                f"{self.min_rows_per_param * (dims + 1):.0f}); use at most {allowed} dims, "
                f"a lower height, or the learner on all the data")
        self.classes_ = np.unique(y)
        labels = np.searchsorted(self.classes_, y)
        sample = rng.choice(n, size=min(n, self.sample), replace=False)
        self.mean_ = x[sample].mean(axis=0)
        self.scale_ = x[sample].std(axis=0) + 1e-6
        self.pca_ = PCA(n_components=dims, random_state=self.seed).fit(
            (x[sample] - self.mean_) / self.scale_)
        projected = self._project(x)
        self.r_, self.dims_, self.n_partitions_ = r, dims, r ** self.height
        parts = np.array_split(rng.permutation(n), self.n_partitions_)
        with tempfile.TemporaryDirectory(dir=workdir, prefix="radon-") as tmp:
            path = str(Path(tmp) / "rows.npy")
            np.save(path, np.hstack([projected, labels[:, None]]).astype(np.float32))
            items = [_Partition(path, rows, len(self.classes_), self.C, self.seed + i)
                     for i, rows in enumerate(parts)]
            models = np.stack(mapper(_fit_partition, items))  # (partitions, classes, d)
        self.partition_weights_ = models
        self.averaged_ = models.mean(axis=0)
        self.weights_ = np.stack([iterated_radon_point(models[:, c], r, self.height)
                                  for c in range(len(self.classes_))])
        return self

    def whole_data_weights(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The machine's learner on all of ``x`` at once (after :meth:`fit`, on its
        projection): what the partitions approximate, shaped like ``weights_``."""
        labels = np.searchsorted(self.classes_, np.asarray(y))
        with tempfile.TemporaryDirectory(prefix="radon-") as tmp:
            path = str(Path(tmp) / "rows.npy")
            np.save(path, np.hstack([self._project(x), labels[:, None]]).astype(np.float32))
            return _fit_partition(_Partition(path, np.arange(len(labels)), len(self.classes_),
                                             self.C, self.seed))

    def _project(self, x: np.ndarray) -> np.ndarray:
        return self.pca_.transform((np.asarray(x, np.float32) - self.mean_) / self.scale_)

    def decision(self, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """One-against-the-rest scores ``(rows, classes)`` (of the Radon aggregate, or of
        ``weights`` such as ``averaged_``)."""
        w = self.weights_ if weights is None else weights
        return self._project(x) @ w[:, :-1].T + w[:, -1]

    def predict(self, x: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return self.classes_[np.argmax(self.decision(x, weights), axis=1)]
