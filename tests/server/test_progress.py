"""The progress snapshot: live learning curves (bounded), time left and ETA, parameter
importance once enough trials have finished."""

from __future__ import annotations

import json

from tests.server.feed import FakeSearch
from transfer_automl.server import progress
from transfer_automl.server.app import public_job
from transfer_automl.trial import TrialState


def test_epochs_of_a_running_trial_reach_the_snapshot_as_they_arrive():
    snapshots = []
    search = FakeSearch(snapshots.append)
    trial = search.start()
    search.epoch(trial, 0.5)
    search.epoch(trial, 0.7)
    curves = snapshots[-1]["epoch_curves"]
    assert curves == [{"trial": trial, "status": "running", "points": [[1, 0.5], [2, 0.7]]}]
    assert snapshots[-1]["curve"] == []  # nothing finished yet
    assert snapshots[-1]["eta_s"] is None and snapshots[-1]["budget_left_s"] <= 600

    search.finish(trial)
    last = snapshots[-1]
    assert last["epoch_curves"][0]["status"] == "complete"
    assert last["eta_s"] is not None and 0 < last["eta_s"] <= last["budget_left_s"]
    assert last["mean_trial_s"] == 4.0 and last["time_budget_s"] == 600.0


def test_curves_stay_bounded(monkeypatch):
    monkeypatch.setattr(progress, "MAX_CURVES", 3)
    monkeypatch.setattr(progress, "MAX_POINTS", 10)
    snapshots = []
    search = FakeSearch(snapshots.append)
    best = search.trial([0.2, 0.99])
    for _ in range(4):
        search.trial([0.3 + 0.001 * i for i in range(50)])
    live = search.start()
    search.epoch(live, 0.4)
    curves = snapshots[-1]["epoch_curves"]
    assert len(curves) == 3
    assert {c["trial"] for c in curves} >= {best, live}  # the best and the running one kept
    assert all(len(c["points"]) <= 10 for c in curves)
    long = next(c for c in curves if len(c["points"]) == 10)
    assert long["points"][0][0] == 1 and long["points"][-1][0] == 50


def test_importance_appears_once_eight_trials_have_finished():
    snapshots = []
    search = FakeSearch(snapshots.append)
    for i in range(7):
        search.trial([0.5, 0.6 + 0.04 * i])
    assert snapshots[-1]["importance"] is None
    search.trial([0.4, 0.3, 0.2], state=TrialState.PRUNED, reason="stalled")
    importance = snapshots[-1]["importance"]
    assert importance["n_trials"] == 8 and importance["method"] == "random forest"
    assert importance["weights"] and abs(sum(importance["weights"].values()) - 1) < 0.01
    config_keys = set(snapshots[-1]["trials"][0]["config"])
    assert set(importance["weights"]) <= config_keys | set(search.study.trials["t000"].spec.config)
    json.dumps(snapshots[-1])  # JSON-ready


def test_the_jobs_list_leaves_the_per_trial_parts_out():
    snapshots = []
    search = FakeSearch(snapshots.append)
    search.trial([0.5, 0.6])
    job = {"id": "j", "pid": 1, "progress": snapshots[-1], "result": None}
    listed = public_job(job, full=False)["progress"]
    assert not {"trials", "curve", "epoch_curves", "importance"} & set(listed)
    assert listed["eta_s"] == snapshots[-1]["eta_s"] and "pid" not in public_job(job)
