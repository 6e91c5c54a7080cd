"""Priors from a match: the backbone to use, configurations to try first, and TPE history.

Scores are rank-normalised within each dataset (so an easy dataset's high accuracies do not
outweigh a hard one's). The KB holds about ten trials per dataset and its datasets rarely ran
the same configuration, so evidence is pooled: one random forest is fitted to the
rank-normalised trials of several datasets at once, and asked about configurations no
dataset there ran.

- **Backbone**: a forest is fitted to the matched group's trials, every backbone included.
  Each backbone's evidence is its partial dependence: the forest's mean prediction over the
  group's configurations with that backbone put in, so a backbone tried only with poor head
  settings is not blamed for them. The search's default backbone is kept unless another one
  beats it by ``min_gain``; a handful of trials rarely tells backbones apart that well.
  Confident only when the match is not novel and the backbone chosen has at least
  ``min_evidence`` trials.
- **Points**: the configurations with the best estimated rank on the new dataset, the
  similarity-weighted mean over its nearest datasets. Where a neighbour ran the
  configuration, its own rank counts; elsewhere, the out-of-bag prediction of a forest fitted
  to all the neighbours' trials (weighted by similarity): what the other trials say about it,
  its own result left out. So a configuration that excelled on one dataset counts for that
  dataset only, and as much elsewhere as similar configurations did there. Each point is tagged
  with its source ``"kb:<dataset name>/<run id>/<trial id>"`` for the trial's provenance, and
  weighted by that estimate.
- **History**: the neighbours' scored trials as :class:`~transfer_automl.samplers.Observation`
  with scores rank-normalised within each dataset into [0, 1], thinned by similarity: a
  neighbour of similarity ``s`` contributes ``ceil(s * n)`` of its ``n`` trials, spread evenly
  over its ranking so TPE sees good and bad regions alike.

A novel match backs off from its neighbours, which are not near enough to say anything
specific: the points are then the configurations with the best estimated rank over *every* KB
dataset, weighted alike (what transfers across domains, a portfolio in the sense of
auto-sklearn 2.0), with no history for TPE and a backbone suggestion flagged not confident.
Only configurations holding every parameter of the space are used (extra keys dropped); given
a :class:`~transfer_automl.space.SearchSpace`, values must also be valid in it, except that a
prior point takes the values the space fixes (the backbone chosen for the search) in place of
its own: head and fine-tuning settings carry over between backbones, and the forests see
trials of every backbone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from knowledge_base.records import TrialEntry
from knowledge_base.matching import Match, Neighbour
from transfer_automl.trial import Observation
from transfer_automl.space import ADDED_LATER, Choice

__all__ = ["Priors", "BackboneChoice", "BackboneEvidence", "PriorPoint", "priors",
           "rank_normalise"]

_SCORED = ("complete", "pruned")


@dataclass(frozen=True)
class BackboneEvidence:
    """How one backbone did on a group: ``mean`` is its partial dependence (the estimated
    rank-normalised score of the group's configurations on it, see the module docstring),
    from ``count`` trials on ``datasets`` datasets."""

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
    reason: str = ""


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
        """``config`` restricted to the space's parameters; None if it lacks one. A parameter
        added to the space after the trial ran (``space.ADDED_LATER``) takes the space's
        default, which is what the trial effectively used (``fusion``: none)."""
        default = self._space.default if self._space is not None else {}
        later = {n: default[n] for n in ADDED_LATER if n in default and n not in config}
        config = {**config, **later}
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


class _Forest:
    """A random forest on rank-normalised trials of several datasets (configs one-hot
    encoded), with each training row's out-of-bag prediction."""

    def __init__(self, configs: list[dict], ranks: list[float], weights: list[float] | None = None,
                 extra: Sequence[dict] = ()) -> None:
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.feature_extraction import DictVectorizer

        self.encode = DictVectorizer(sparse=False).fit(list(configs) + list(extra))
        # Every split sees every setting, so a backbone is credited only with what the other
        # settings do not already explain.
        self.model = RandomForestRegressor(n_estimators=200, min_samples_leaf=2, max_features=1.0,
                                           oob_score=True, random_state=0)
        self.model.fit(self.encode.transform(configs), ranks, sample_weight=weights)

    def predict(self, configs: Sequence[dict]) -> np.ndarray:
        return self.model.predict(self.encode.transform(list(configs)))

    @property
    def out_of_bag(self) -> np.ndarray:
        return self.model.oob_prediction_


_MIN_FOREST = 4  # fewer scored trials than this: no forest, estimates stay at 1/2


def _backbone(match: Match, scored, key: str, min_evidence: int, default: str | None,
              min_gain: float) -> BackboneChoice:
    for group in match.groups:
        rows = [(t.config, float(r), ds) for ds in group.members for t, r in scored.get(ds, ())
                if key in t.config]
        if not rows:
            continue
        tried: dict[str, list[int]] = defaultdict(list)
        for c, _, ds in rows:
            tried[str(c[key])].append(ds)
        if len(rows) >= _MIN_FOREST and len(tried) > 1:
            forest = _Forest([c for c, _, _ in rows], [r for _, r, _ in rows])
            means = {b: float(forest.predict([dict(c, **{key: b}) for c, _, _ in rows]).mean())
                     for b in tried}
        else:
            means = {b: float(np.mean([r for c, r, _ in rows if str(c[key]) == b]))
                     for b in tried}
        evidence = {b: BackboneEvidence(means[b], len(ds), len(set(ds))) for b, ds in tried.items()}
        best = max(evidence, key=lambda b: (evidence[b].mean, evidence[b].count, b))
        if default in evidence and best != default:
            gain = evidence[best].mean - evidence[default].mean
            if gain < min_gain:
                reason = (f"the default: {best} is ahead by {gain:.3f}, under the "
                          f"{min_gain:.2f} needed to switch")
                best = default
            else:
                reason = f"ahead of the default {default} by {gain:.3f}"
        else:
            reason = "best on the matched group"
        confident = not match.novel and evidence[best].count >= min_evidence
        return BackboneChoice(best, confident, group.group_id, evidence, reason)
    return BackboneChoice(None, False, match.best_group.group_id if match.groups else None)


def _observed(match: Match, scored, keep) -> dict[int, list[tuple[dict, float, TrialEntry]]]:
    """Per neighbour: its scored trials with their rank-normalised score, projected onto the
    space's parameters. Values outside the space (another backbone, say) are kept: they are
    evidence about the other parameters for the forests, though never candidates."""
    out = {}
    for n in match.neighbours:
        rows = ((keep.project(t.config), float(r), t) for t, r in scored.get(n.dataset_id, ()))
        out[n.dataset_id] = [row for row in rows if row[0] is not None]
    return out


def _key(config: Mapping[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in config.items()))


def _rank_estimates(candidates: list[dict], observed, weights: np.ndarray, keep) -> np.ndarray:
    """``(candidate, neighbour)`` estimated rank-normalised score on that neighbour.

    Observed where the neighbour ran the configuration (the mean of repeats); elsewhere the
    pooled forest's out-of-bag prediction for the trials that ran it (the candidates come from
    those trials), so its own result does not vouch for it; 1/2 with too few trials to fit.
    """
    rows = [(c, r, w, t) for (rs, w) in zip(observed.values(), weights) for c, r, t in rs]
    keys = [_key(c) for c in candidates]
    estimates = np.full((len(candidates), len(observed)), 0.5)
    if len(rows) >= _MIN_FOREST:
        forest = _Forest([c for c, _, _, _ in rows], [r for _, r, _, _ in rows],
                         [w for _, _, w, _ in rows], extra=candidates)
        oob: dict[tuple, list[float]] = defaultdict(list)
        for (c, _, _, t), p in zip(rows, forest.out_of_bag):
            carried = keep.carried_over(c)
            if carried is not None:
                oob[_key(carried)].append(float(p))
        fallback = forest.predict(candidates)
        estimates[:] = np.array([np.mean(oob[k]) if k in oob else fallback[i]
                                 for i, k in enumerate(keys)])[:, None]
    for j, rs in enumerate(observed.values()):
        seen: dict[tuple, list[float]] = defaultdict(list)
        for c, r, _ in rs:
            seen[_key(c)].append(r)
        for i, k in enumerate(keys):
            if k in seen:
                estimates[i, j] = float(np.mean(seen[k]))
    return estimates


def _points(match: Match, scored, names: dict[int, str], keep,
            n_points: int) -> tuple[PriorPoint, ...]:
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
    weights = np.array([n.similarity for n in match.neighbours], dtype=float)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(weights), 1 / len(weights))
    mean = _rank_estimates(configs, observed, weights, keep) @ weights
    # best estimate first; ties to the nearer source
    chosen = sorted(range(len(configs)), key=lambda i: (-round(mean[i], 12), i))[:n_points]
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
           max_history: int = 200, min_evidence: int = 3, min_gain: float = 0.05,
           backbone_key: str = "backbone") -> Priors:
    """Turn a :class:`~knowledge_base.matching.Match` into warm-start priors.

    Args:
        match: the result of :func:`knowledge_base.matching.match`.
        kb: the :class:`~knowledge_base.KnowledgeBase` the match came from.
        space_names: the parameter names of the search space, or the ``SearchSpace`` itself.
        n_points: the most prior configurations to return.
        max_history: the most observations in ``history``.
        min_evidence: trials the chosen backbone needs for a confident suggestion.
        min_gain: how far (in rank-normalised score) a backbone must beat the space's default
            backbone to replace it; needs ``space_names`` to be a ``SearchSpace``.
        backbone_key: the configuration key naming the backbone.
    """
    scored = _scored_by_dataset(kb.trials(status=_SCORED))
    default = getattr(space_names, "default", {}).get(backbone_key)
    backbone = _backbone(match, scored, backbone_key, min_evidence, default, min_gain)
    keep = _SpaceFilter(space_names)
    if match.novel:
        everywhere = _everywhere(kb, scored)
        names = {n.dataset_id: n.name for n in everywhere.neighbours}
        return Priors(backbone, _points(everywhere, scored, names, keep, n_points), novel=True)
    names = {n.dataset_id: n.name for n in match.neighbours}
    return Priors(backbone, _points(match, scored, names, keep, n_points),
                  _history(match, scored, keep, max_history), novel=False)


def _everywhere(kb, scored) -> Match:
    """Every KB dataset with scored trials as an equally similar neighbour: the match a
    dataset would have if the KB told nothing about where it lies."""
    return Match(neighbours=tuple(Neighbour(d.id, d.name, float("nan"), 1.0)
                                  for d in kb.datasets() if d.id in scored), novel=False)
