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

    Nothing reaches the knowledge base before the run's first trial completes with a score:
    a search whose trials all crash (a script that cannot start workers, a broken install)
    must not leave its dataset behind to be matched, as a known neighbour at distance zero,
    by the next attempt. From then on trials go to the knowledge base when they start
    (status running) and again when they finish, so a run killed midway leaves an accurate
    record. Knowledge-base write errors are logged, never allowed to end the search.

    Args:
        embedding: the dataset's embedding (a resumed run passes the one it saved; None
            when it has none, and the dataset is then looked up by its fingerprint).
    """

    def __init__(self, store, data, embedding, files, study: Study,
                 elapsed_offset: float = 0.0) -> None:
        self.store, self.files, self.data, self.embedding = store, files, data, embedding
        self.run_id, self.offset, self.study = files.run_id, elapsed_offset, study
        self.written, self.dataset_id = False, None
        self.waiting: dict[str, object] = {}  # trials seen before the run was written
        if store is not None and any(_learned(r) for r in study.finished):
            self._write_run()  # resumed after trials had completed

    def _write_run(self) -> None:
        from transfer_automl.embedding import meta_features

        data = self.data
        if self.embedding is None:  # resumed without a saved embedding
            known = [d.id for d in self.store.datasets() if d.fingerprint == data.fingerprint]
            if not known:
                log.warning("knowledge base: dataset of run %s not found; not recording",
                            self.run_id)
                self.store = None
                return
            dataset_id = known[0]
        else:  # the same fingerprint again returns the stored dataset
            dataset_id = self.store.add_dataset(self._name(), data.fingerprint, self.embedding,
                                                meta_features(data), data.report.to_dict())
        self.dataset_id = dataset_id
        self.store.start_run(self.run_id, dataset_id,
                             {"space": list(self.study.space.names), "seed": self.study.seed})
        self.written = True
        for trial in self.waiting.values():
            self._record(trial)
        self.waiting.clear()

    def on_trial_started(self, event) -> None:
        self._record_or_wait(event.trial)

    def on_trial_finished(self, event) -> None:
        self.files.append(event.trial.spec, event.trial.result, self.offset + event.elapsed)
        if self.store is not None and not self.written and _learned(event.trial):
            self.waiting[event.trial.spec.trial_id] = event.trial
            self._write_run()
            return
        self._record_or_wait(event.trial)

    def _record_or_wait(self, trial) -> None:
        if self.written:
            self._record(trial)
        elif self.store is not None:
            self.waiting[trial.spec.trial_id] = trial

    def _record(self, trial) -> None:
        if self.store is None:
            return
        from knowledge_base import trial_record

        try:
            self.store.record_trial(self.run_id, trial_record(trial.spec, trial.result))
            self._record_portfolio(trial)
        except Exception as exc:  # the search matters more than its record
            log.warning("knowledge base: could not record %s: %s", trial.spec.trial_id, exc)

    def _name(self) -> str:
        return Path(self.data.report.source).name or "dataset"

    def _record_portfolio(self, trial) -> None:
        """A completed trial whose configuration is a portfolio one is a meta-dataset row
        too; a row the KB already holds for it (the portfolio build's) is kept."""
        from transfer_automl.portfolio import trial_portfolio_row

        data = self.data
        row = trial_portfolio_row(
            trial.spec, trial.result, dataset=self._name(),
            fingerprint=getattr(data, "content_fingerprint", "") or data.fingerprint,
            n_images=len(data.train.labels) + len(data.val.labels),
            dataset_id=self.dataset_id, embedding=self.embedding,
            source=f"run:{self.run_id}/{trial.spec.trial_id}")
        if row is not None:
            self.store.add_portfolio_rows([row], replace=False)

    def close(self, status: str, result=None) -> None:
        best = None
        if result is not None:
            best = next((row["trial"] for row in result.leaderboard
                         if row["score"] == result.best_score), None)
        self._save_state(status, result, best)
        if self.store is None:
            return
        if not self.written:
            log.info("knowledge base: run %s completed no trial; not recorded", self.run_id)
            self.store.close()
            return
        try:
            self.store.finish_run(self.run_id, status, best)
        finally:
            self.store.close()

    def _save_state(self, status: str, result, best: str | None) -> None:
        """How the run ended, in its directory (``transfer-automl runs list`` shows it)."""
        details = {}
        if result is not None:
            details = {"best_trial": best, "best_score": result.best_score,
                       "test_accuracy": result.test_score}
        try:
            self.files.save_state(status, **details)
        except (OSError, ValueError) as exc:  # the run's outcome matters more than its note
            log.warning("run %s: could not record its state: %s", self.run_id, exc)


def _learned(trial) -> bool:
    """Whether a finished trial is something the knowledge base can learn from: it scored,
    completed or stopped early (a stalled curve's best epoch is a fair score too)."""
    from transfer_automl.trial import TrialState

    result = trial.result
    return (result is not None and result.state in (TrialState.COMPLETE, TrialState.PRUNED)
            and result.score is not None)
