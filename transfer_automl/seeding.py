"""Seeding a study with what the knowledge base contributed, and keeping that contribution
with the run so that a resumed run is seeded the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transfer_automl.options import WarmStartMode
from transfer_automl.planning import WarmStart
from transfer_automl.study import Study
from transfer_automl.trial import Observation


def seed_study(study: Study, p, warm: WarmStart) -> None:
    """Enqueue prior points and hand prior trials to the sampler, as ``warm.mode`` says."""
    if p is None or warm.mode is WarmStartMode.NONE:
        return
    if warm.mode.uses_points:
        for point in p.points:
            if study.space.contains({**study.space.default, **point.config}):
                study.enqueue(point.config, origin=point.source)
                warm.points += 1
    if warm.mode.uses_history:
        history = [o for o in p.history if study.space.contains(o.config)]
        study.add_history(history)
        warm.history = len(history)


@dataclass(frozen=True)
class SavedPoint:
    config: dict[str, Any]
    source: str


@dataclass(frozen=True)
class SavedPriors:
    """Priors as written to a run's settings, so a resumed run warm-starts the same way."""

    points: tuple[SavedPoint, ...] = ()
    history: tuple[Any, ...] = ()


def to_dict(warm: WarmStart, p) -> dict[str, Any]:
    """The warm start of a run, JSON-serialisable (for resume)."""
    points = [{"config": dict(pt.config), "source": pt.source} for pt in (p.points if p else ())]
    history = [{"config": dict(o.config), "score": o.score} for o in (p.history if p else ())]
    return {"mode": warm.mode.value, "group": warm.group, "backbone": warm.backbone,
            "points": points, "history": history, "kb": warm.kb, "source": warm.source}


def from_dict(data: dict[str, Any]) -> tuple[WarmStart, SavedPriors]:
    warm = WarmStart(WarmStartMode(data["mode"]), data.get("group"), data.get("backbone", {}),
                     kb=data.get("kb", True), source=data.get("source", "trials"))
    priors = SavedPriors(tuple(SavedPoint(p["config"], p["source"]) for p in data["points"]),
                         tuple(Observation(h["config"], h["score"]) for h in data["history"]))
    return warm, priors
