"""A search without training, for tests of what the server shows: a real :class:`Study` and
:class:`Progress` fed made-up epochs and results, and jobs written straight into the store,
so the page can be followed through a whole search in seconds."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session

from knowledge_base.engine import make_engine, now
from knowledge_base.models import JobRow
from knowledge_base.records import clean_json
from transfer_automl.search import EventKind, SearchEvent
from transfer_automl.server.progress import Progress
from transfer_automl.server.worker import space_preset
from transfer_automl.study import Study
from transfer_automl.trial import EpochMetrics, TrialResult, TrialState

PLAN = "No knowledge base: searching from the default configuration"
CLASSES = ["daisy", "rose", "tulip"]


class FakeSearch:
    """Drives :class:`Progress` as a search would, without running anything.

    Args:
        publish: receives each snapshot (as the worker's ``_publish`` does).
        max_trials: the trial budget.
        time_budget_s: the time budget.
    """

    def __init__(self, publish, max_trials: int = 10, time_budget_s: float = 600.0) -> None:
        self.study = Study(space_preset("quick"), seed=0)
        self.progress = Progress(max_trials, publish, min_interval_s=0.0,
                                 time_budget_s=time_budget_s)
        self.t0 = time.monotonic()
        self.emit(EventKind.PLANNED, None, PLAN)

    def emit(self, kind: EventKind, record, message: str = "") -> None:
        self.progress.on_event(SearchEvent(kind, record, self.study,
                                           time.monotonic() - self.t0, message))

    def start(self) -> str:
        spec = self.study.ask()
        self.emit(EventKind.STARTED, self.study.trials[spec.trial_id])
        return spec.trial_id

    def epoch(self, trial_id: str, val_accuracy: float, loss: float = 0.5) -> None:
        record = self.study.trials[trial_id]
        self.study.report(EpochMetrics(trial_id, len(record.epochs) + 1, loss, val_accuracy,
                                       loss, val_accuracy, 0.1))
        self.emit(EventKind.EPOCH, record)

    def finish(self, trial_id: str, state: TrialState = TrialState.COMPLETE,
               reason: str = "", seconds: float = 4.0) -> None:
        record = self.study.trials[trial_id]
        scores = [e.val_accuracy for e in record.epochs]
        best = max(range(len(scores)), key=scores.__getitem__)
        self.study.tell(TrialResult(trial_id, state, scores[best], best + 1,
                                    tuple(record.epochs), reason, seconds, "features",
                                    artifact=f"{trial_id}/weights.npz"))
        self.emit(EventKind.FINISHED, record)

    def trial(self, accuracies: list[float], losses: list[float] | None = None,
              **finish: Any) -> str:
        """One whole trial: started, its epochs (validation accuracy, training loss),
        finished."""
        trial_id = self.start()
        for acc, loss in zip(accuracies, losses or [0.5] * len(accuracies)):
            self.epoch(trial_id, acc, loss)
        self.finish(trial_id, **finish)
        return trial_id

    def result(self, ensemble: dict[str, float] | None = None) -> dict[str, Any]:
        """A job result as the worker records it, with a test report (and an ensemble)."""
        best = self.study.best()
        rows = self.study.leaderboard()
        if ensemble:
            rows.insert(0, {"trial": "ensemble", "status": "complete", "score": 0.975,
                            "epochs_run": 0, "cost_s": None, "fidelity": "ensemble",
                            "origin": "ensemble", "reason": "", "diagnosis": "", "config": {},
                            "members": ensemble, "detail": "an ensemble"})
        return clean_json({
            "run_id": "run1", "best_score": best.result.score, "test_score": 0.9333,
            "best_config": dict(best.spec.config), "class_names": CLASSES,
            "test_report": {"accuracy": 0.9333, "n": 30, "interval": [0.787, 0.982],
                            "per_class": {"daisy": {"accuracy": 1.0, "n": 10},
                                          "rose": {"accuracy": 0.9, "n": 10},
                                          "tulip": {"accuracy": 0.9, "n": 10}},
                            "confusion": [[10, 0, 0], [1, 9, 0], [0, 1, 9]]},
            "ensemble": ({"weights": ensemble, "accuracy": 0.975, "single_accuracy": 0.96,
                          "n_images": 40, "passes": 1} if ensemble else None),
            "leaderboard": rows, "group": None,
            "explanation": PLAN + ". 10 trials (9 complete, 1 pruned). Best: ...",
            "timings": {"load_s": 1.0, "plan_s": 2.0, "search_s": 30.0, "refit_s": 3.0,
                        "export_s": 4.0}})


def running_job(store, job_id: str, owner: str, dataset_id: str,
                params: dict[str, Any], run_id: str | None = None) -> None:
    """A job row that is already ``running``, so the job manager never starts a worker for it
    (it starts only queued jobs), and the test writes its progress instead."""
    engine = make_engine(store.url).execution_options(kb_write=True)
    try:
        with Session(engine) as s, s.begin():
            s.add(JobRow(id=job_id, owner=owner, dataset_id=dataset_id, params=params,
                         status="running", run_id=run_id, attempts=1, pid=None, error="",
                         progress={}, result=None, created=now(), started=now(),
                         finished=None))
    finally:
        engine.dispose()
