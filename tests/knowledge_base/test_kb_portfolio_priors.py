"""Warm-start priors from the portfolio meta-dataset: the similarity-weighted greedy portfolio
(what the transfer replay picked) and TPE history from the nearest datasets."""

import numpy as np
import pytest

from knowledge_base import KnowledgeBase
from knowledge_base.portfolio_priors import greedy_order, portfolio_priors
from transfer_automl.space import default_space

SPACE = default_space()
# three configurations of the space: the default, a weaker decay, an MLP head
CONFIGS = {"lin": SPACE.default,
           "lin-wd": {**SPACE.default, "weight_decay": 1e-3},
           "mlp": {**SPACE.default, "n_dense": 1, "optimizer": "adam"}}


def _kb(tmp_path, table, embeddings):
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    rows = [{"portfolio_version": 1, "config_id": cid, "config": CONFIGS[cid],
             "dataset": name, "fingerprint": f"fp-{name}", "embedding": embeddings[name],
             "state": "complete", "score": score, "wall_s": 1.0}
            for name, scores in table.items() for cid, score in scores.items()]
    kb.add_portfolio_rows(rows)
    return kb


def test_greedy_order_covers_the_datasets_best_first():
    norm = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 1.0, 0.4]])
    assert greedy_order(norm, np.ones(3)) == [1, 0, 2]  # config 1 wins two datasets
    assert greedy_order(norm, np.array([10.0, 1.0, 1.0]))[0] == 0  # a near dataset leads


def test_nearest_datasets_lead_the_portfolio_and_give_tpe_history(tmp_path):
    table = {"near": {"lin": 0.70, "lin-wd": 0.72, "mlp": 0.90},
             "far1": {"lin": 0.95, "lin-wd": 0.80, "mlp": 0.60},
             "far2": {"lin": 0.93, "lin-wd": 0.85, "mlp": 0.70}}
    embeddings = {"near": [1.0, 0.0, 0.0], "far1": [0.0, 1.0, 0.0], "far2": [0.0, 0.9, 0.1]}
    with _kb(tmp_path, table, embeddings) as kb:
        near = portfolio_priors(kb, [1.0, 0.05, 0.0], SPACE, n_points=2)
        far = portfolio_priors(kb, [0.0, 1.0, 0.05], SPACE, n_points=2)
        alone = portfolio_priors(kb, [1.0, 0.0, 0.0], SPACE, exclude={"fp-far1", "fp-far2"})
    assert near.points[0].config["n_dense"] == 1 and near.points[0].source == "kb:portfolio/mlp"
    assert far.points[0].source == "kb:portfolio/lin"
    assert near.datasets[0] == "near" and len(near.points) == 2
    # history: every nearest dataset's rows, scores normalised worst-to-best per dataset
    scores = sorted(o.score for o in near.history[:3])
    assert scores == [0.0, pytest.approx(0.1), 1.0]
    assert alone is None  # one dataset is too little to build a portfolio on


def test_points_are_configurations_of_the_search_space(tmp_path):
    table = {"a": {"lin": 0.7, "mlp": 0.9}, "b": {"lin": 0.8, "mlp": 0.9}}
    embeddings = {"a": [1.0, 0.0], "b": [0.0, 1.0]}
    space = SPACE.fix(n_dense=0)  # as when the search holds a parameter at one value
    with _kb(tmp_path, table, embeddings) as kb:
        found = portfolio_priors(kb, [1.0, 0.0], space, n_points=5)
    assert len(found.points) == 2
    assert all(space.contains(p.config) and p.config["n_dense"] == 0 for p in found.points)
