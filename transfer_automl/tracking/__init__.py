"""Everything that follows a search: the tracker interface and its implementations.

A :class:`Tracker` hears of the plan, each trial starting, each epoch, each trial finishing,
and the search closing. The run recorder (journal + knowledge base), the MLflow mirror, the
command line's progress display and the upload server's progress are trackers; ``fit_auto``
combines the ones a run needs into one :class:`Trackers` and closes it once.
"""

from transfer_automl.tracking.base import CallbackTracker, Tracker, Trackers, as_tracker

__all__ = ["CallbackTracker", "Tracker", "Trackers", "as_tracker"]
