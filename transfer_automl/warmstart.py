"""Between a search and the knowledge base: match the dataset, warm-start, record the run."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from transfer_automl.errors import InputError
from transfer_automl.space import SearchSpace
from transfer_automl.study import Study

log = logging.getLogger(__name__)

WARM_START_MODES = ("auto", "none", "points", "history")
SEED_KB = "seed_kb.json"


def open_kb(kb: Any, cache: Path, create: bool = True):
    """The knowledge base to use: None -> ``cache/kb.sqlite`` (seeded on creation), a path or
    SQLAlchemy URL -> that store, False -> none. The store is connected and its schema
    checked here, so an unusable KB fails in one line before any expensive step; with
    ``create=False`` a KB file that does not exist is an error instead of a new empty KB."""
    if kb is False:
        return None
    from knowledge_base import KnowledgeBase, default_kb_path

    if kb is None:
        path = default_kb_path(cache)
        fresh = not path.exists()
        store = KnowledgeBase(path).check()
        if fresh:
            seed = resources.files("knowledge_base").joinpath(SEED_KB)
            if seed.is_file():
                with resources.as_file(seed) as seed_path:
                    counts = store.import_json(seed_path)
                log.info("new knowledge base %s seeded with %s", path, counts)
        return store
    if isinstance(kb, (str, os.PathLike)):
        return KnowledgeBase(kb, create=create).check()
    raise InputError(f"kb: expected None, False, a path or a SQLAlchemy URL, got {kb!r}")


@dataclass
class WarmStart:
    """What the knowledge base contributed to one search.

    Attributes:
        mode: the warm-start mode actually applied (``auto`` resolves to one of the others).
        group: matched group, distance, neighbours and novelty, for the result and the CLI.
        backbone: the backbone chosen for the search and why.
        points: prior configurations enqueued first.
        history: number of neighbour trials given to TPE.
    """

    mode: str
    group: dict[str, Any] | None = None
    backbone: dict[str, Any] = field(default_factory=dict)
    points: int = 0
    history: int = 0

    def describe(self) -> str:
        if self.group is None:
            return "knowledge base: empty, searching from scratch"
        g = self.group
        where = (f"matched group {g['group_id']} at distance {g['distance']:.3f}"
                 if g["group_id"] is not None else "no group")
        novel = (" (far from every known dataset: warm start backs off to what works across "
                 "the whole KB)" if g["novel"] else "")
        near = ", ".join(f"{n['name']} ({n['similarity']:.2f})" for n in g["neighbours"][:3])
        return (f"knowledge base: {where}{novel}; nearest: {near or '-'}; backbone "
                f"{self.backbone.get('name')} ({self.backbone.get('why')}); warm start "
                f"{self.mode}: {self.points} prior points, {self.history} prior trials")


def plan(store, embedding, space: SearchSpace, mode: str) -> tuple[SearchSpace, Any, WarmStart]:
    """Match ``embedding`` and derive the space (backbone chosen) and the priors to apply."""
    from knowledge_base import priors as make_priors

    if mode not in WARM_START_MODES:
        raise InputError(f"warm_start: expected one of {list(WARM_START_MODES)}, got {mode!r}")
    if not store.datasets():
        return space, None, WarmStart("none", backbone={"name": space.default["backbone"],
                                                        "why": "default; empty knowledge base"})
    m = store.match(embedding)
    choice = make_priors(m, store, space).backbone
    options = space.param("backbone").options
    if mode == "none":  # a cold search: the KB is matched and reported, never applied
        why = "default; warm start off"
    elif choice.name in options and choice.confident and not m.novel:
        space = space.fix(backbone=choice.name)
        why = f"{choice.reason}; estimated rank on the group: " + ", ".join(
            f"{k} {v.mean:.3f} ({v.count} trials)" for k, v in choice.evidence.items())
    else:
        why = "default; " + ("unseen domain" if m.novel else "not enough evidence")
    p = make_priors(m, store, space)
    # Far from everything: the KB-wide points still transfer, the neighbours' history does not.
    applied = ("points" if m.novel else "points+history") if mode == "auto" else mode
    best = m.best_group
    group = {"group_id": best.group_id if best else None,
             "distance": float(best.distance) if best else float("nan"), "novel": m.novel,
             "neighbours": [{"name": n.name, "distance": n.distance, "similarity": n.similarity}
                            for n in m.neighbours]}
    return space, p, WarmStart(applied, group, {"name": space.default["backbone"], "why": why})


def apply(study: Study, p, warm: WarmStart) -> None:
    """Enqueue prior points and hand prior trials to the sampler, as ``warm.mode`` says."""
    if p is None or warm.mode == "none":
        return
    if warm.mode in ("points", "points+history"):
        for point in p.points:
            if study.space.contains({**study.space.default, **point.config}):
                study.enqueue(point.config, origin=point.source)
                warm.points += 1
    if warm.mode in ("history", "points+history"):
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
    return {"mode": warm.mode, "group": warm.group, "backbone": warm.backbone,
            "points": points, "history": history}


def from_dict(data: dict[str, Any]) -> tuple[WarmStart, SavedPriors]:
    from transfer_automl.trial import Observation

    warm = WarmStart(data["mode"], data.get("group"), data.get("backbone", {}))
    priors = SavedPriors(tuple(SavedPoint(p["config"], p["source"]) for p in data["points"]),
                         tuple(Observation(h["config"], h["score"]) for h in data["history"]))
    return warm, priors


def record_child(store, run_id: str, spec, result) -> None:
    """Add a trial created after its run (a retune) to the run's record in the KB, then
    close the store. A run the KB never saw is logged and skipped, like any KB write error."""
    from knowledge_base import trial_record

    try:
        store.record_trial(run_id, trial_record(spec, result))
    except Exception as exc:  # the trial is journalled in the run either way
        log.warning("knowledge base: could not record %s of run %s: %s", spec.trial_id,
                    run_id, exc)
    finally:
        store.close()


class Recorder:
    """Journals each finished trial in the run directory and writes the run and its trials to
    the knowledge base as events arrive, then forwards the events.

    Trials go to the knowledge base when they start (status running) and again when they
    finish, so a run killed midway leaves an accurate record. Knowledge-base write errors are
    logged, never allowed to end the search.
    """

    def __init__(self, store, data, embedding, files, study: Study, forward=None,
                 elapsed_offset: float = 0.0) -> None:
        self.store, self.files, self.forward = store, files, forward
        self.run_id, self.offset = files.run_id, elapsed_offset
        if store is not None:
            self._start_run(data, embedding, study)

    def _start_run(self, data, embedding, study: Study) -> None:
        from transfer_automl.embedding import meta_features

        if embedding is None:  # resumed: the dataset was stored when the run began
            known = [d.id for d in self.store.datasets() if d.fingerprint == data.fingerprint]
            if not known:
                log.warning("knowledge base: dataset of run %s not found; not recording",
                            self.run_id)
                self.store = None
                return
            self.dataset_id = known[0]
        else:
            name = Path(data.report.source).name or "dataset"
            self.dataset_id = self.store.add_dataset(name, data.fingerprint, embedding,
                                                     meta_features(data), data.report.to_dict())
        self.store.start_run(self.run_id, self.dataset_id,
                             {"space": list(study.space.names), "seed": study.seed})

    def __call__(self, event) -> None:
        if event.kind == "finished":
            self.files.append(event.trial.spec, event.trial.result, self.offset + event.elapsed)
        if self.store is not None and event.trial is not None and event.kind != "epoch":
            from knowledge_base import trial_record

            try:
                self.store.record_trial(self.run_id, trial_record(event.trial.spec,
                                                                  event.trial.result))
            except Exception as exc:  # the search matters more than its record
                log.warning("knowledge base: could not record %s: %s",
                            event.trial.spec.trial_id, exc)
        if self.forward is not None:
            self.forward(event)

    def close(self, status: str, result=None) -> None:
        if self.store is None:
            return
        best = None
        if result is not None:
            best = next((row["trial"] for row in result.leaderboard
                         if row["score"] == result.best_score), None)
        try:
            self.store.finish_run(self.run_id, status, best)
        finally:
            self.store.close()
