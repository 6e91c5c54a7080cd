"""The optional MLflow mirror of a search, against a local SQLite tracking store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from transfer_automl import fit_auto
from transfer_automl.options import SearchOptions, TrackingOptions
from transfer_automl.space import default_space

mlflow = pytest.importorskip("mlflow", reason="MLflow logging is optional: pip install "
                                              "'transfer-automl[mlflow]'")


def test_a_search_is_mirrored_with_one_nested_run_per_trial(tmp_path, cache_root,
                                                           colour_folder, monkeypatch):
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # a SQLite store keeps artifacts under ./mlruns
    uri = f"sqlite:///{tmp_path}/mlflow.db"
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
    assert search[0].data.tags["dataset.name"] == colour_folder.name
    assert {"model", "leaderboard.json", "explanation.txt"} <= {
        f.path for f in client.list_artifacts(search[0].info.run_id)}
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


def test_a_file_store_uri_fails_in_one_line_before_anything_is_written(tmp_path, monkeypatch,
                                                                    colour_folder):
    from transfer_automl.errors import InputError

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    for uri in ((tmp_path / "mlruns").as_uri(), str(tmp_path / "mlruns")):
        with pytest.raises(InputError, match=r"sqlite:///.*mlflow\.db"):
            fit_auto(colour_folder, max_trials=1, kb=False, cache_dir=tmp_path / "cache",
                     tracking=TrackingOptions(runs_dir=tmp_path / "runs", mlflow_uri=uri))
    assert not (tmp_path / "runs").exists() and not (tmp_path / "cache").exists()

    proc = subprocess.run([sys.executable, "-m", "transfer_automl.cli", "fit", str(colour_folder),
                           "--no-kb", "--cache-dir", str(tmp_path / "cache"), "--mlflow-uri",
                           (tmp_path / "mlruns").as_uri()], capture_output=True, text=True,
                          timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "sqlite:///" in lines[0], proc.stderr
    assert not (tmp_path / "cache" / "runs").exists()


def test_a_file_store_is_accepted_when_mlflow_is_told_to(monkeypatch, tmp_path):
    from transfer_automl.tracking.mlflow_mirror import check_uri

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    check_uri((tmp_path / "mlruns").as_uri())
    check_uri(f"sqlite:///{tmp_path}/mlflow.db")  # never a file store


def _finished_search(tmp_path):
    """What a complete search leaves for its trackers: a run directory with its dataset
    manifest and exported model, and the result."""
    run_dir = tmp_path / "runs" / "20261201-120000-abcdef"
    (run_dir / "model").mkdir(parents=True)
    (run_dir / "model" / "labels.json").write_text('["a", "b"]')
    (run_dir / "dataset.json").write_text(json.dumps({
        "report": {"source": "/data/flowers12"}, "fingerprint": "5" * 64,
        "content_fingerprint": "3fa2c1" + "0" * 58}))
    leaderboard = [{"trial": "t001", "status": "complete", "score": 0.9},
                   {"trial": "t000", "status": "complete", "score": 0.8}]
    return SimpleNamespace(
        run_id=run_dir.name, best_score=0.9, test_score=0.85, leaderboard=leaderboard,
        explanation="Found by TPE.", data_report={"source": "/data/flowers12", "n_classes": 2,
                                                  "n_images": 40},
        model=SimpleNamespace(path=run_dir / "model", metadata={"best_trial": "t001"}))


def _trial_events(mirror, ids):
    from transfer_automl.search import EventKind, SearchEvent
    from transfer_automl.study import Study, TrialRecord
    from transfer_automl.trial import TrialResult, TrialSpec, TrialState

    study = Study(default_space())
    for n, trial_id in enumerate(ids):
        record = TrialRecord(TrialSpec(trial_id, n, dict(study.space.default), "tpe", seed=0))
        mirror.on_event(SearchEvent(EventKind.STARTED, record, study, 0.0))
        record.result = TrialResult(trial_id, TrialState.COMPLETE, score=0.8 + n / 10)
        mirror.on_event(SearchEvent(EventKind.FINISHED, record, study, 1.0))


def test_a_complete_search_logs_its_model_leaderboard_explanation_and_dataset(tmp_path,
                                                                            monkeypatch):
    from mlflow.tracking import MlflowClient

    from transfer_automl.tracking.mlflow_mirror import MlflowMirror

    monkeypatch.chdir(tmp_path)  # a SQLite store keeps artifacts under ./mlruns
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = _finished_search(tmp_path)
    mirror = MlflowMirror(uri, "flowers", result.run_id, {"max_trials": 2})
    _trial_events(mirror, ["t000", "t001"])
    mirror.close("complete", result)

    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(mirror.search_run)
    assert run.info.status == "FINISHED" and run.data.metrics["test_score"] == 0.85
    tags = run.data.tags
    assert tags["best_trial"] == "t001" and tags["state"] == "complete"
    assert (tags["dataset.name"], tags["dataset.classes"], tags["dataset.images"]) == (
        "flowers12", "2", "40")
    assert tags["dataset.fingerprint"] == "3fa2c1" + "0" * 58
    assert client.get_run(mirror.all_trial_runs["t001"]).data.tags["best"] == "true"
    files = {f.path for f in client.list_artifacts(mirror.search_run)}
    assert {"model", "leaderboard.json", "explanation.txt"} <= files
    assert [f.path for f in client.list_artifacts(mirror.search_run, "model")] == [
        "model/labels.json"]
    local = client.download_artifacts(mirror.search_run, "leaderboard.json", str(tmp_path))
    assert [row["trial"] for row in json.loads(Path(local).read_text())] == ["t001", "t000"]


@pytest.mark.parametrize("status, expected", [("failed", "FAILED"), ("interrupted", "KILLED")])
def test_a_search_without_a_result_still_ends_its_run(tmp_path, monkeypatch, status, expected):
    from mlflow.tracking import MlflowClient

    from transfer_automl.tracking.mlflow_mirror import MlflowMirror

    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    mirror = MlflowMirror(uri, "flowers", "run-x", {})
    _trial_events(mirror, ["t000"])
    mirror.close(status)
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(mirror.search_run)
    assert run.info.status == expected and run.data.tags["state"] == status
    assert "best_trial" not in run.data.tags
    assert client.list_artifacts(mirror.search_run) == []
