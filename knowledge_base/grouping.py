"""Virtual dataset groups: clusters of the KB's datasets, found by faiss k-means.

The number of groups ``k`` is chosen from the data: every ``k`` in ``2..min(max_k, n - 1)`` is
clustered (several restarts, fixed seed) and scored by the silhouette coefficient (scikit-learn);
the best wins, unless even the best silhouette is below ``min_silhouette``, in which case the
datasets show no cluster structure and form one group. Fewer than three datasets form one group.

Groups are versioned in the store: :func:`regroup` writes a new version, and
:func:`ensure_groups` regroups whenever the datasets have changed since the newest version, so
the groups follow the KB as it grows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from knowledge_base.index import DatasetIndex, faiss_threads

__all__ = ["Grouping", "cluster", "regroup", "ensure_groups"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Grouping:
    """A clustering: ``labels[i]`` is the group of row ``i``; ``centroids[g]`` its centre."""

    labels: np.ndarray
    centroids: np.ndarray
    silhouette: float | None

    @property
    def k(self) -> int:
        return len(self.centroids)


def _kmeans(x: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    import faiss

    km = faiss.Kmeans(x.shape[1], k, niter=50, nredo=5, seed=seed, verbose=False,
                      min_points_per_centroid=1, max_points_per_centroid=1_000_000)
    with faiss_threads(len(x)):
        km.train(x)
        _, labels = km.index.search(x, 1)
    return labels[:, 0].astype(int), km.centroids.copy()


def cluster(vectors: np.ndarray, max_k: int = 8, seed: int = 0,
            min_silhouette: float = 0.25) -> Grouping:
    """Cluster unit-length rows, choosing the number of clusters by silhouette.

    Args:
        vectors: an ``(n, d)`` matrix of normalised embeddings.
        max_k: the most groups to consider.
        seed: seeds faiss k-means, so the result is reproducible.
        min_silhouette: below this best silhouette, everything is one group.
    """
    from sklearn.metrics import silhouette_score

    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(x)
    one = Grouping(np.zeros(n, int), x.mean(axis=0, keepdims=True), None)
    if n < 3:
        return one
    best: Grouping | None = None
    for k in range(2, min(max_k, n - 1) + 1):
        labels, centroids = _kmeans(x, k, seed)
        used = np.unique(labels)
        if len(used) < 2:
            continue
        if len(used) < k:  # an empty cluster: keep the used centroids only, relabelled
            centroids, labels = centroids[used], np.searchsorted(used, labels)
        score = float(silhouette_score(x, labels, sample_size=min(n, 2000), random_state=seed))
        log.debug("k=%d silhouette=%.3f", k, score)
        if best is None or score > best.silhouette + 1e-9:
            best = Grouping(labels, centroids, score)
    if best is None or best.silhouette < min_silhouette:
        return one
    # Centroids as member means (faiss's are the same up to its last iteration).
    centroids = np.stack([x[best.labels == g].mean(axis=0) for g in range(best.k)])
    return Grouping(best.labels, centroids, best.silhouette)


def regroup(kb, *, max_k: int = 8, seed: int = 0, min_silhouette: float = 0.25,
            dim: int | None = None) -> int:
    """Cluster the KB's datasets and store the groups as a new version.

    Args:
        kb: the :class:`~knowledge_base.KnowledgeBase`.
        max_k, seed, min_silhouette: as in :func:`cluster`.
        dim: embedding dimension to group (default: that of the newest dataset).

    Returns:
        The new groups version, or 0 when the KB holds no datasets.
    """
    index = DatasetIndex.from_kb(kb, dim)
    if not len(index):
        return 0
    grouping = cluster(index.vectors, max_k=max_k, seed=seed, min_silhouette=min_silhouette)
    members = [[index.ids[i] for i in np.flatnonzero(grouping.labels == g)]
               for g in range(grouping.k)]
    version = kb.save_groups(grouping.centroids, members)
    log.info("regrouped %d datasets into %d groups (version %d, silhouette %s)",
             len(index), grouping.k, version, grouping.silhouette)
    return version


def ensure_groups(kb, index: DatasetIndex | None = None, **kwargs):
    """The current groups, regrouping first when they do not cover exactly the indexed datasets.

    Returns:
        The list of :class:`~knowledge_base.GroupEntry` of the current version.
    """
    index = index if index is not None else DatasetIndex.from_kb(kb)
    if not len(index):
        return []
    groups = kb.groups()
    covered = {m for g in groups for m in g.members}
    if covered != set(index.ids) or any(g.centroid.size != index.dim for g in groups):
        regroup(kb, dim=index.dim, **kwargs)
        groups = kb.groups()
    return groups
