"""A run's history as pictures: the lineage tree of its trials, learning curves, best so far
against trials and time, and which hyperparameters mattered.

Everything is read from the run's journal (``trials.jsonl``), so it works for finished,
interrupted and resumed runs alike, with or without a knowledge base.

Lineage: a trial hangs under the trial it descends from (``spec.parent``: the promoted trial
a fine-tuning trial keeps the head of, the trial a retune continues from); a configuration
taken from the knowledge base hangs under a node for the dataset it came from; everything
else hangs under the run itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from transfer_automl.run import RunFiles
from transfer_automl.trial import TrialResult, TrialSpec

ROOT = "run"
STATE_COLOURS = {"complete": "#2e7d32", "pruned": "#f9a825", "failed": "#c62828",
                 "running": "#757575"}


_SHORT = {"learning_rate": "lr", "weight_decay": "wd", "epochs_left": "epochs left"}


def tunings(result: TrialResult) -> list[dict]:
    """The live changes a trial applied, in order: ``epoch`` (the first epoch they held),
    ``changes``, ``checkpoint`` (the weights just before), ``ignored``."""
    return [t for t in (result.extra or {}).get("tunings", ()) if t.get("changes")]


@dataclass
class Node:
    """One box of the tree: the run, a knowledge-base source, or a trial."""

    key: str
    label: str
    parent: str | None
    kind: str  # "run" | "prior" | "trial" | "tuning" (a live change: a branch of its trial)
    state: str = ""
    children: list[str] = field(default_factory=list)


@dataclass
class RunHistory:
    """A run's finished trials in journal order, with the search time at which each ended."""

    run_id: str
    entries: list[tuple[TrialSpec, TrialResult, float]]

    @classmethod
    def load(cls, files: RunFiles) -> "RunHistory":
        return cls(files.run_id, files.timed_journal())

    def tree(self) -> dict[str, Node]:
        """The lineage tree, keyed by node; every trial appears exactly once."""
        nodes = {ROOT: Node(ROOT, f"run {self.run_id}", None, "run")}
        ids = {spec.trial_id for spec, _, _ in self.entries}
        for spec, result, _ in self.entries:
            parent = ROOT
            if spec.parent and spec.parent in ids:
                parent = spec.parent
            elif str(spec.origin).startswith("kb:"):
                source = str(spec.origin)[3:].split("/")[0]
                parent = f"kb:{source}"
                if parent not in nodes:
                    nodes[parent] = Node(parent, f"KB: {source}", ROOT, "prior")
                    nodes[ROOT].children.append(parent)
            score = f"{result.score:.3f}" if result.score is not None else "-"
            nodes[spec.trial_id] = Node(spec.trial_id, f"{spec.trial_id}\n{score}", parent,
                                        "trial", result.state.value)
        for spec, _, _ in self.entries:  # children after all nodes exist (order-independent)
            node = nodes[spec.trial_id]
            nodes[node.parent].children.append(spec.trial_id)
        for spec, result, _ in self.entries:
            parent = spec.trial_id
            for number, tuning in enumerate(tunings(result), start=1):
                key = f"{spec.trial_id}@{number}"
                changes = ", ".join(f"{_SHORT.get(k, k)}={v:g}"
                                    for k, v in tuning["changes"].items())
                nodes[key] = Node(key, f"{spec.trial_id} epoch {tuning['epoch']}\n{changes}",
                                  parent, "tuning", result.state.value)
                nodes[parent].children.append(key)
                parent = key  # the next change branches from this one
        return nodes

    def best_so_far(self) -> list[tuple[int, float, float]]:
        """(trial count, search seconds, best score so far) after each scored trial."""
        out, best = [], -math.inf
        ordered = sorted(self.entries, key=lambda e: e[2])
        for count, (_, result, elapsed) in enumerate(ordered, start=1):
            if result.score is not None:
                best = max(best, result.score)
            if best > -math.inf:
                out.append((count, elapsed, best))
        return out

    def importance(self) -> dict[str, float]:
        """How much each hyperparameter explains the scores: impurity importance of a random
        forest fitted to (configuration -> score) over the scored trials, summed over a
        parameter's encoded columns and normalised to 1. Empty with fewer than 5 scored
        trials or no variation (nothing to explain)."""
        import numpy as np
        from sklearn.ensemble import RandomForestRegressor

        from transfer_automl.space import is_active

        scored = [(s.config, r.score) for s, r, _ in self.entries if r.score is not None]
        if len(scored) < 5 or len({y for _, y in scored}) < 2:
            return {}
        names = sorted({k for config, _ in scored for k in config})
        columns, owners = [], []
        for name in names:
            values = [c.get(name) if is_active(name, c) else None for c, _ in scored]
            if len({repr(v) for v in values}) < 2:
                continue
            if all(isinstance(v, (int, float)) and not isinstance(v, bool)
                   for v in values if v is not None):
                columns.append([float(v) if v is not None else -1.0 for v in values])
                owners.append(name)
            else:
                for option in sorted({repr(v) for v in values}):
                    columns.append([float(repr(v) == option) for v in values])
                    owners.append(name)
        if not columns:
            return {}
        x = np.array(columns).T
        y = np.array([score for _, score in scored])
        forest = RandomForestRegressor(n_estimators=200, random_state=0).fit(x, y)
        totals: dict[str, float] = {}
        for owner, weight in zip(owners, forest.feature_importances_):
            totals[owner] = totals.get(owner, 0.0) + float(weight)
        total = sum(totals.values()) or 1.0
        return dict(sorted(((k, v / total) for k, v in totals.items()), key=lambda kv: -kv[1]))


def _layout(nodes: dict[str, Node]) -> dict[str, tuple[float, float]]:
    """Leaves left to right in order, parents centred over their children, depth downwards."""
    positions: dict[str, tuple[float, float]] = {}
    next_x = [0.0]

    def place(key: str, depth: int) -> float:
        children = nodes[key].children
        if not children:
            x = next_x[0]
            next_x[0] += 1.0
        else:
            xs = [place(child, depth + 1) for child in children]
            x = (min(xs) + max(xs)) / 2
        positions[key] = (x, -float(depth))
        return x

    place(ROOT, 0)
    return positions


def draw_tree(history: RunHistory, out_dir: Path) -> list[Path]:
    """The lineage tree as ``tree.png`` and ``tree.svg``; returns the paths."""
    plt = pyplot()
    nodes = history.tree()
    pos = _layout(nodes)
    width = max(x for x, _ in pos.values()) + 1
    depth = -min(y for _, y in pos.values()) + 1
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * width), max(3.0, 1.3 * depth)))
    for key, node in nodes.items():
        if node.parent is not None:
            (x0, y0), (x1, y1) = pos[node.parent], pos[key]
            ax.plot([x0, x1], [y0, y1], color="#9e9e9e", linewidth=1, zorder=1)
    for key, node in nodes.items():
        x, y = pos[key]
        colour = {"run": "#1565c0", "prior": "#6a1b9a", "tuning": "#00838f"}.get(
            node.kind, STATE_COLOURS.get(node.state, "#757575"))
        ax.text(x, y, node.label, ha="center", va="center", fontsize=8, color="white",
                zorder=2, bbox={"boxstyle": "round,pad=0.4", "facecolor": colour,
                                "edgecolor": "none"})
    ax.set_xlim(-0.8, width - 0.2)
    ax.set_ylim(-depth + 0.4, 0.6)
    ax.axis("off")
    ax.set_title(f"Run {history.run_id}: trial lineage (green complete, amber pruned, "
                 f"red failed)", fontsize=9)
    return save_figure(fig, out_dir / "tree", ("png", "svg"))


def draw_curves(history: RunHistory, out_dir: Path) -> list[Path]:
    """Validation accuracy per epoch of every trial (``curves.png``)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for spec, result, _ in history.entries:
        if not result.history:
            continue
        epochs = [m.epoch for m in result.history]
        acc = [m.val_accuracy for m in result.history]
        style = "o-" if len(epochs) == 1 else "-"
        ax.plot(epochs, acc, style, color=STATE_COLOURS.get(result.state.value, "#757575"),
                alpha=0.8, linewidth=1)
        ax.annotate(spec.trial_id, (epochs[-1], acc[-1]), fontsize=6)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Learning curves", fontsize=9)
    return save_figure(fig, out_dir / "curves", ("png",))


def draw_anytime(history: RunHistory, out_dir: Path) -> list[Path]:
    """Best validation accuracy so far against trials and against search time."""
    plt = pyplot()
    points = history.best_so_far()
    fig, (by_trial, by_time) = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    if points:
        counts, seconds, best = zip(*points)
        by_trial.step(counts, best, where="post", color="#1565c0")
        by_time.step(seconds, best, where="post", color="#1565c0")
    by_trial.set_xlabel("trials finished")
    by_time.set_xlabel("search seconds")
    by_trial.set_ylabel("best validation accuracy")
    fig.suptitle("Best so far", fontsize=9)
    return save_figure(fig, out_dir / "best_so_far", ("png",))


def draw_importance(history: RunHistory, out_dir: Path) -> list[Path]:
    """Hyperparameter importance as a bar chart (``importance.png``), when computable."""
    weights = history.importance()
    if not weights:
        return []
    plt = pyplot()
    names = list(weights)[:12][::-1]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(names) + 1.2))
    ax.barh(names, [weights[n] for n in names], color="#1565c0")
    ax.set_xlabel("share of explained score variation (random-forest importance)")
    ax.set_title("Hyperparameter importance", fontsize=9)
    return save_figure(fig, out_dir / "importance", ("png",))


def write_history(files: RunFiles, out_dir: Path | None = None) -> tuple[RunHistory, list[Path]]:
    """Every picture of a run, into ``out_dir`` (default: the run's ``history/`` folder)."""
    history = RunHistory.load(files)
    out = Path(out_dir) if out_dir is not None else files.run_dir / "history"
    out.mkdir(parents=True, exist_ok=True)
    paths = (draw_tree(history, out) + draw_curves(history, out) + draw_anytime(history, out)
             + draw_importance(history, out))
    return history, paths


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed, none opened
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, stem: Path, formats: Sequence[str]) -> list[Path]:
    import matplotlib.pyplot as plt

    paths = []
    fig.tight_layout()
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=120 if fmt == "png" else None)
        paths.append(path)
    plt.close(fig)
    return paths
