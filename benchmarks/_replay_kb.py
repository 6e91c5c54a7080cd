"""The product's own warm start as a replay method: a temporary knowledge base holding the
learning datasets' recorded portfolio trials, matched and turned into prior points exactly as
``fit_auto`` does (``knowledge_base.priors``)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from benchmarks._replay_methods import Meta


class KnowledgeBasePriors:
    """``method(meta, query) -> order``: the KB's prior points first (as many as it ranks),
    then the rest in portfolio order."""

    def __init__(self) -> None:
        from transfer_automl.portfolio import portfolio

        self.configs = {e.config_id: e.config for e in portfolio()}

    def __call__(self, meta: Meta, query: np.ndarray) -> list[int]:
        from knowledge_base import KnowledgeBase, priors
        from transfer_automl.space import default_space

        space = default_space(("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"))
        key = {json.dumps(self.configs[c], sort_keys=True): i for i, c in enumerate(meta.configs)}
        with tempfile.TemporaryDirectory() as tmp, KnowledgeBase(Path(tmp) / "kb.sqlite") as kb:
            for d, name in enumerate(meta.datasets):
                dataset_id = kb.add_dataset(name, f"replay-{name}", meta.embeddings[d])
                kb.start_run(f"run-{name}", dataset_id)
                for c, config_id in enumerate(meta.configs):
                    kb.record_trial(f"run-{name}", {
                        "trial_id": config_id, "number": c, "config": self.configs[config_id],
                        "status": "complete", "score": float(meta.scores[d, c]),
                        "cost": float(meta.costs[d, c])})
                kb.finish_run(f"run-{name}")
            found = priors(kb.match(query), kb, space, n_points=len(meta.configs))
        order = []
        for point in found.points:
            index = key.get(json.dumps(dict(point.config), sort_keys=True))
            if index is not None and index not in order:
                order.append(index)
        return order + [c for c in range(len(meta.configs)) if c not in order]
