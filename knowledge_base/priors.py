"""Priors from a match: the backbone to use, configurations to try first, and TPE history.

- **Backbone**: on the matched group, every scored trial's score is rank-normalised within its
  dataset (so an easy dataset's high accuracies do not outweigh a hard one's), then averaged
  per backbone; the highest mean wins. Its evidence (mean, trial count, dataset count per
  backbone) comes along. Confident only when the match is not novel and the winner has at
  least ``min_evidence`` trials.
- **Points**: the best configurations of the nearest datasets, each weighted by
  ``similarity * rank-normalised score``; each neighbour's best comes before anyone's second
  best, so the points are diverse. Duplicates are dropped. Each is tagged with its source
  ``"kb:<dataset name>/<run id>/<trial id>"`` for the trial's provenance.
- **History**: the neighbours' scored trials as :class:`~transfer_automl.samplers.Observation`
  with scores rank-normalised within each dataset into [0, 1], thinned by similarity: a
  neighbour of similarity ``s`` contributes ``ceil(s * n)`` of its ``n`` trials, spread evenly
  over its ranking so TPE sees good and bad regions alike.

A novel match backs off: no points, no history, a backbone suggestion flagged not confident.
Only configurations holding every parameter of the space are used (extra keys dropped); given
a :class:`~transfer_automl.space.SearchSpace`, values must also be valid in it.
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

    def __call__(self, config: Mapping[str, Any]) -> dict[str, Any] | None:
        if any(n not in config for n in self.names):
            return None
        projected = {n: config[n] for n in self.names}
        if self._space is not None and not self._space.contains(projected):
            return None
        return projected


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


def _points(match: Match, scored, names: dict[int, str], keep, n_points: int):
    candidates = []
    for n in match.neighbours:
        ranked = sorted((t for t in scored.get(n.dataset_id, ()) if t[0].status == "complete"),
                        key=lambda tr: -tr[1])
        for position, (t, r) in enumerate(ranked):
            config = keep(t.config)
            if config is not None:
                source = f"kb:{names[n.dataset_id]}/{t.run_id}/{t.trial_id}"
                candidates.append((position, -n.similarity * r, config, source))
    candidates.sort(key=lambda c: (c[0], c[1]))
    points: list[PriorPoint] = []
    for _, neg_weight, config, source in candidates:
        if len(points) == n_points:
            break
        if all(p.config != config for p in points):
            points.append(PriorPoint(config, -neg_weight, source))
    return tuple(points)


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
