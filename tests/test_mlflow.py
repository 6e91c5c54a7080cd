"""The optional MLflow mirror of a search, against a local file store."""

from __future__ import annotations

import pytest

from transfer_automl import fit_auto
from transfer_automl.options import SearchOptions, TrackingOptions
from transfer_automl.space import default_space

mlflow = pytest.importorskip("mlflow", reason="MLflow logging is optional: pip install "
                                              "'transfer-automl[mlflow]'")


def test_a_search_is_mirrored_with_one_nested_run_per_trial(tmp_path, cache_root,
                                                           colour_folder, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the file store, for a test
    uri = (tmp_path / "mlruns").as_uri()
    space = default_space(["efficientnet_lite0"]).fix(resolution=64, epochs=3)
    result = fit_auto(colour_folder, max_trials=2, time_budget_s=600, kb=False,
                      cache_dir=cache_root, search=SearchOptions(space=space, multi_fidelity=False),
                      tracking=TrackingOptions(runs_dir=tmp_path / "runs", mlflow_uri=uri,
                                               mlflow_experiment="colours"))
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("colours")
    runs = client.search_runs([experiment.experiment_id])
    search = [r for r in runs if r.info.run_name == result.run_id]
    assert len(search) == 1 and search[0].info.status == "FINISHED"
    assert search[0].data.metrics["best_score"] == pytest.approx(result.best_score)
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == search[0].info.run_id]
    assert sorted(r.info.run_name for r in trials) == sorted(row["trial"]
                                                            for row in result.leaderboard)
    for run in trials:
        row = next(row for row in result.leaderboard if row["trial"] == run.info.run_name)
        assert run.data.tags["state"] == row["status"]
        assert run.data.params["optimizer"] == str(row["config"]["optimizer"])
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert len(history) == row["epochs_run"] >= 1
        assert run.data.metrics["score"] == pytest.approx(row["score"])


def test_a_uri_without_mlflow_installed_is_a_clear_error(monkeypatch, colour_folder, tmp_path):
    import builtins

    from transfer_automl.errors import InputError
    from transfer_automl.tracking.mlflow_mirror import MlflowMirror

    real_import = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name.startswith("mlflow"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    with pytest.raises(InputError, match="MLflow is not installed"):
        MlflowMirror("file:///nowhere", "x", "run", {})
