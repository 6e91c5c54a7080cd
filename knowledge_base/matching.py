"""Match a new dataset's embedding to the KB: ranked groups, nearest datasets, novelty.

Novelty rule (when to say "unseen domain" so warm start backs off), on unit-length embeddings
with Euclidean distance in [0, 2]. A new dataset is *novel* when its nearest KB dataset is
farther than the smaller of two distances:

- ``margin * quantile(nn, q)``, where ``nn`` holds, for every KB dataset, the distance to its
  nearest other dataset (``q = 0.9``, ``margin = 1.5`` by default): much farther away than KB
  datasets are from their own nearest neighbours. In a KB whose datasets come in clusters
  (several datasets per domain) this is the tight bound.
- ``quantile(pairs, pair_quantile)``, over the distances between all pairs of KB datasets
  (median by default): no closer than a typical pair of KB datasets. In a KB where every
  dataset is its own domain, nearest-neighbour distances are themselves distances between
  domains and the first bound flags nothing; this one still does.

Both scale with the KB's own spread, so neither needs tuning per embedder. The result is
floored at ``min_threshold``. With a single dataset there is no spread and ``fallback`` is
used; an empty KB matches nothing and is always novel.

Similarity of a neighbour at distance ``d`` is ``2 ** -(d / threshold) ** 2``: 1 for the same
embedding, 1/2 at the novelty threshold, falling fast beyond it. Priors weight by it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from knowledge_base.grouping import ensure_groups
from knowledge_base.index import DatasetIndex, normalise

__all__ = ["Match", "GroupMatch", "Neighbour", "match", "novelty_threshold", "similarity"]


class Neighbour(NamedTuple):
    """A KB dataset near the query."""

    dataset_id: int
    name: str
    distance: float
    similarity: float


@dataclass(frozen=True)
class GroupMatch:
    """One group, at ``distance`` from the query (to its centroid), with its member ids."""

    group_id: int
    distance: float
    members: tuple[int, ...]
    label: int = 0


@dataclass(frozen=True)
class Match:
    """The result of :func:`match`.

    Attributes:
        groups: every current group, nearest first.
        neighbours: the nearest datasets, nearest first.
        novel: True when the query is far from everything (warm start should back off).
        threshold: the novelty threshold used (None for an empty KB).
        groups_version: the grouping version the groups belong to (0 if none).
    """

    groups: tuple[GroupMatch, ...] = ()
    neighbours: tuple[Neighbour, ...] = ()
    novel: bool = True
    threshold: float | None = None
    groups_version: int = 0

    @property
    def best_group(self) -> GroupMatch | None:
        return self.groups[0] if self.groups else None

    def to_dict(self) -> dict:
        """JSON-serialisable form (for the CLI, the server and run metadata)."""
        return {"novel": self.novel, "threshold": self.threshold,
                "groups_version": self.groups_version,
                "groups": [{"group_id": g.group_id, "distance": g.distance,
                            "members": list(g.members)} for g in self.groups],
                "neighbours": [n._asdict() for n in self.neighbours]}


def novelty_threshold(index: DatasetIndex, *, quantile: float = 0.9, margin: float = 1.5,
                      pair_quantile: float = 0.5, fallback: float = 0.5,
                      min_threshold: float = 0.05) -> float:
    """The distance beyond which a query counts as novel (rule in the module docstring)."""
    nn = index.nearest_neighbour_distances()
    if not len(nn):
        return fallback
    spread = margin * float(np.quantile(nn, quantile))
    typical_pair = float(np.quantile(index.pairwise_distances(), pair_quantile))
    return max(min(spread, typical_pair), min_threshold)


def similarity(distance: float, threshold: float) -> float:
    """``2 ** -(distance / threshold) ** 2``: 1 at distance 0, 1/2 at the threshold."""
    return float(2.0 ** -((distance / threshold) ** 2))


def match(kb, embedding: Sequence[float], k_datasets: int = 5, *, quantile: float = 0.9,
          margin: float = 1.5, pair_quantile: float = 0.5, fallback: float = 0.5,
          **group_kwargs) -> Match:
    """Match ``embedding`` to the KB's groups and datasets.

    Regroups first when datasets were added since the last grouping (see
    :func:`knowledge_base.grouping.ensure_groups`, which takes ``group_kwargs``).

    Args:
        kb: the :class:`~knowledge_base.KnowledgeBase`.
        embedding: the new dataset's vector (same embedder as the KB's datasets).
        k_datasets: how many nearest datasets to return.
        quantile, margin, pair_quantile, fallback: the novelty rule's parameters.
    """
    query = np.asarray(embedding, dtype=np.float32).ravel()
    index = DatasetIndex.from_kb(kb, dim=query.size)
    if not len(index):
        return Match()
    threshold = novelty_threshold(index, quantile=quantile, margin=margin,
                                  pair_quantile=pair_quantile, fallback=fallback)
    neighbours = tuple(Neighbour(i, name, d, similarity(d, threshold))
                       for i, name, d in index.search(query, k_datasets))
    groups = ensure_groups(kb, index, **group_kwargs)
    q = normalise(query)[0]
    ranked = sorted((GroupMatch(g.id, float(np.linalg.norm(q - g.centroid)), g.members, g.label)
                     for g in groups), key=lambda g: (g.distance, g.label))
    novel = not neighbours or neighbours[0].distance > threshold
    return Match(tuple(ranked), neighbours, novel, threshold,
                 groups[0].version if groups else 0)
