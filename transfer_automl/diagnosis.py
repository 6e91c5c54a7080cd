"""Learning-curve diagnosis: a verdict and advice for a trial from its per-epoch metrics.

The same judge labels trials in the leaderboard and stops diverging or stalled trials early.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass

from transfer_automl.trial import EpochMetrics


class Verdict(str, enum.Enum):
    DIVERGING = "diverging"
    OVERFITTING = "overfitting"
    UNDERFITTING = "underfitting"
    CONVERGED = "converged"
    IMPROVING = "still improving"
    TOO_SHORT = "too short to tell"


ADVICE = {
    Verdict.DIVERGING: "lower the learning rate",
    Verdict.OVERFITTING: "more regularisation (dropout, weight decay, augmentation) or stop earlier",
    Verdict.UNDERFITTING: "unfreeze more blocks, a larger head, or a higher learning rate",
    Verdict.CONVERGED: "none: the curve has flattened",
    Verdict.IMPROVING: "train longer",
    Verdict.TOO_SHORT: "run more epochs to judge",
}

COLOUR = {Verdict.DIVERGING: "red", Verdict.OVERFITTING: "yellow", Verdict.UNDERFITTING: "yellow",
          Verdict.CONVERGED: "green", Verdict.IMPROVING: "green", Verdict.TOO_SHORT: "white"}


#: Why a running trial with this verdict is worth stopping now (its best epoch is kept).
STOP_BECAUSE = {Verdict.DIVERGING: "its loss is blowing up",
                Verdict.OVERFITTING: "validation stopped improving while training fits on",
                Verdict.CONVERGED: "its validation curve has flattened"}


@dataclass(frozen=True)
class Diagnosis:
    verdict: Verdict
    advice: str
    colour: str

    def __str__(self) -> str:
        return f"{self.verdict.value}: {self.advice}"

    @property
    def light(self) -> str:
        """The traffic light: ``red`` (diverging), ``amber`` (overfitting, underfitting),
        ``green`` (converged, still improving) or ``grey`` (too short to tell)."""
        return {"yellow": "amber", "white": "grey"}.get(self.colour, self.colour)

    def stop_suggestion(self) -> str | None:
        """For a running trial: why stopping it now loses nothing, or None to let it run."""
        because = STOP_BECAUSE.get(self.verdict)
        return f"stop it now: {because} (its best epoch is kept)" if because else None


def _diagnosis(verdict: Verdict) -> Diagnosis:
    return Diagnosis(verdict, ADVICE[verdict], COLOUR[verdict])


def is_diverging(epochs: Sequence[EpochMetrics], blowup: float = 3.0) -> bool:
    """Non-finite loss, or a training loss that blew up far above where it started (at any
    epoch: a curve that explodes and then crawls back down was still thrown off course)."""
    losses = [e.loss for e in epochs]
    if any(not math.isfinite(v) for v in losses + [e.val_loss for e in epochs]):
        return True
    return len(losses) >= 2 and max(losses[1:]) > blowup * max(losses[0], 1e-8)


def diagnose_trial(config, epochs: Sequence[EpochMetrics], gap: float = 0.1) -> Diagnosis:
    """The verdict for a trial: its curve, or for a head solved exactly (one "epoch", the
    optimum) the gap between training and validation accuracy at that optimum."""
    if config.get("optimizer") == "lbfgs" and len(epochs) == 1 and not is_diverging(epochs):
        e = epochs[0]
        if e.accuracy - e.val_accuracy > gap:
            return Diagnosis(Verdict.OVERFITTING, "raise weight_decay (stronger L2)",
                             COLOUR[Verdict.OVERFITTING])
        return Diagnosis(Verdict.CONVERGED, "none: solved to the optimum",
                         COLOUR[Verdict.CONVERGED])
    return diagnose(epochs)


def diagnose(epochs: Sequence[EpochMetrics], patience: int = 3, tol: float = 0.005,
             gap: float = 0.1, low_train: float = 0.7) -> Diagnosis:
    """Judge a learning curve.

    Args:
        epochs: per-epoch metrics in order.
        patience: epochs without validation improvement that count as a plateau.
        tol: improvement in validation accuracy below which an epoch does not count.
        gap: train minus validation accuracy above which a plateau means overfitting.
        low_train: training accuracy below which a plateau means underfitting.
    """
    if epochs and is_diverging(epochs):
        return _diagnosis(Verdict.DIVERGING)
    if len(epochs) < 3:
        return _diagnosis(Verdict.TOO_SHORT)
    val = [e.val_accuracy for e in epochs]
    best_at = max(range(len(val)), key=lambda i: (val[i], -i))
    plateau = len(val) - 1 - best_at >= patience or (
        len(val) > patience and max(val[-patience:]) - min(val[-patience - 1:-1]) <= tol)
    last = epochs[-1]
    val_loss = [e.val_loss for e in epochs]
    rising = val_loss[-1] > min(val_loss) * 1.1 and val_loss.index(min(val_loss)) < len(val) - 2
    if (plateau or rising) and last.accuracy - max(val) > gap:
        return _diagnosis(Verdict.OVERFITTING)
    if plateau and last.accuracy < low_train:
        return _diagnosis(Verdict.UNDERFITTING)
    if plateau:
        return _diagnosis(Verdict.CONVERGED)
    return _diagnosis(Verdict.IMPROVING)
