"""The transfer replay's goal figures: leave-one-dataset-out and leave-one-domain-out, repeated.

For each held-out dataset and repetition, a method learns from the other datasets (for
leave-one-domain-out, only those of other domains), each repetition from a random 80% of them
(which datasets a knowledge base happens to hold is itself a draw). Two figures per method:

- **time to target**: the recorded trial seconds the method's order needs to reach the best
  score a random order reaches, on average, within ``B`` seconds, as a fraction of ``B``
  (above 1 when it never gets there within ``B``);
- **best@3 against cold**: whether its best of the first three trials is at least what a cold
  search gets from its first three (the default configuration first, then random: the
  expectation over random orders).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks import _replay_methods as rm

#: Domains of the shared datasets (their README's domain column), for leave-one-domain-out; a
#: dataset not listed is a domain of its own.
DOMAINS = {
    "cats_dogs": "natural objects", "flowers12": "natural objects", "food10": "natural objects",
    "monkey_species10": "natural objects", "clothing10": "products",
    "dtd_textures10": "textures and surfaces", "neu_steel_defects": "textures and surfaces",
    "brick_wall_cracks": "textures and surfaces", "elpv_solar_cells": "textures and surfaces",
    "brain_tumor_mri": "medical", "busi_breast_ultrasound": "medical",
    "isic_skin_lesions8": "medical", "bccd_wbc3": "medical",
    "rsscn7_aerial": "aerial", "plant_seedlings12": "aerial",
    "sign_language_digits": "gestures and signs", "gtsrb_signs10": "gestures and signs",
}


def domain(name: str) -> str:
    return DOMAINS.get(name, name)


def learned_ranker(meta: rm.Meta, query: np.ndarray) -> list[int]:
    """A ranker learned over (dataset embedding, configuration), in the spirit of ZAP: a
    random forest predicts a configuration's normalised score on a dataset from the dataset's
    embedding and the configuration's identity; configurations by predicted score."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import RandomForestRegressor

    n_data, n_conf = meta.scores.shape
    norm = rm.normalised(meta.scores)
    onehot = np.eye(n_conf)
    # the embeddings have thousands of dimensions and the meta-dataset a dozen datasets: the
    # forest sees their first few principal components (fitted on the known datasets)
    pca = PCA(n_components=min(6, n_data - 1)).fit(meta.embeddings)
    known, asked = pca.transform(meta.embeddings), pca.transform(query[None, :])[0]
    x = np.array([np.concatenate([known[d], onehot[c]])
                  for d in range(n_data) for c in range(n_conf)])
    y = norm.reshape(-1)
    forest = RandomForestRegressor(n_estimators=50, min_samples_leaf=2, max_features=0.5,
                                   random_state=0, n_jobs=1).fit(x, y)
    query_rows = np.array([np.concatenate([asked, onehot[c]]) for c in range(n_conf)])
    return list(np.argsort(-forest.predict(query_rows), kind="stable"))


def _best_within(scores, costs, order, budget: float) -> float:
    spent = np.cumsum(costs[list(order)])
    found = np.maximum.accumulate(scores[list(order)])
    return float(found[spent <= budget][-1]) if (spent <= budget).any() else 0.0


def _time_to(scores, costs, order, target: float) -> float:
    found = np.maximum.accumulate(scores[list(order)])
    spent = np.cumsum(costs[list(order)])
    reached = np.nonzero(found >= target - 1e-12)[0]
    return float(spent[reached[0]]) if len(reached) else float(spent[-1])


def goal_figures(meta: rm.Meta, methods: dict[str, Callable], budget: float = 600.0,
                 repetitions: int = 20, permutations: int = 200, share: float = 0.8,
                 default: int = 0) -> dict[str, dict[str, dict[str, float]]]:
    """``{protocol: {method: {"time_median", "best3_share", "pairs"}}}`` for
    ``leave-one-dataset-out`` and ``leave-one-domain-out``."""
    n, n_conf = len(meta.datasets), len(meta.configs)
    out: dict[str, dict[str, dict[str, float]]] = {}
    cold_orders = {i: rm.random_orders(n_conf, permutations, seed=i, first=default)
                   for i in range(n)}
    random_orders = {i: rm.random_orders(n_conf, permutations, seed=1000 + i) for i in range(n)}
    target = {i: np.mean([_best_within(meta.scores[i], meta.costs[i], o, budget)
                          for o in random_orders[i]]) for i in range(n)}
    cold3 = {i: np.mean([np.max(meta.scores[i][o[:3]]) for o in cold_orders[i]])
             for i in range(n)}
    for protocol in ("leave-one-dataset-out", "leave-one-domain-out"):
        times: dict[str, list[list[float]]] = {m: [[] for _ in range(n)] for m in methods}
        wins: dict[str, list[bool]] = {m: [] for m in methods}
        rng = np.random.default_rng(7)
        for rep in range(repetitions):
            for i in range(n):
                others = [j for j in range(n) if j != i and (
                    protocol == "leave-one-dataset-out"
                    or domain(meta.datasets[j]) != domain(meta.datasets[i]))]
                if len(others) < 2:
                    continue
                size = max(2, int(round(share * len(others))))
                keep = sorted(rng.choice(others, size, replace=False))
                learn = meta.without(i, keep)
                for name, method in methods.items():
                    order = method(learn, meta.embeddings[i])
                    times[name][i].append(_time_to(meta.scores[i], meta.costs[i], order,
                                                   target[i]) / budget)
                    wins[name].append(float(np.max(meta.scores[i][order[:3]]))
                                      >= cold3[i] - 1e-12)
        out[protocol] = {
            name: {"time_median": float(np.median([np.median(t) for t in times[name] if t])),
                   "best3_share": float(np.mean(wins[name])) if wins[name] else float("nan"),
                   "pairs": float(len(wins[name]))}
            for name in methods}
    return out


def kb_size_times(meta: rm.Meta, method: Callable, budget: float = 600.0,
                  subsets: int = 20, permutations: int = 200) -> list[tuple[int, float, float]]:
    """(KB size m, median and mean time-to-target / B) when the method learns from only ``m``
    random other datasets, leave-one-dataset-out, ``subsets`` draws per size."""
    n, n_conf = len(meta.datasets), len(meta.configs)
    target = {i: np.mean([_best_within(meta.scores[i], meta.costs[i], o, budget)
                          for o in rm.random_orders(n_conf, permutations, seed=1000 + i)])
              for i in range(n)}
    rng = np.random.default_rng(0)
    rows = []
    for m in sorted({s for s in (1, 2, 4, 8, 12, n - 1) if 1 <= s <= n - 1}):
        values = []
        for _ in range(subsets if m < n - 1 else 1):
            for i in range(n):
                keep = list(rng.choice([j for j in range(n) if j != i], m, replace=False))
                order = method(meta.without(i, keep), meta.embeddings[i])
                values.append(_time_to(meta.scores[i], meta.costs[i], order, target[i]) / budget)
        rows.append((m, float(np.median(values)), float(np.mean(values))))
    return rows


def plot_kb_size(rows: list[tuple[int, float, float]], path, method: str) -> None:
    """The KB-size curve as a PNG."""
    from transfer_automl.history import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    sizes = [r[0] for r in rows]
    ax.plot(sizes, [r[1] for r in rows], marker="o", label="median")
    ax.plot(sizes, [r[2] for r in rows], marker="s", linestyle="--", label="mean")
    ax.axhline(0.25, color="#9e9e9e", linewidth=1, linestyle=":", label="goal 0.25 B")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("datasets in the knowledge base")
    ax.set_ylabel("time to random's best at B, / B")
    ax.set_title(f"Knowledge-base size: {method}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
