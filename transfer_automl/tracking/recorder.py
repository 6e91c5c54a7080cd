"""The run recorder: journals finished trials in the run directory and writes the run and
its trials to the knowledge base as the search goes."""

from __future__ import annotations

import logging
from pathlib import Path

from transfer_automl.study import Study
from transfer_automl.tracking.base import Tracker

log = logging.getLogger(__name__)


def record_child(store, run_id: str, spec, result) -> None:
    """Add a trial created after its run (a retune) to the run's record in the KB, then
    close the store. A run the KB never saw is logged and skipped, like any KB write error."""
    from knowledge_base import trial_record

    try:
        store.record_trial(run_id, trial_record(spec, result))
    except Exception as exc:  # the trial is journalled in the run either way
        log.warning("knowledge base: could not record %s of run %s: %s", spec.trial_id,
                    run_id, exc)
    finally:
        store.close()


class RunRecorder(Tracker):
    """Journals each finished trial in the run directory and writes the run and its trials to
    the knowledge base (``store``; None for none) as events arrive.

    Trials go to the knowledge base when they start (status running) and again when they
    finish, so a run killed midway leaves an accurate record. Knowledge-base write errors are
    logged, never allowed to end the search.
    """

    def __init__(self, store, data, embedding, files, study: Study,
                 elapsed_offset: float = 0.0) -> None:
        self.store, self.files = store, files
        self.run_id, self.offset = files.run_id, elapsed_offset
        if store is not None:
            self._start_run(data, embedding, study)

    def _start_run(self, data, embedding, study: Study) -> None:
        from transfer_automl.embedding import meta_features

        if embedding is None:  # resumed: the dataset was stored when the run began
            known = [d.id for d in self.store.datasets() if d.fingerprint == data.fingerprint]
            if not known:
                log.warning("knowledge base: dataset of run %s not found; not recording",
                            self.run_id)
                self.store = None
                return
            self.dataset_id = known[0]
        else:
            name = Path(data.report.source).name or "dataset"
            self.dataset_id = self.store.add_dataset(name, data.fingerprint, embedding,
                                                     meta_features(data), data.report.to_dict())
        self.store.start_run(self.run_id, self.dataset_id,
                             {"space": list(study.space.names), "seed": study.seed})

    def on_trial_started(self, event) -> None:
        self._record(event.trial)

    def on_trial_finished(self, event) -> None:
        self.files.append(event.trial.spec, event.trial.result, self.offset + event.elapsed)
        self._record(event.trial)

    def _record(self, trial) -> None:
        if self.store is None:
            return
        from knowledge_base import trial_record

        try:
            self.store.record_trial(self.run_id, trial_record(trial.spec, trial.result))
        except Exception as exc:  # the search matters more than its record
            log.warning("knowledge base: could not record %s: %s", trial.spec.trial_id, exc)

    def close(self, status: str, result=None) -> None:
        if self.store is None:
            return
        best = None
        if result is not None:
            best = next((row["trial"] for row in result.leaderboard
                         if row["score"] == result.best_score), None)
        try:
            self.store.finish_run(self.run_id, status, best)
        finally:
            self.store.close()
