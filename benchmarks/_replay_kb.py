"""The replay and the knowledge base: the meta-dataset read from a KB (:func:`kb_table`), and
the product's own warm start as a replay method: a temporary knowledge base holding the
learning datasets' recorded portfolio trials, matched and turned into prior points exactly as
``fit_auto`` does (``knowledge_base.priors``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._replay_methods import Meta


def kb_table(kb: str | Path) -> tuple[dict[str, dict[str, tuple[float, float]]],
                                      dict[str, np.ndarray]]:
    """The portfolio build's rows in a knowledge base (a KB file or URL, or a KB export such as
    ``knowledge_base/seed_kb.json``): dataset name -> configuration id -> (score, wall
    seconds), a failed row scoring 0 as in the JSON lines; and the embeddings stored with the
    datasets. Rows searches added are left out: they ran on the searches' own splits."""
    from knowledge_base import KnowledgeBase
    from knowledge_base.meta_dataset import BUILD_SOURCE
    from transfer_automl.portfolio import PORTFOLIO_VERSION

    with tempfile.TemporaryDirectory() as tmp:
        if str(kb).endswith(".json"):  # an export: read through a KB of its own
            store = KnowledgeBase(Path(tmp) / "kb.sqlite")
            store.import_json(kb)
        else:
            store = KnowledgeBase(kb, create=False)
        with store:
            entries = [r for r in store.portfolio_rows(PORTFOLIO_VERSION)
                       if r.source == BUILD_SOURCE]
            datasets = store.portfolio_datasets()
    names = {d.fingerprint: d.name for d in datasets}
    if len(set(names.values())) < len(names):  # one name, two folders: tell them apart
        names = {fp: f"{name} ({fp[:6]})" for fp, name in names.items()}
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    for r in entries:
        score = r.score if r.state == "complete" and r.score is not None else 0.0
        rows.setdefault(names[r.fingerprint], {})[r.config_id] = (float(score), float(r.wall_s))
    if not rows:
        raise SystemExit(f"{kb}: no portfolio rows of version {PORTFOLIO_VERSION}")
    vectors = {names[d.fingerprint]: d.embedding.astype(np.float64) for d in datasets
               if d.embedding is not None}
    return rows, vectors


class KnowledgeBasePriors:
    """``method(meta, query) -> order``: what ``fit_auto(warm_start="auto")`` enqueues first,
    from a knowledge base holding the other datasets' portfolio rows (and the same rows as
    their searches' trials): the product's portfolio priors, or its nearest-trial priors
    where those find nothing; then the rest in portfolio order."""

    def __init__(self) -> None:
        from transfer_automl.portfolio import portfolio

        self.configs = {e.config_id: e.config for e in portfolio()}

    def __call__(self, meta: Meta, query: np.ndarray) -> list[int]:
        from knowledge_base import KnowledgeBase, priors
        from transfer_automl.space import default_space

        space = default_space(("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"))
        key = {json.dumps(self.configs[c], sort_keys=True): i for i, c in enumerate(meta.configs)}
        from knowledge_base.portfolio_priors import portfolio_priors

        with tempfile.TemporaryDirectory() as tmp, KnowledgeBase(Path(tmp) / "kb.sqlite") as kb:
            kb.add_portfolio_rows([
                {"portfolio_version": 1, "config_id": config_id,
                 "config": self.configs[config_id], "dataset": name,
                 "fingerprint": f"replay-{name}", "embedding": meta.embeddings[d],
                 "state": "complete", "score": float(meta.scores[d, c]),
                 "wall_s": float(meta.costs[d, c])}
                for d, name in enumerate(meta.datasets)
                for c, config_id in enumerate(meta.configs)])
            for d, name in enumerate(meta.datasets):
                dataset_id = kb.add_dataset(name, f"replay-{name}", meta.embeddings[d])
                kb.start_run(f"run-{name}", dataset_id)
                for c, config_id in enumerate(meta.configs):
                    kb.record_trial(f"run-{name}", {
                        "trial_id": config_id, "number": c, "config": self.configs[config_id],
                        "status": "complete", "score": float(meta.scores[d, c]),
                        "cost": float(meta.costs[d, c])})
                kb.finish_run(f"run-{name}")
            found = (portfolio_priors(kb, query, space, n_points=len(meta.configs))
                     or priors(kb.match(query), kb, space, n_points=len(meta.configs)))
        order = []
        for point in found.points:
            index = key.get(json.dumps(dict(point.config), sort_keys=True))
            if index is not None and index not in order:
                order.append(index)
        return order + [c for c in range(len(meta.configs)) if c not in order]
