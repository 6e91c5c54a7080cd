"""The loop inside a local worker process: take a spec, run it, send events back."""

from __future__ import annotations

import logging
import queue

from transfer_automl.errors import TrialPruned
from transfer_automl.trial import TrialContext
from transfer_automl.trial import EpochMetrics


class QueueReporter:
    """Sends epoch metrics to the driver and raises :class:`TrialPruned` once it says stop."""

    def __init__(self, events, control) -> None:
        self._events = events
        self._control = control

    def __call__(self, metrics: EpochMetrics) -> None:
        self._events.put(metrics)
        while True:
            try:
                trial_id, reason = self._control.get_nowait()
            except queue.Empty:
                return
            if trial_id == metrics.trial_id:
                raise TrialPruned(reason)


def worker_main(context: TrialContext, tasks, control, events) -> None:
    """Serve trials until a ``None`` task arrives."""
    logging.basicConfig(level=logging.WARNING)
    from transfer_automl.training import TrialRunner

    runner = TrialRunner(context)
    reporter = QueueReporter(events, control)
    while True:
        spec = tasks.get()
        if spec is None:
            return
        events.put(runner.run(spec, reporter))
