"""The tracker interface and the composite that fans events out to several trackers."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from transfer_automl.search import EventKind, SearchEvent

log = logging.getLogger(__name__)


class Tracker:
    """Follows one search. Override the hooks of interest; each defaults to doing nothing.

    A tracker is also a plain callable of one :class:`SearchEvent`, so it can be passed
    wherever an ``on_event`` callback is expected.
    """

    def on_planned(self, event: SearchEvent) -> None:
        """The study is seeded; ``event.message`` says what the knowledge base contributed."""

    def on_trial_started(self, event: SearchEvent) -> None:
        """``event.trial`` was submitted to the executor."""

    def on_epoch(self, event: SearchEvent) -> None:
        """``event.trial`` reported an epoch (its last entry in ``event.trial.epochs``)."""

    def on_trial_finished(self, event: SearchEvent) -> None:
        """``event.trial`` ended; its result is in ``event.trial.result``."""

    def close(self, status: str, result: Any = None) -> None:
        """The search ended with ``status`` (complete, failed, interrupted) and, when
        complete, its :class:`~transfer_automl.result.FitResult`."""

    def on_event(self, event: SearchEvent) -> None:
        hooks = {EventKind.PLANNED: self.on_planned, EventKind.STARTED: self.on_trial_started,
                 EventKind.EPOCH: self.on_epoch, EventKind.FINISHED: self.on_trial_finished}
        hooks[event.kind](event)

    def __call__(self, event: SearchEvent) -> None:
        self.on_event(event)


class CallbackTracker(Tracker):
    """A plain ``callback(event)`` as a tracker (it is not told when the search closes)."""

    def __init__(self, callback: Callable[[SearchEvent], None]) -> None:
        self.callback = callback

    def on_event(self, event: SearchEvent) -> None:
        self.callback(event)


def as_tracker(obj: Tracker | Callable[[SearchEvent], None]) -> Tracker:
    return obj if isinstance(obj, Tracker) else CallbackTracker(obj)


class Trackers(Tracker):
    """Several trackers as one: events go to each in order; :meth:`close` closes each once,
    even when an earlier one fails to close."""

    def __init__(self, trackers: Iterable[Tracker | Callable[[SearchEvent], None] | None]) -> None:
        self.trackers = [as_tracker(t) for t in trackers if t is not None]
        self.closed = False

    def on_event(self, event: SearchEvent) -> None:
        for tracker in self.trackers:
            tracker.on_event(event)

    def close(self, status: str, result: Any = None) -> None:
        if self.closed:
            return
        self.closed = True
        errors = []
        for tracker in self.trackers:
            try:
                tracker.close(status, result)
            except Exception as exc:  # the others still close
                log.warning("closing %s failed: %s", type(tracker).__name__, exc)
                errors.append(exc)
        if errors:
            raise errors[0]
