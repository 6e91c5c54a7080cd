"""The loop inside a local worker process: take a spec, run it, send events back."""

from __future__ import annotations

import logging
import queue

from transfer_automl.errors import TrialPruned
from transfer_automl.executors.base import call_trial
from transfer_automl.trial import EpochMetrics, TrialContext


class PipeReporter:
    """Sends epoch metrics to the driver, raises :class:`TrialPruned` once it says stop, and
    returns the live changes it sent.

    ``events`` is this worker's own pipe to the driver: no lock is shared with other
    processes, so killing this worker mid-send cannot block anyone else's events. Control
    messages are ``(trial_id, reason)`` to stop and ``(trial_id, {"tune": changes})``."""

    def __init__(self, events, control) -> None:
        self._events = events
        self._control = control
        self.trial_id: str | None = None
        self._stop: str | None = None

    def __call__(self, metrics: EpochMetrics) -> dict | None:
        self._events.send(metrics)
        changes = self._drain(metrics.trial_id)
        if self._stop is not None:
            reason, self._stop = self._stop, None
            raise TrialPruned(reason)
        return changes

    def poll(self) -> dict | None:
        """Changes sent since the last call; a stop waits for the next epoch's report."""
        return self._drain(self.trial_id)

    def _drain(self, trial_id: str | None) -> dict | None:
        changes: dict = {}
        while True:
            try:
                target, message = self._control.get_nowait()
            except queue.Empty:
                return changes or None
            if target != trial_id:
                continue  # meant for a trial that has ended
            if isinstance(message, dict):
                changes.update(message.get("tune") or {})
            else:
                self._stop = message


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
        reporter.trial_id, reporter._stop = spec.trial_id, None
        events.send(runner.run(spec, reporter) if trial_fn is None
                    else call_trial(trial_fn, spec, context, reporter))
