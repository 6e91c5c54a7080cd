"""Planning a search from the knowledge base: open it, match the dataset, choose the
backbone and the warm start.

:func:`plan` reads the knowledge base; :mod:`transfer_automl.seeding` then applies the plan to
a study, and :mod:`transfer_automl.tracking.recorder` writes the run back.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from transfer_automl.errors import InputError
from transfer_automl.options import WarmStartMode
from transfer_automl.space import SearchSpace

log = logging.getLogger(__name__)

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
            counts = seed_if_empty(store)
            log.info("new knowledge base %s seeded with %s", path, counts)
        return store
    if isinstance(kb, (str, os.PathLike)):
        return KnowledgeBase(kb, create=create).check()
    raise InputError(f"kb: expected None, False, a path or a SQLAlchemy URL, got {kb!r}")


def seed_if_empty(store) -> dict[str, int] | None:
    """Fill a knowledge base that holds no dataset from the seed shipped in the package;
    returns what was imported (None if nothing was)."""
    seed = resources.files("knowledge_base").joinpath(SEED_KB)
    if store.datasets() or not seed.is_file():
        return None
    with resources.as_file(seed) as seed_path:
        return store.import_json(seed_path)


@dataclass
class WarmStart:
    """What the knowledge base contributed to one search.

    Attributes:
        mode: the warm-start mode actually applied (``auto`` resolves to one of the others).
        group: matched group, distance, neighbours and novelty, for the result and the CLI.
        backbone: the backbone chosen for the search and why.
        points: prior configurations enqueued first.
        history: number of neighbour trials given to TPE.
        kb: whether the search had a knowledge base at all (``kb=False``: it had none).
        source: where the prior points came from: ``"trials"`` (the nearest datasets'
            searches) or a phrase naming the portfolio meta-dataset.
    """

    mode: WarmStartMode
    group: dict[str, Any] | None = None
    backbone: dict[str, Any] = field(default_factory=dict)
    points: int = 0
    history: int = 0
    kb: bool = True
    source: str = "trials"

    def describe(self) -> str:
        if not self.kb:
            return "no knowledge base (kb=False): searching from scratch"
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
                f"{self.mode.value}: {self.points} prior points"
                + (f" ({self.source})" if self.source != "trials" else "")
                + f", {self.history} prior trials")


def plan(store, embedding, space: SearchSpace,
         mode: WarmStartMode) -> tuple[SearchSpace, Any, WarmStart]:
    """Match ``embedding`` and derive the space (backbone chosen) and the priors to apply."""
    from knowledge_base import priors as make_priors

    mode = WarmStartMode.parse(mode)
    if not store.datasets():
        return space, None, WarmStart(WarmStartMode.NONE, backbone={"name": space.default["backbone"],
                                                        "why": "default; empty knowledge base"})
    m = store.match(embedding)
    choice = make_priors(m, store, space).backbone
    options = space.param("backbone").options
    if mode is WarmStartMode.NONE:  # a cold search: the KB is matched and reported, never applied
        why = "default; warm start off"
    elif choice.name in options and choice.confident and not m.novel:
        space = space.fix(backbone=choice.name)
        why = f"{choice.reason}; estimated rank on the group: " + ", ".join(
            f"{k} {v.mean:.3f} ({v.count} trials)" for k, v in choice.evidence.items())
    else:
        why = "default; " + ("unseen domain" if m.novel else "not enough evidence")
    p = make_priors(m, store, space)
    # Far from everything: the KB-wide points still transfer, the neighbours' history does not.
    applied, source = mode, "trials"
    if mode is WarmStartMode.AUTO:
        applied = WarmStartMode.POINTS if m.novel else WarmStartMode.POINTS_HISTORY
        p, source = _from_portfolio(store, embedding, space, p)
    best = m.best_group
    group = {"group_id": best.group_id if best else None,
             "distance": float(best.distance) if best else float("nan"), "novel": m.novel,
             "neighbours": [{"name": n.name, "distance": n.distance, "similarity": n.similarity}
                            for n in m.neighbours]}
    return space, p, WarmStart(applied, group, {"name": space.default["backbone"], "why": why},
                               source=source)


def _from_portfolio(store, embedding, space: SearchSpace, p):
    """``warm_start="auto"``: what the transfer replay picked, the similarity-weighted greedy
    portfolio over the meta-dataset, for the prior points, and its nearest datasets' rows
    ahead of the neighbours' trials for TPE; the trial-based priors where the meta-dataset
    knows too little. Returns the priors and a phrase saying which."""
    from knowledge_base.portfolio_priors import portfolio_priors

    found = portfolio_priors(store, embedding, space, n_points=max(3, len(p.points)))
    if found is None or not found.points:
        return p, "trials"
    phrase = (f"similarity-greedy portfolio over {len(found.datasets)} datasets of the "
              f"meta-dataset, nearest {', '.join(found.datasets[:2])}")
    return replace(p, points=found.points, history=found.history + tuple(p.history)), phrase
