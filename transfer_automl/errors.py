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


class TrialSuperseded(TrialPruned):
    """Another attempt of the trial has taken over (its task was re-run elsewhere): this one
    stops without writing its artifacts over the new attempt's."""

    #: How the driver's stop reason starts when it means this.
    PREFIX = "superseded: "


class NonFiniteLoss(TrialError):
    """The training loss became NaN or infinite."""


class SearchFailed(TransferAutoMLError):
    """No trial produced a model; the message lists why the trials failed."""


class KnowledgeBaseError(TransferAutoMLError):
    """The knowledge base is unusable or was asked for something it does not hold."""


class UnusableImage(TransferAutoMLError):
    """A file is not a usable image; ``str(exc)`` is the reason shown in the data report
    (ingestion skips the file and goes on)."""


class UploadError(TransferAutoMLError):
    """The upload server refuses an upload; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
