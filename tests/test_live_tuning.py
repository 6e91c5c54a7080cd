"""Live tuning end to end: requests in the run's control folder, the driver's answers, and a
real search on the local and the Spark executor whose running trial is retuned from outside."""

import threading

import pytest

from tests.fake_executor import FakeExecutor
from transfer_automl import tuning
from transfer_automl.errors import InputError
from transfer_automl.search import Budget, run_search
from transfer_automl.space import Choice, Float, SearchSpace
from transfer_automl.study import Study
from transfer_automl.trial import TrialContext


def test_changes_are_checked():
    assert tuning.check_changes({"learning_rate": "0.01", "epochs_left": 3, "momentum": None}) \
        == {"learning_rate": 0.01, "epochs_left": 3}
    for bad, match in (({"learning_rate": 0}, "learning_rate"), ({"momentum": 1.5}, "momentum"),
                       ({"epochs_left": 0}, "epochs_left"), ({"optimizer": "sgd"}, "accepts"),
                       ({"weight_decay": "x"}, "a number")):
        with pytest.raises(InputError, match=match):
            tuning.check_changes(bad)


def test_requests_are_taken_once_and_answered(tmp_path):
    with pytest.raises(InputError, match="nothing to change"):
        tuning.send(tmp_path, "t001", {})
    first = tuning.send(tmp_path, "t001", {"learning_rate": 1e-3})
    second = tuning.send(tmp_path, "t002", stop="enough")
    (tmp_path / "control" / "junk.json").write_text("{not json")
    inbox = tuning.ControlInbox(tmp_path)
    taken = inbox.take()
    assert [(r.request_id, r.trial_id) for r in taken] == [(first, "t001"), (second, "t002")]
    assert taken[0].changes == {"learning_rate": 1e-3} and taken[1].stop == "enough"
    assert inbox.take() == []
    assert tuning.answer_of(tmp_path, "junk")["status"] == "rejected"
    inbox.answer(first, "applied", "lr=0.001 from epoch 3", 3)
    assert tuning.wait_for_answer(tmp_path, first, 1)["epoch"] == 3


def _space():
    return SearchSpace((Float("lr", 1e-4, 0.1, log=True), Choice("epochs", (6,))),
                       {"lr": 0.01, "epochs": 6})


def test_driver_forwards_changes_stops_and_rejections(tmp_path):
    study = Study(_space(), seed=0)
    inbox = tuning.ControlInbox(tmp_path)
    ids = {}

    def on_event(event):
        if event.kind == "epoch" and event.trial.spec.trial_id == "t000" \
                and len(event.trial.epochs) == 1:
            ids["tune"] = tuning.send(tmp_path, "t000", {"learning_rate": 0.02})
            ids["stop"] = tuning.send(tmp_path, "t001", stop="stopped by the user")
            ids["unknown"] = tuning.send(tmp_path, "t777", {"momentum": 0.5})

    run_search(study, FakeExecutor(slots=2), TrialContext("m", str(tmp_path), "", ""),
               Budget(2, 60), on_event, poll_s=0, controls=inbox)
    applied = tuning.answer_of(tmp_path, ids["tune"])
    assert applied["status"] == "applied" and "learning_rate=0.02" in applied["detail"]
    tuned = [e for e in study.trials["t000"].epochs if e.tuned]
    assert [e.epoch for e in tuned] == [applied["epoch"]]
    assert tuning.answer_of(tmp_path, ids["stop"])["status"] == "stopping"
    assert study.trials["t001"].result.reason == "stopped by the user"
    assert "no such trial" in tuning.answer_of(tmp_path, ids["unknown"])["detail"]


@pytest.mark.slow
@pytest.mark.parametrize("executor", ["local", "local[2]"])
def test_a_running_trial_is_retuned_from_outside_the_search(executor, tmp_path, cache_root,
                                                            colour_folder):
    from transfer_automl import fit_auto
    from transfer_automl.history import RunHistory
    from transfer_automl.options import SearchOptions, TrackingOptions
    from transfer_automl.restore import restore, tune
    from transfer_automl.run import find_run
    from transfer_automl.space import default_space

    running, answers = threading.Event(), {}

    def retune_when_running():
        running.wait(300)
        (run_dir,) = (tmp_path / "runs").iterdir()
        answers["trial"] = run_dir.name, answers["started"]
        answers["answer"] = tune(run_dir.name, answers["started"], learning_rate=0.003,
                                 epochs_left=2, runs_dir=tmp_path / "runs", wait_s=120)

    def on_event(event):
        if event.kind == "started" and not running.is_set():
            answers["started"] = event.trial.spec.trial_id
            running.set()

    helper = threading.Thread(target=retune_when_running, daemon=True)
    helper.start()
    # one trial of 20 epochs with a backbone pass per step (local), or fine-tuning folds
    # trained in turn (Spark): both apply a change at an epoch boundary
    fixed = ({"augment": 1.0} if executor == "local" else {"unfrozen_blocks": 1})
    space = default_space().fix(resolution=64, epochs=20, optimizer="sgd", n_dense=1, **fixed)
    result = fit_auto(colour_folder, executor=executor, max_trials=1, time_budget_s=600,
                      kb=False, cache_dir=cache_root,
                      search=SearchOptions(space=space, multi_fidelity=False,
                                           early_stopping=False, ensemble_size=0),
                      tracking=TrackingOptions(runs_dir=tmp_path / "runs",
                                               trackers=(on_event,)))
    helper.join(30)
    answer = answers["answer"]
    assert answer["status"] == "applied", answer
    run_id, trial_id = answers["trial"]
    assert run_id == result.run_id
    trial = restore(run_id, trial_id, runs_dir=tmp_path / "runs")
    (change,) = trial.result.extra["tunings"]
    assert change["epoch"] == answer["epoch"]
    assert len(trial.result.history) == change["epoch"] + 1  # two more epochs, the last
    assert trial.result.history[change["epoch"] - 1].tuned["learning_rate"] == 0.003
    # a branch of the lineage, and the state before it can be restored
    tree = RunHistory.load(find_run(tmp_path / "runs", run_id)).tree()
    assert tree[f"{trial_id}@1"].parent == trial_id
    if executor == "local":  # the command line shows the branch too
        from typer.testing import CliRunner

        from transfer_automl.cli import app

        shown = CliRunner().invoke(app, ["history", run_id, "--cache-dir", str(tmp_path)])
        assert shown.exit_code == 0, shown.output
        assert f"live change at {trial_id} epoch {change['epoch']}" in shown.output
        assert "lr=0.003" in shown.output
    before = restore(run_id, trial_id, runs_dir=tmp_path / "runs", before_tuning=1)
    assert before.checkpoint == __import__("pathlib").Path(change["checkpoint"])
    assert len(before.result.history) == change["epoch"] - 1
    assert before.spec.config["learning_rate"] == trial.spec.config["learning_rate"]
