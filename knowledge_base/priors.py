"""Priors from a match: the backbone to use, configurations to try first, and TPE history.

- **Backbone**: on the matched group, every scored trial's score is rank-normalised within its
  dataset (so an easy dataset's high accuracies do not outweigh a hard one's), then averaged
  per backbone; the highest mean wins. Its evidence (mean, trial count, dataset count per
  backbone) comes along. Confident only when the match is not novel and the winner has at
  least ``min_evidence`` trials.
- **Points**: a small portfolio chosen across the nearest datasets, not each one's best in
  turn. Every configuration a neighbour completed is a candidate; its rank on each neighbour
  is the observed rank-normalised score where that neighbour ran it, else a random-forest
  surrogate's prediction from that neighbour's trials, shrunk toward 1/2 when the neighbour
  has few trials. Candidates are picked greedily to maximise the similarity-weighted mean,
  over neighbours, of the best rank among the points picked so far: the first point is the
  one that does well everywhere near; each later one covers the neighbours where the earlier
  ones are weak. So a configuration that excels on one dataset and fails on the others comes
  late or not at all. Each point is tagged with its source
  ``"kb:<dataset name>/<run id>/<trial id>"`` for the trial's provenance, and weighted by
  its similarity-weighted mean rank.
- **History**: the neighbours' scored trials as :class:`~transfer_automl.samplers.Observation`
  with scores rank-normalised within each dataset into [0, 1], thinned by similarity: a
  neighbour of similarity ``s`` contributes ``ceil(s * n)`` of its ``n`` trials, spread evenly
  over its ranking so TPE sees good and bad regions alike.

A novel match backs off: no points, no history, a backbone suggestion flagged not confident.
Only configurations holding every parameter of the space are used (extra keys dropped); given
a :class:`~transfer_automl.space.SearchSpace`, values must also be valid in it, except that a
prior point takes the values the space fixes (the backbone chosen for the search) in place of
its own: head and fine-tuning settings carry over between backbones, and the surrogates see
trials of every backbone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from knowledge_base._records import TrialEntry
from knowledge_base.matching import Match
from transfer_automl.samplers import Observation
from transfer_automl.space import Choice

__all__ = ["Priors", "BackboneChoice", "BackboneEvidence", "PriorPoint", "priors",
           "rank_normalise"]

_SCORED = ("complete", "pruned")


@dataclass(frozen=True)
class BackboneEvidence:
    """How one backbone did on a group: mean rank-normalised score over ``count`` trials."""

    mean: float
    count: int
    datasets: int


@dataclass(frozen=True)
class BackboneChoice:
    """The suggested backbone (None when the KB has no evidence) and why."""

    name: str | None
    confident: bool
    group_id: int | None
    evidence: Mapping[str, BackboneEvidence] = field(default_factory=dict)


@dataclass(frozen=True)
class PriorPoint:
    """A configuration to try early, its weight and where it came from."""

    config: Mapping[str, Any]
    weight: float
    source: str


@dataclass(frozen=True)
class Priors:
    backbone: BackboneChoice
    points: tuple[PriorPoint, ...] = ()
    history: tuple[Observation, ...] = ()
    novel: bool = True


def rank_normalise(scores: Sequence[float]) -> np.ndarray:
    """Scores mapped to [0, 1] by rank (ties share their mean rank; best = 1, worst = 0).

    A single score carries no ranking information and maps to 0.5.
    """
    x = np.asarray(scores, dtype=float)
    if len(x) == 0:
        return x
    if len(x) == 1:
        return np.array([0.5])
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x), dtype=float)
    for value in np.unique(x):  # average the ranks of ties
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks / (len(x) - 1)


class _SpaceFilter:
    def __init__(self, space_names: Iterable[str] | Any) -> None:
        self._space = space_names if hasattr(space_names, "contains") else None
        self.names = tuple(space_names.names if hasattr(space_names, "names") else space_names)

    def project(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """``config`` restricted to the space's parameters; None if it lacks one."""
        if any(n not in config for n in self.names):
            return None
        return {n: config[n] for n in self.names}

    def __call__(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """The projection, if it is also a valid point of the space (when one was given)."""
        projected = self.project(config)
        if projected is None or (self._space is not None and not self._space.contains(projected)):
            return None
        return projected

    def carried_over(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        """Like calling the filter, but the parameters the space holds at one value (the
        backbone chosen for the search, say) take that value first."""
        projected = self.project(config)
        if projected is not None and self._space is not None:
            projected.update({p.name: p.options[0] for p in self._space.params
                              if isinstance(p, Choice) and len(p.options) == 1})
        return self(projected) if projected is not None else None


def _scored_by_dataset(trials: Iterable[TrialEntry]) -> dict[int, list[tuple[TrialEntry, float]]]:
    """Scored trials grouped by dataset, each with its rank-normalised score."""
    grouped: dict[int, list[TrialEntry]] = defaultdict(list)
    for t in trials:
        if t.score is not None:
            grouped[t.dataset_id].append(t)
    return {ds: list(zip(ts, rank_normalise([t.score for t in ts]))) for ds, ts in grouped.items()}


def _backbone(match: Match, scored, key: str, min_evidence: int) -> BackboneChoice:
    for group in match.groups:
        sums: dict[str, list[float]] = defaultdict(list)
        seen: dict[str, set[int]] = defaultdict(set)
        for ds in group.members:
            for t, r in scored.get(ds, ()):
                if key in t.config:
                    sums[str(t.config[key])].append(float(r))
                    seen[str(t.config[key])].add(ds)
        if not sums:
            continue
        evidence = {b: BackboneEvidence(float(np.mean(v)), len(v), len(seen[b]))
                    for b, v in sums.items()}
        best = max(evidence, key=lambda b: (evidence[b].mean, evidence[b].count, b))
        confident = not match.novel and evidence[best].count >= min_evidence
        return BackboneChoice(best, confident, group.group_id, evidence)
    return BackboneChoice(None, False, match.best_group.group_id if match.groups else None)


def _observed(match: Match, scored, keep) -> dict[int, list[tuple[dict, float, TrialEntry]]]:
    """Per neighbour: its scored trials with their rank-normalised score, projected onto the
    space's parameters. Values outside the space (another backbone, say) are kept: they are
    evidence about the other parameters for the surrogate, though never candidates."""
    out = {}
    for n in match.neighbours:
        rows = ((keep.project(t.config), float(r), t) for t, r in scored.get(n.dataset_id, ()))
        out[n.dataset_id] = [row for row in rows if row[0] is not None]
    return out


def _key(config: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in config.items()))


def _rank_estimates(candidates: list[dict], observed, shrink: float) -> np.ndarray:
    """``(candidate, neighbour)`` estimated rank-normalised score on that neighbour.

    Observed where the neighbour ran the configuration (the mean of repeats); elsewhere a
    random forest fitted to the neighbour's trials, its prediction moved toward 1/2 by
    ``m / (m + shrink)`` for a neighbour with ``m`` trials (no trials: 1/2).
    """
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.feature_extraction import DictVectorizer

    everything = candidates + [c for rows in observed.values() for c, _, _ in rows]
    encode = DictVectorizer(sparse=False).fit(everything)
    x_candidates = encode.transform(candidates)
    keys = [_key(c) for c in candidates]
    estimates = np.full((len(candidates), len(observed)), 0.5)
    for j, rows in enumerate(observed.values()):
        m = len(rows)
        if m >= 3:
            forest = RandomForestRegressor(n_estimators=64, min_samples_leaf=2, random_state=0)
            forest.fit(encode.transform([c for c, _, _ in rows]), [r for _, r, _ in rows])
            estimates[:, j] = 0.5 + (forest.predict(x_candidates) - 0.5) * m / (m + shrink)
        seen: dict[tuple, list[float]] = defaultdict(list)
        for c, r, _ in rows:
            seen[_key(c)].append(r)
        for i, k in enumerate(keys):
            if k in seen:
                estimates[i, j] = float(np.mean(seen[k]))
    return estimates


def _points(match: Match, scored, names: dict[int, str], keep, n_points: int, *,
            shrink: float = 4.0) -> tuple[PriorPoint, ...]:
    observed = _observed(match, scored, keep)
    candidates: dict[tuple, tuple[dict, str]] = {}
    for n in match.neighbours:  # nearest first: a repeated configuration keeps its nearest source
        for c, _, t in sorted(observed[n.dataset_id], key=lambda row: -row[1]):
            c = keep.carried_over(c) if t.status == "complete" else None
            if c is not None and _key(c) not in candidates:
                candidates[_key(c)] = (c, f"kb:{names[n.dataset_id]}/{t.run_id}/{t.trial_id}")
    if not candidates or n_points < 1:
        return ()
    configs = [c for c, _ in candidates.values()]
    sources = [s for _, s in candidates.values()]
    estimates = _rank_estimates(configs, observed, shrink)
    weights = np.array([n.similarity for n in match.neighbours], dtype=float)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(weights), 1 / len(weights))
    mean = estimates @ weights
    covered = np.zeros(len(weights))
    chosen: list[int] = []
    while len(chosen) < min(n_points, len(configs)):
        gain = np.maximum(estimates, covered) @ weights
        gain[chosen] = -np.inf
        # best portfolio value; ties to the better configuration on its own, then the nearer
        best = max((i for i in range(len(configs)) if i not in chosen),
                   key=lambda i: (round(gain[i], 12), round(mean[i], 12), -i))
        chosen.append(best)
        covered = np.maximum(covered, estimates[best])
    return tuple(PriorPoint(configs[i], float(mean[i]), sources[i]) for i in chosen)


def _history(match: Match, scored, keep, max_history: int) -> tuple[Observation, ...]:
    history: list[Observation] = []
    for n in match.neighbours:
        pairs = ((keep(t.config), float(r)) for t, r in scored.get(n.dataset_id, ()))
        usable = sorted((cr for cr in pairs if cr[0] is not None), key=lambda cr: cr[1])
        if not usable:
            continue
        take = min(len(usable), math.ceil(n.similarity * len(usable)), max_history - len(history))
        rows = np.unique(np.linspace(0, len(usable) - 1, take).round().astype(int)) if take else []
        history.extend(Observation(usable[i][0], usable[i][1]) for i in rows)
        if len(history) >= max_history:
            break
    return tuple(history)


def priors(match: Match, kb, space_names: Iterable[str] | Any, n_points: int = 3, *,
           max_history: int = 200, min_evidence: int = 3,
           backbone_key: str = "backbone") -> Priors:
    """Turn a :class:`~knowledge_base.matching.Match` into warm-start priors.

    Args:
        match: the result of :func:`knowledge_base.matching.match`.
        kb: the :class:`~knowledge_base.KnowledgeBase` the match came from.
        space_names: the parameter names of the search space, or the ``SearchSpace`` itself.
        n_points: the most prior configurations to return.
        max_history: the most observations in ``history``.
        min_evidence: trials the winning backbone needs for a confident suggestion.
        backbone_key: the configuration key naming the backbone.
    """
    scored = _scored_by_dataset(kb.trials(status=_SCORED))
    backbone = _backbone(match, scored, backbone_key, min_evidence)
    if match.novel:
        return Priors(backbone, novel=True)
    keep = _SpaceFilter(space_names)
    names = {n.dataset_id: n.name for n in match.neighbours}
    return Priors(backbone, _points(match, scored, names, keep, n_points),
                  _history(match, scored, keep, max_history), novel=False)
