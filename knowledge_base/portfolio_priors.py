"""Warm-start priors from the portfolio meta-dataset: what the transfer replay picks.

The meta-dataset holds one fixed portfolio of configurations evaluated on every known dataset
(see :mod:`knowledge_base.meta_dataset`). Replayed leave-one-dataset-out
(``transfer-automl benchmark transfer``), the similarity-weighted greedy portfolio (Wistuba et
al.'s greedy portfolio, auto-sklearn 2.0's, with the known datasets weighted by how near their
embedding is) came out best after 3 trials; this module computes it for a new dataset:

- **points**: configurations in the order that most raises the similarity-weighted mean of the
  known datasets' best-so-far normalised score, each step taking the one that adds most;
- **history**: the nearest datasets' portfolio rows as observations (each dataset's scores
  normalised from its worst to its best configuration), for TPE.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from knowledge_base.meta_dataset import portfolio_datasets, portfolio_rows
from knowledge_base.priors import PriorPoint, _SpaceFilter
from transfer_automl.trial import Observation

__all__ = ["PortfolioPriors", "portfolio_priors", "greedy_order", "similarity_weights"]

#: Datasets the meta-dataset needs before its priors replace the nearest-trial ones.
MIN_DATASETS = 2


@dataclass(frozen=True)
class PortfolioPriors:
    """Prior points in greedy order, TPE history from the nearest datasets, and what they
    rest on (``datasets``: the names, nearest first)."""

    points: tuple[PriorPoint, ...]
    history: tuple[Observation, ...]
    datasets: tuple[str, ...]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def similarity_weights(known: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``exp(-d / median d)`` of unit-normalised embedding distances: near datasets count
    most, far ones still a little."""
    d = np.linalg.norm(_unit(np.asarray(known, float)) - _unit(np.asarray(query, float)),
                       axis=1)
    return np.exp(-d / max(float(np.median(d)), 1e-9))


def normalised(scores: np.ndarray) -> np.ndarray:
    """Each row rescaled from its worst to its best score (NaN, not evaluated, stays NaN)."""
    low = np.nanmin(scores, axis=1, keepdims=True)
    high = np.nanmax(scores, axis=1, keepdims=True)
    span = np.where(high > low, high - low, 1.0)
    return np.where(high > low, (scores - low) / span, 1.0)


def greedy_order(norm: np.ndarray, weights: np.ndarray,
                 costs: np.ndarray | None = None) -> list[int]:
    """Columns of ``norm`` (datasets x configurations, normalised) in the order that most
    raises the ``weights``-weighted mean of the datasets' best-so-far (per second of mean
    cost with ``costs``); a configuration not evaluated on a dataset counts as its worst."""
    norm = np.nan_to_num(np.asarray(norm, float), nan=0.0)
    best = np.zeros(norm.shape[0])
    left, order = list(range(norm.shape[1])), []
    w = np.asarray(weights, float) / np.sum(weights)
    while left:
        gains = np.array([w @ (np.maximum(best, norm[:, c]) - best) for c in left])
        if costs is not None:
            gains = gains / np.maximum(np.nanmean(costs[:, left], axis=0), 1e-3)
        if gains.max() <= 0:  # nothing left improves anyone: cheapest (or listed) first
            rest = (sorted(left, key=lambda c: np.nanmean(costs[:, c])) if costs is not None
                    else left)
            return order + list(rest)
        pick = left[int(np.argmax(gains))]
        order.append(pick)
        left.remove(pick)
        best = np.maximum(best, norm[:, pick])
    return order


def portfolio_priors(kb, embedding: Sequence[float], space, n_points: int = 3, *,
                     history_datasets: int = 3, max_history: int = 200,
                     exclude: Iterable[str] = ()) -> PortfolioPriors | None:
    """The similarity-weighted greedy portfolio for a dataset with ``embedding``, restricted
    to configurations of ``space``; None when the meta-dataset knows fewer than
    :data:`MIN_DATASETS` datasets with embeddings (``exclude``: content fingerprints to
    leave out, such as a held-out dataset's)."""
    skip = set(exclude)
    known = [d for d in portfolio_datasets(kb)
             if d.embedding is not None and d.fingerprint not in skip]
    if len(known) < MIN_DATASETS:
        return None
    keep = _SpaceFilter(space)
    configs: dict[str, dict] = {}
    scores: dict[tuple[str, str], float] = {}
    for row in portfolio_rows(kb):
        if row.fingerprint in skip or row.score is None:
            continue
        config = keep.carried_over(row.config)
        if config is None:
            continue
        configs.setdefault(row.config_id, config)
        key = (row.fingerprint, row.config_id)
        scores[key] = max(scores.get(key, -np.inf), float(row.score))
    known = [d for d in known if any((d.fingerprint, c) in scores for c in configs)]
    if len(known) < MIN_DATASETS or not configs:
        return None
    ids = sorted(configs)
    matrix = np.array([[scores.get((d.fingerprint, c), np.nan) for c in ids] for d in known])
    norm = normalised(matrix)
    weights = similarity_weights(np.stack([d.embedding for d in known]), np.asarray(embedding))
    order = greedy_order(norm, weights)[:max(0, n_points)]
    points = tuple(PriorPoint(configs[ids[c]], float(np.nansum(weights * norm[:, c])
                                                       / weights.sum()),
                              f"kb:portfolio/{ids[c]}") for c in order)
    nearest = np.argsort(-weights, kind="stable")
    history: list[Observation] = []
    for d in nearest[:history_datasets]:
        for c, config_id in enumerate(ids):
            if not np.isnan(norm[d, c]) and len(history) < max_history:
                history.append(Observation(configs[config_id], float(norm[d, c])))
    return PortfolioPriors(points, tuple(history), tuple(known[d].name for d in nearest))
