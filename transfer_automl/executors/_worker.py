"""The loop inside a local worker process: take a spec, run it, send events back."""

from __future__ import annotations

import logging
import queue

from transfer_automl.errors import TrialPruned
from transfer_automl.executors.base import call_trial
from transfer_automl.trial import EpochMetrics, TrialContext


class PipeReporter:
    """Sends epoch metrics to the driver and raises :class:`TrialPruned` once it says stop.

    ``events`` is this worker's own pipe to the driver: no lock is shared with other
    processes, so killing this worker mid-send cannot block anyone else's events."""

    def __init__(self, events, control) -> None:
        self._events = events
        self._control = control

    def __call__(self, metrics: EpochMetrics) -> None:
        self._events.send(metrics)
        while True:
            try:
                trial_id, reason = self._control.get_nowait()
            except queue.Empty:
                return
            if trial_id == metrics.trial_id:
                raise TrialPruned(reason)


def worker_main(context: TrialContext, tasks, control, events, trial_fn=None) -> None:
    """Serve trials until a ``None`` task arrives (with ``trial_fn``, a custom trial
    function, instead of the trial runner)."""
    logging.basicConfig(level=logging.WARNING)
    reporter = PipeReporter(events, control)
    if trial_fn is None:
        from transfer_automl import quiet

        quiet.tensorflow()
        from transfer_automl.training import TrialRunner

        runner = TrialRunner(context)
    while True:
        spec = tasks.get()
        if spec is None:
            return
        events.send(runner.run(spec, reporter) if trial_fn is None
                    else call_trial(trial_fn, spec, context, reporter))
