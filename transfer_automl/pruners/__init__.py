"""Pruners stop unpromising trials from their learning curves, on the driver."""

from transfer_automl.pruners._rules import AnyPruner, ASHAPruner, CurvePruner, MedianPruner
from transfer_automl.pruners.base import Pruner, value_at

__all__ = ["Pruner", "MedianPruner", "ASHAPruner", "CurvePruner", "AnyPruner", "value_at",
           "default_pruner"]


def default_pruner() -> Pruner:
    """The curve judge plus the median rule: what ``fit_auto`` uses unless told otherwise."""
    return AnyPruner(CurvePruner(patience=6), MedianPruner(min_epochs=5))
