"""Optional MLflow logging of a search: one MLflow run per search, one nested run per trial.

Used when ``mlflow`` (or ``mlflow-skinny``) is installed and a tracking URI is given
(``TrackingOptions(mlflow_uri=...)``, ``transfer-automl fit --mlflow-uri``). Trials finish out of
order and in parallel, so everything goes through ``MlflowClient`` with explicit run ids,
never through MLflow's process-global "active run".
"""

from __future__ import annotations

import logging
import time
from typing import Any

from transfer_automl.errors import InputError
from transfer_automl.tracking.base import Tracker

log = logging.getLogger(__name__)

_EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


class MlflowMirror(Tracker):
    """A tracker that mirrors a search into MLflow.

    Args:
        uri: MLflow tracking URI (``file:///path``, ``sqlite:///mlflow.db``, ``http://...``).
        experiment: experiment name, created when missing.
        run_name: name of the search's MLflow run (the transfer-automl run id).
        params: search settings logged on the search's run.
    """

    def __init__(self, uri: str, experiment: str, run_name: str,
                 params: dict[str, Any]) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise InputError("mlflow_uri given but MLflow is not installed; "
                             "pip install 'transfer-automl[mlflow]'") from None
        self.client = MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else self.client.create_experiment(experiment)
        self.experiment_id = experiment_id
        self.search_run = self.client.create_run(experiment_id, run_name=run_name).info.run_id
        self._log_params(self.search_run, params)
        self.trial_runs: dict[str, str] = {}

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
            self.trial_runs[spec.trial_id] = run.info.run_id
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
        """End the search's run; with a result, log its best and test scores."""
        try:
            if result is not None:
                metrics = {"best_score": result.best_score}
                if result.test_score is not None:
                    metrics["test_score"] = result.test_score
                self._log_metrics(self.search_run, metrics, 0)
            for run_id in self.trial_runs.values():  # trials cut short by a failure
                self.client.set_terminated(run_id, "KILLED")
            self.client.set_terminated(self.search_run,
                                       "FINISHED" if status == "complete" else "FAILED")
        except Exception as exc:
            log.warning("mlflow: could not close the search's run: %s", exc)

    def _log_params(self, run_id: str, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        self.client.log_batch(run_id, params=[Param(k, str(v)[:6000])
                                              for k, v in params.items()])

    def _log_metrics(self, run_id: str, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        self.client.log_batch(run_id, metrics=[Metric(k, float(v), stamp, step)
                                               for k, v in values.items()])
