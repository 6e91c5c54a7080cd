"""All exceptions raised by transfer-automl.

Two families, as in KerasTuner: errors that end one trial (recorded, the search goes on)
and errors that stop everything (bad user input, a broken installation).
"""

from __future__ import annotations


class TransferAutoMLError(Exception):
    """Base class of every error this project raises on purpose."""


class InputError(TransferAutoMLError, ValueError):
    """The user's input is unusable; the message says what was wrong and how to fix it."""


class BackboneError(TransferAutoMLError):
    """A backbone could not be found, converted or loaded."""


class TrialError(TransferAutoMLError):
    """One trial failed; the search records the reason and continues."""


class TrialPruned(TrialError):
    """A trial was stopped early on purpose (by a pruner or a budget), not because it broke."""


class NonFiniteLoss(TrialError):
    """The training loss became NaN or infinite."""
