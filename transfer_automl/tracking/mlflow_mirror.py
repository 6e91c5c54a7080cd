"""Optional MLflow logging of a search: one MLflow run per search, one nested run per trial.

Used when ``mlflow`` (or ``mlflow-skinny``) is installed and a tracking URI is given
(``TrackingOptions(mlflow_uri=...)``, ``transfer-automl fit --mlflow-uri``). Trials finish out of
order and in parallel, so everything goes through ``MlflowClient`` with explicit run ids,
never through MLflow's process-global "active run".

When a search completes, its MLflow run also gets the exported model (artifact ``model/``),
the leaderboard (``leaderboard.json``), the explanation (``explanation.txt``), the dataset's
tags (``dataset.name``, ``dataset.fingerprint``, ``dataset.classes``, ``dataset.images``) and
the best trial's id (tag ``best_trial``; its nested run is tagged ``best=true``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from transfer_automl.errors import InputError
from transfer_automl.tracking.base import Tracker

log = logging.getLogger(__name__)

_EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


#: How a search's end maps to the status of its MLflow run.
_RUN_STATUS = {"complete": "FINISHED", "interrupted": "KILLED", "failed": "FAILED"}


def check_uri(uri: str | None) -> None:
    """Fail, before any work, on a tracking URI that cannot be used: MLflow not installed,
    or a file store (``file:...`` or a plain path), which MLflow 3 refuses unless
    ``MLFLOW_ALLOW_FILE_STORE=true``; the error suggests a ``sqlite:///`` URI instead."""
    if not uri or uri == "databricks":
        return
    try:
        from mlflow import environment_variables
    except ImportError:
        raise InputError("mlflow_uri given but MLflow is not installed; "
                         "pip install 'transfer-automl[mlflow]'") from None
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file") and len(parsed.scheme) != 1:  # one letter: C:\...
        return
    allowed = getattr(environment_variables, "MLFLOW_ALLOW_FILE_STORE", None)
    if allowed is None or allowed.get():  # an MLflow that takes file stores, or told to
        return
    store = Path(unquote(parsed.path) if parsed.scheme == "file" else uri).expanduser()
    database = store.resolve().parent / "mlflow.db"
    raise InputError(f"mlflow_uri {uri!r}: this MLflow no longer accepts a file store; give a "
                     f"database URI such as sqlite:///{database} (or set "
                     f"MLFLOW_ALLOW_FILE_STORE=true to keep the file store)")


class MlflowMirror(Tracker):
    """A tracker that mirrors a search into MLflow.

    Args:
        uri: MLflow tracking URI (``sqlite:///path/mlflow.db``, ``http://host:5000``; a
            ``file:`` store only with ``MLFLOW_ALLOW_FILE_STORE=true``, see :func:`check_uri`).
        experiment: experiment name, created when missing.
        run_name: name of the search's MLflow run (the transfer-automl run id).
        params: search settings logged on the search's run.
    """

    def __init__(self, uri: str, experiment: str, run_name: str,
                 params: dict[str, Any]) -> None:
        check_uri(uri)
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        self.experiment_id = experiment_id
        self.search_run = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        self._log_params(self.search_run, params)
        self.trial_runs: dict[str, str] = {}  # trials still running
        self.all_trial_runs: dict[str, str] = {}

    def on_event(self, event) -> None:
        try:
            self._handle(event)
        except Exception as exc:  # tracking must never end a search
            log.warning("mlflow: could not log %s event: %s", event.kind, exc)

    def _handle(self, event) -> None:
        record = event.trial
        if record is None:
            return
        spec = record.spec
        if event.kind == "started":
            run = self.client.create_run(
                self.experiment_id, run_name=spec.trial_id,
                tags={"mlflow.parentRunId": self.search_run, "origin": spec.origin,
                      "parent_trial": spec.parent or ""})
            self.trial_runs[spec.trial_id] = self.all_trial_runs[spec.trial_id] = run.info.run_id
            self._log_params(run.info.run_id, dict(event.study.space.active(spec.config)))
        elif event.kind == "epoch" and spec.trial_id in self.trial_runs:
            epoch = record.epochs[-1]
            self._log_metrics(self.trial_runs[spec.trial_id],
                              {k: getattr(epoch, k) for k in _EPOCH_METRICS}, epoch.epoch)
        elif event.kind == "finished" and spec.trial_id in self.trial_runs:
            run_id, result = self.trial_runs.pop(spec.trial_id), record.result
            if not record.epochs and result.history:  # e.g. a resumed or instant trial
                for epoch in result.history:
                    self._log_metrics(run_id, {k: getattr(epoch, k) for k in _EPOCH_METRICS},
                                      epoch.epoch)
            final = {"cost_s": result.seconds}
            if result.score is not None:
                final["score"] = result.score
            self._log_metrics(run_id, final, 0)
            self.client.set_tag(run_id, "state", result.state.value)
            self.client.set_tag(run_id, "fidelity", result.fidelity or "")
            if result.reason:
                self.client.set_tag(run_id, "reason", result.reason[:5000])
            self.client.set_terminated(run_id, "FAILED" if result.state.value == "failed"
                                       else "FINISHED")

    def close(self, status: str, result=None) -> None:
        """End the search's run; with a result, log its scores, the exported model, the
        leaderboard, the explanation, the dataset and the best trial first."""
        if result is not None:
            for step in (self._log_scores, self._log_dataset, self._log_best, self._log_files):
                try:
                    step(result)
                except Exception as exc:  # each is logged on its own; the run still ends
                    log.warning("mlflow: %s failed: %s", step.__name__.strip("_"), exc)
        try:
            self.client.set_tag(self.search_run, "state", status)
            for run_id in self.trial_runs.values():  # trials cut short by a failure
                self.client.set_terminated(run_id, "KILLED")
            self.client.set_terminated(self.search_run, _RUN_STATUS.get(status, "FAILED"))
        except Exception as exc:
            log.warning("mlflow: could not close the search's run: %s", exc)

    def _log_scores(self, result) -> None:
        metrics = {"best_score": result.best_score}
        if result.test_score is not None:
            metrics["test_score"] = result.test_score
        self._log_metrics(self.search_run, metrics, 0)

    def _log_dataset(self, result) -> None:
        from transfer_automl.run import RunFiles, summarise

        report = result.data_report or {}
        tags = {"dataset.name": Path(str(report.get("source", ""))).name,
                "dataset.classes": report.get("n_classes"),
                "dataset.images": report.get("n_images")}
        run_dir = _run_dir(result)
        if run_dir is not None:  # the fingerprints are in the run's dataset manifest
            summary = summarise(RunFiles(run_dir))
            tags.update({"dataset.fingerprint": summary.fingerprint,
                         "dataset.split_fingerprint": summary.split_fingerprint})
        for key, value in tags.items():
            if value not in (None, ""):
                self.client.set_tag(self.search_run, key, str(value))

    def _log_best(self, result) -> None:
        model = getattr(result, "model", None)
        best = (getattr(model, "metadata", None) or {}).get("best_trial") or next(
            (row["trial"] for row in result.leaderboard if row["score"] == result.best_score),
            None)
        if best is None:
            return
        self.client.set_tag(self.search_run, "best_trial", best)
        if best in self.all_trial_runs:
            self.client.set_tag(self.all_trial_runs[best], "best", "true")

    def _log_files(self, result) -> None:
        self.client.log_text(self.search_run, json.dumps(result.leaderboard, indent=1,
                                                         default=str), "leaderboard.json")
        self.client.log_text(self.search_run, result.explanation, "explanation.txt")
        model = getattr(result, "model", None)
        if model is not None and Path(model.path).is_dir():
            self.client.log_artifacts(self.search_run, os.fspath(model.path), "model")

    def _log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(k, str(v)[:6000])
                                              for k, v in params.items()])

    def _log_metrics(self, run_id: str, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), stamp, step)
                                               for k, v in values.items()])


def _run_dir(result) -> Path | None:
    """The run directory holding the exported model (``RUN_DIR/model``), if it is one."""
    model = getattr(result, "model", None)
    if model is None:
        return None
    from transfer_automl.run import RunFiles

    run_dir = Path(model.path).parent
    return run_dir if RunFiles(run_dir).manifest.is_file() else None
