"""Warm-start methods and their replay on a recorded meta-dataset (NumPy only, no training).

A meta-dataset is a score matrix: every portfolio configuration trained once on every
dataset, with its cost in seconds. A method sees every dataset but the held-out one and
the held-out dataset's embedding, and returns an order in which to try the configurations;
the replay then reads the held-out dataset's recorded scores in that order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Meta:
    """Scores ``[datasets, configs]`` (accuracy; 0 for a failed trial), costs in seconds,
    one embedding per dataset (rows of ``embeddings``), and their names."""

    datasets: tuple[str, ...]
    configs: tuple[str, ...]
    scores: np.ndarray
    costs: np.ndarray
    embeddings: np.ndarray

    def without(self, i: int, keep: Sequence[int] | None = None) -> "Meta":
        """The meta-dataset a method may learn from when dataset ``i`` is held out
        (optionally only the datasets ``keep``)."""
        rows = [j for j in (keep if keep is not None else range(len(self.datasets))) if j != i]
        return Meta(tuple(self.datasets[j] for j in rows), self.configs, self.scores[rows],
                    self.costs[rows], self.embeddings[rows])


def normalised(scores: np.ndarray) -> np.ndarray:
    """Each dataset's scores rescaled to [0, 1] (worst to best configuration), so that easy
    and hard datasets weigh the same."""
    low, high = scores.min(axis=1, keepdims=True), scores.max(axis=1, keepdims=True)
    return np.where(high > low, (scores - low) / np.where(high > low, high - low, 1.0), 1.0)


def distances(known: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Euclidean distances of unit-normalised embeddings, as the knowledge base matches."""
    def unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    return np.linalg.norm(unit(known) - unit(query)[None, :], axis=1)


def similarity_weights(known: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``exp(-d / median d)``: near datasets count most, far ones still a little."""
    d = distances(known, query)
    return np.exp(-d / max(float(np.median(d)), 1e-9))


def _greedy(norm: np.ndarray, weights: np.ndarray, costs: np.ndarray | None) -> list[int]:
    """Configurations in the order that most raises the weighted mean of the learning
    datasets' best-so-far (per second of mean cost when ``costs`` is given)."""
    best = np.zeros(norm.shape[0])
    left, order = list(range(norm.shape[1])), []
    w = weights / weights.sum()
    while left:
        gains = np.array([w @ (np.maximum(best, norm[:, c]) - best) for c in left])
        if costs is not None:
            gains = gains / np.maximum(costs[:, left].mean(axis=0), 1e-3)
        if gains.max() <= 0:  # nothing left improves anyone: cheapest (or listed) first
            rest = sorted(left, key=lambda c: costs[:, c].mean()) if costs is not None else left
            return order + list(rest)
        pick = left[int(np.argmax(gains))]
        order.append(pick)
        left.remove(pick)
        best = np.maximum(best, norm[:, pick])
    return order


def greedy_portfolio(meta: Meta, query: np.ndarray) -> list[int]:
    """The portfolio that does best over all known datasets (no use of the embedding)."""
    return _greedy(normalised(meta.scores), np.ones(len(meta.datasets)), None)


def nearest_neighbour(meta: Meta, query: np.ndarray) -> list[int]:
    """The nearest known dataset's configurations, best first."""
    nearest = int(np.argmin(distances(meta.embeddings, query)))
    return list(np.argsort(-meta.scores[nearest], kind="stable"))


def similarity_ranked(meta: Meta, query: np.ndarray) -> list[int]:
    """Configurations by their similarity-weighted mean normalised score."""
    mean = similarity_weights(meta.embeddings, query) @ normalised(meta.scores)
    return list(np.argsort(-mean, kind="stable"))


def similarity_greedy(meta: Meta, query: np.ndarray) -> list[int]:
    """The greedy portfolio, with the known datasets weighted by similarity."""
    return _greedy(normalised(meta.scores), similarity_weights(meta.embeddings, query), None)


def cost_aware_greedy(meta: Meta, query: np.ndarray) -> list[int]:
    """The similarity-weighted greedy portfolio, by gain per second of recorded cost."""
    return _greedy(normalised(meta.scores), similarity_weights(meta.embeddings, query),
                   meta.costs)


Method = Callable[[Meta, np.ndarray], list[int]]
#: Methods that return one order; "random" and "default first" are expectations over orders.
ORDERED: dict[str, Method] = {
    "greedy portfolio": greedy_portfolio,
    "nearest neighbour": nearest_neighbour,
    "similarity-ranked": similarity_ranked,
    "similarity greedy": similarity_greedy,
    "cost-aware greedy": cost_aware_greedy,
}


def regret_curves(scores: np.ndarray, costs: np.ndarray, order: Sequence[int],
                  budgets: Sequence[int], seconds: Sequence[float]) -> tuple[list, list]:
    """Regret (best achievable minus best found) after each trial budget and each time
    budget, for one held-out dataset tried in ``order``."""
    found = np.maximum.accumulate(scores[list(order)])
    spent = np.cumsum(costs[list(order)])
    oracle = scores.max()
    by_trials = [oracle - found[min(k, len(found)) - 1] for k in budgets]
    by_time = [oracle - (found[spent <= t][-1] if (spent <= t).any() else 0.0) for t in seconds]
    return by_trials, by_time


def trials_to_reach(scores: np.ndarray, order: Sequence[int], within: float) -> int:
    """Trials until the best found is within ``within`` of the best achievable."""
    found = np.maximum.accumulate(scores[list(order)])
    return int(np.argmax(found >= scores.max() - within)) + 1


def random_orders(n: int, count: int, seed: int, first: int | None = None) -> list[list[int]]:
    """``count`` seeded random orders of ``n`` configurations (``first`` always first)."""
    rng = np.random.default_rng(seed)
    rest = [c for c in range(n) if c != first]
    return [([first] if first is not None else []) + list(rng.permutation(rest))
            for _ in range(count)]


def rank_agreement(meta: Meta) -> tuple[np.ndarray, np.ndarray]:
    """For every pair of datasets: embedding distance and Spearman correlation of their
    configuration scores (does nearer mean the same configurations win?)."""
    from scipy.stats import spearmanr

    dist, agree = [], []
    for i in range(len(meta.datasets)):
        d = distances(meta.embeddings, meta.embeddings[i])
        for j in range(i + 1, len(meta.datasets)):
            rho = spearmanr(meta.scores[i], meta.scores[j]).statistic
            dist.append(d[j])
            agree.append(0.0 if np.isnan(rho) else rho)
    return np.array(dist), np.array(agree)
