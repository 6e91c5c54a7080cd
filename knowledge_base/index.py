"""A faiss index over the KB's dataset embeddings (L2-normalised, exact search).

Embeddings are compared by direction, not length: every vector is scaled to unit length, so the
Euclidean distance ``d`` between two of them lies in [0, 2] and equals ``sqrt(2 - 2 cos)``.
The KB holds hundreds to thousands of datasets, so an exact flat index is both fast and right.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

__all__ = ["DatasetIndex", "normalise", "faiss_threads"]

# Below this many vectors, faiss's OpenMP threads cost far more than they save (40x slower
# k-means on a busy 2-core machine), so work runs on one thread.
_SMALL = 20_000


@contextmanager
def faiss_threads(n_vectors: int) -> Iterator[None]:
    """Run faiss single-threaded for small inputs, restoring its thread count afterwards."""
    import faiss

    if n_vectors >= _SMALL:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def normalise(vectors: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as a C-contiguous float32 matrix (zero rows stay zero)."""
    x = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.where(norms > 0, norms, 1.0), dtype=np.float32)


class DatasetIndex:
    """Exact nearest-neighbour search over datasets of one embedding dimension.

    Args:
        ids: dataset ids, one per row of ``vectors``.
        names: dataset names, one per row.
        vectors: the raw embeddings (normalised here).
    """

    def __init__(self, ids: Sequence[int], names: Sequence[str],
                 vectors: Sequence[Sequence[float]] | np.ndarray) -> None:
        import faiss

        self.ids = tuple(int(i) for i in ids)
        self.names = tuple(names)
        self.vectors = normalise(vectors) if len(self.ids) else np.zeros((0, 0), np.float32)
        self.dim = int(self.vectors.shape[1])
        self._index = faiss.IndexFlatL2(max(self.dim, 1))
        if len(self.ids):
            self._index.add(self.vectors)

    @classmethod
    def from_kb(cls, kb, dim: int | None = None) -> DatasetIndex:
        """Index the KB's datasets of dimension ``dim`` (default: that of the newest dataset,
        i.e. of the embedder in use); datasets embedded differently are left out."""
        datasets = kb.datasets()
        if dim is None and datasets:
            dim = datasets[-1].embedding.size
        chosen = [d for d in datasets if d.embedding.size == dim]
        if not chosen:
            return cls((), (), np.zeros((0, dim or 0), np.float32))
        return cls([d.id for d in chosen], [d.name for d in chosen],
                   np.stack([d.embedding for d in chosen]))

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, embedding: Sequence[float], k: int) -> list[tuple[int, str, float]]:
        """The ``k`` nearest datasets as ``(dataset_id, name, distance)``, nearest first."""
        query = normalise(embedding)
        if not len(self) or query.shape[1] != self.dim:
            return []
        k = min(k, len(self))
        with faiss_threads(len(self)):
            sq, rows = self._index.search(query, k)
        return [(self.ids[r], self.names[r], float(np.sqrt(max(d, 0.0))))
                for d, r in zip(sq[0], rows[0]) if r >= 0]

    def nearest_neighbour_distances(self) -> np.ndarray:
        """For every indexed dataset, the distance to its nearest *other* dataset."""
        if len(self) < 2:
            return np.zeros(0, np.float32)
        with faiss_threads(len(self)):
            sq, _ = self._index.search(self.vectors, 2)
        # Column 0 is the point itself (distance 0), unless an exact duplicate came first;
        # either way the larger of the two is the nearest other point.
        return np.sqrt(np.maximum(sq.max(axis=1), 0.0))

    def pairwise_distances(self, max_rows: int = 2000) -> np.ndarray:
        """Distances between every pair of indexed datasets (upper triangle, flattened).

        Above ``max_rows`` datasets, the pairs among an evenly spaced subset of that many.
        """
        x = self.vectors
        if len(x) > max_rows:
            x = x[np.linspace(0, len(x) - 1, max_rows).round().astype(int)]
        sq = np.maximum((x * x).sum(1)[:, None] + (x * x).sum(1)[None] - 2 * x @ x.T, 0.0)
        return np.sqrt(sq[np.triu_indices(len(x), k=1)])
