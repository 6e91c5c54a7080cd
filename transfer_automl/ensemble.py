"""Ensembles of a search's trials, chosen by greedy selection with replacement.

Every trial keeps the class probabilities it predicted for its held-out images at its best
epoch (out-of-fold under cross-validation, the validation split otherwise; see
``trial.HELDOUT_FILE``). From those, :func:`select` builds a weighted average of trials the
way Caruana et al. (2004) do and auto-sklearn and AutoGluon after them: start empty, and
repeatedly add (with replacement) the trial that makes the average most accurate on the held-out
images; keep the best prefix. A trial picked three times weighs three times as much.

No model is retrained to choose an ensemble, and no test image is seen: the choice rests on
predictions the trials made anyway. The ensemble's held-out accuracy is measured on the same
predictions it was chosen on, so it is optimistic by a little; the test score, on images no
trial saw, is the honest figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transfer_automl.space import fused_backbones
from transfer_automl.trial import HELDOUT_FILE

EPS = 1e-7


@dataclass(frozen=True)
class Candidate:
    """A finished trial's held-out predictions.

    Attributes:
        trial_id: the trial.
        config: its configuration.
        rows: positions of its held-out images among training + validation images.
        proba: its class probabilities for those images, ``[len(rows), n_classes]``.
    """

    trial_id: str
    config: dict[str, Any]
    rows: np.ndarray
    proba: np.ndarray


@dataclass(frozen=True)
class Ensemble:
    """A weighted average of trials.

    Attributes:
        weights: trial id -> weight (the weights sum to 1), heaviest first.
        accuracy: held-out accuracy of the average, on the images every member predicted.
        single_accuracy: the best single member's accuracy on those same images.
        n_images: how many held-out images the choice rests on.
        passes: backbone forward passes per image the exported ensemble runs.
    """

    weights: dict[str, float]
    accuracy: float
    single_accuracy: float
    n_images: int
    passes: int

    @property
    def members(self) -> list[str]:
        return list(self.weights)

    def describe(self) -> str:
        parts = ", ".join(f"{t} x{w:.2f}" for t, w in self.weights.items())
        return (f"ensemble of {len(self.weights)} trials ({parts}): held-out accuracy "
                f"{self.accuracy:.4f} against {self.single_accuracy:.4f} for the best single "
                f"trial on the same {self.n_images} images, {self.passes} backbone "
                f"pass{'es' if self.passes > 1 else ''} per image")

    def to_dict(self) -> dict[str, Any]:
        return {"weights": dict(self.weights), "accuracy": self.accuracy,
                "single_accuracy": self.single_accuracy, "n_images": self.n_images,
                "passes": self.passes}


def forward_pass(config: dict[str, Any], trial_id: str) -> tuple:
    """Which backbone forward passes a member needs: members with a frozen backbone at one
    resolution share one; a member that fine-tuned blocks needs its own, and a member on
    fused features one per backbone it reads."""
    fused = fused_backbones(config)
    if fused:
        return ("fused", trial_id, len(fused))
    if config["unfrozen_blocks"] == 0:
        return (config["backbone"], config["resolution"])
    return (config["backbone"], config["resolution"], trial_id)


def pass_count(keys) -> int:
    """Backbone forward passes per image of members with these :func:`forward_pass` keys."""
    return sum(key[2] if key[0] == "fused" else 1 for key in set(keys))


def load_candidates(records: Sequence, limit: int) -> list[Candidate]:
    """The held-out predictions of the ``limit`` best completed trials that kept them."""
    scored = sorted((r for r in records if r.result is not None and r.result.score is not None
                     and r.result.artifact and r.state.value == "complete"),
                    key=lambda r: (-r.result.score, r.spec.number))
    out = []
    for record in scored:
        path = Path(record.result.artifact).parent / HELDOUT_FILE
        if not path.is_file():
            continue
        with np.load(path) as held:
            out.append(Candidate(record.spec.trial_id, dict(record.spec.config),
                                 held["rows"], held["proba"]))
        if len(out) == limit:
            break
    return out


def select(candidates: Sequence[Candidate], labels: np.ndarray, *, rounds: int = 25,
           max_passes: int = 2) -> Ensemble | None:
    """Greedy ensemble selection with replacement over ``candidates``.

    Args:
        candidates: trials with held-out predictions, best first.
        labels: the labels of training + validation images (what ``rows`` index).
        rounds: members added at most (counting repeats).
        max_passes: backbone forward passes per image the ensemble may need; a candidate
            that would exceed it is not added. Bounds the exported model's latency.

    Returns:
        The best ensemble found, or None when fewer than two candidates share held-out
        images (nothing to average).

    The choice rests on the best candidate's held-out images: every image under
    cross-validation, the validation split otherwise. Candidates that did not predict all
    of those images are left out, so a cross-validated best trial is combined on several
    times more images than the validation split alone would give.
    """
    common = np.unique(candidates[0].rows) if candidates else np.zeros(0, int)
    candidates = [c for c in candidates if np.isin(common, c.rows).all()]
    if len(candidates) < 2 or rounds < 2 or len(common) == 0:
        return None
    y = np.asarray(labels)[common]
    probs = np.stack([_aligned(c, common) for c in candidates])  # [candidates, rows, classes]
    passes = [forward_pass(c.config, c.trial_id) for c in candidates]
    singles = [_score(p, y) for p in probs]
    counts = np.zeros(len(candidates), dtype=int)
    total = np.zeros_like(probs[0])
    best_key, best_counts = None, None
    for _ in range(rounds):
        used = {passes[i] for i in np.flatnonzero(counts)}
        options = [i for i in range(len(candidates))
                   if pass_count(used | {passes[i]}) <= max_passes]
        if not options:
            break
        n = counts.sum() + 1
        keys = [_score((total + probs[i]) / n, y) for i in options]
        pick = options[_rank(keys)]
        counts[pick] += 1
        total += probs[pick]
        key = _score(total / counts.sum(), y)
        if best_key is None or key > best_key:
            best_key, best_counts = key, counts.copy()
    if np.count_nonzero(best_counts) < 2:
        return None  # the best average is one trial: the single model already is that
    order = sorted(np.flatnonzero(best_counts), key=lambda i: (-best_counts[i], i))
    weights = {candidates[i].trial_id: float(best_counts[i] / best_counts.sum()) for i in order}
    return Ensemble(weights, float(best_key[0]), float(max(s[0] for s in singles)),
                    int(len(common)), pass_count(passes[i] for i in order))


def _aligned(candidate: Candidate, rows: np.ndarray) -> np.ndarray:
    position = {int(r): i for i, r in enumerate(candidate.rows)}
    return candidate.proba[[position[int(r)] for r in rows]].astype(np.float64)


def _score(proba: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(accuracy, -log loss): accuracy decides, the log loss breaks its many ties."""
    accuracy = float(np.mean(proba.argmax(axis=1) == y))
    log_loss = float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], EPS, 1.0))))
    return accuracy, -log_loss


def _rank(keys: list[tuple[float, float]]) -> int:
    return max(range(len(keys)), key=lambda i: keys[i])
