"""``transfer-automl runs list``: the runs on disk, newest first, one line each."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from transfer_automl.cli import app
from transfer_automl.run import RunFiles
from transfer_automl.space import Choice, SearchSpace
from transfer_automl.trial import TrialResult, TrialSpec, TrialState

SPACE = SearchSpace((Choice("lr", (0.1, 0.01)),), {"lr": 0.1})


def _run(runs, run_id, source, scores, state=None, content="c0ffee" + "0" * 58, **details):
    files = RunFiles(runs / run_id)
    files.run_dir.mkdir(parents=True)
    files.manifest.write_text(json.dumps({"report": {"source": source}, "fingerprint": "5" * 64,
                                          "content_fingerprint": content}))
    files.save_settings({"max_trials": 5}, SPACE)
    for n, score in enumerate(scores):
        spec = TrialSpec(f"t{n:03d}", n, {"lr": 0.1}, "tpe", seed=0)
        files.append(spec, TrialResult(spec.trial_id, TrialState.COMPLETE, score=score), n)
    refit = TrialSpec("t000-refit", len(scores), {"lr": 0.1}, "refit", seed=0)
    files.append(refit, TrialResult(refit.trial_id, TrialState.COMPLETE, score=0.99), 9.0)
    if state:
        files.save_state(state, **details)
    return files


def test_runs_list_shows_each_run_newest_first_one_line_each(tmp_path):
    runs = tmp_path / "runs"
    _run(runs, "20261101-090000-aaaaaa", "/data/flowers12", [0.5, 0.75], "complete",
         best_trial="t001", best_score=0.75, test_accuracy=0.7)
    _run(runs, "20261102-100000-bbbbbb", "/data/cats", [0.6], "interrupted")
    _run(runs, "20261103-110000-cccccc", "/data/cats", [])   # still going, or killed
    (runs / "not-a-run").mkdir()

    result = CliRunner().invoke(app, ["runs", "list", "--runs-dir", str(runs)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split("\t") == ["run", "dataset", "fingerprint", "started", "state",
                                    "trials", "best_val_acc", "test_acc"]
    rows = [line.split("\t") for line in lines[1:]]
    assert [r[0] for r in rows] == ["20261103-110000-cccccc", "20261102-100000-bbbbbb",
                                    "20261101-090000-aaaaaa"]
    assert rows[2] == ["20261101-090000-aaaaaa", "flowers12", "c0ffee", "2026-11-01 09:00:00",
                       "complete", "2", "0.7500", "0.7000"]  # the refit is not a trial
    assert rows[1][4:] == ["interrupted", "1", "0.6000", "-"]
    assert rows[0][4:] == ["-", "0", "-", "-"]

    as_json = CliRunner().invoke(app, ["runs", "list", "--runs-dir", str(runs), "--json"])
    records = [json.loads(line) for line in as_json.output.splitlines()]
    assert [r["run_id"] for r in records] == [r[0] for r in rows]
    assert records[2]["fingerprint"] == "c0ffee" + "0" * 58
    assert records[2]["state"] == "complete" and records[2]["test_accuracy"] == 0.7


def test_runs_list_of_an_empty_or_missing_folder(tmp_path):
    result = CliRunner().invoke(app, ["runs", "list", "--runs-dir", str(tmp_path / "none")])
    assert result.exit_code == 0 and "no runs yet" in result.output
    result = CliRunner().invoke(app, ["runs", "list", "--runs-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0 and result.output == ""


def test_the_recorder_notes_how_a_run_ended(tmp_path):
    from types import SimpleNamespace

    from transfer_automl.study import Study
    from transfer_automl.tracking.recorder import RunRecorder

    files = RunFiles(tmp_path / "run")
    files.run_dir.mkdir()
    recorder = RunRecorder(None, None, None, files, Study(SPACE))
    result = SimpleNamespace(best_score=0.8, test_score=0.75,
                             leaderboard=[{"trial": "t002", "score": 0.8}])
    recorder.close("complete", result)
    state = files.state()
    assert state["status"] == "complete" and state["best_trial"] == "t002"
    assert state["test_accuracy"] == 0.75
    RunRecorder(None, None, None, files, Study(SPACE)).close("interrupted")
    assert files.state()["status"] == "interrupted"
