"""fit_auto(verbose=True)'s progress lines: trial n/N, the best so far, budget left, ETA."""

import io

from tests.fake_executor import FakeExecutor
from tests.test_search import CTX, _space
from transfer_automl.options import TrackingOptions
from transfer_automl.search import Budget, run_search
from transfer_automl.study import Study
from transfer_automl.tracking.console import ConsoleProgress


def test_one_line_per_finished_trial_with_the_best_so_far_and_what_is_left():
    out = io.StringIO()
    progress = ConsoleProgress(3, 60.0, stream=out)
    run_search(Study(_space(), seed=0), FakeExecutor(slots=1, epoch_s=0.01), CTX,
               Budget(3, 60.0), progress, poll_s=0)
    everything = out.getvalue().splitlines()
    lines = [line for line in everything if " epoch " not in line]
    assert len(lines) == 3
    assert [f"trial {n}/3" in line for n, line in enumerate(lines, start=1)] == [True] * 3
    # while trials run, their diagnosis when it changes, as a traffic light
    live = [line for line in everything if " epoch " in line]
    assert live and all("[green] still improving: train longer" in line for line in live)
    assert all("s left" in line and "ETA" in line and "best so far" in line for line in lines)
    assert "ETA 0s" in lines[-1]  # nothing left to run
    progress.close("complete")
    assert out.getvalue().splitlines()[-1] == "search complete"


def test_verbose_adds_the_progress_to_the_runs_trackers():
    from transfer_automl.api import _with_progress

    quiet = TrackingOptions(trackers=(lambda event: None,))
    assert _with_progress(quiet, False, 5, 60.0) is quiet
    loud = _with_progress(quiet, True, None, 60.0)
    assert loud.trackers[0] is quiet.trackers[0] and isinstance(loud.trackers[1], ConsoleProgress)
    assert loud.trackers[1].max_trials is None and loud.trackers[1].time_budget_s == 60.0


def test_a_running_trial_that_has_flattened_gets_a_stop_suggestion_naming_the_command():
    from types import SimpleNamespace

    from transfer_automl.study import TrialRecord
    from transfer_automl.tracking.console import live_diagnosis
    from transfer_automl.trial import EpochMetrics, TrialSpec

    record = TrialRecord(TrialSpec("t004", 4, {"optimizer": "sgd", "epochs": 20}, "tpe", 0))
    event = SimpleNamespace(trial=record, study=SimpleNamespace(run_id="20261202-1"))
    shown = {}
    for epoch, acc in enumerate((0.5, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8), start=1):
        record.epochs.append(EpochMetrics("t004", epoch, 0.5, acc, 0.6, acc, 1.0))
        changed = live_diagnosis(event, shown)
        if epoch < 3:
            assert changed is None  # too short to tell
    verdict, suggestion = live_diagnosis(event, {})
    assert verdict.verdict.value == "converged" and verdict.light == "green"
    assert "its best epoch is kept" in suggestion
    assert suggestion.endswith("accept: transfer-automl tune 20261202-1 t004 --stop")
    assert live_diagnosis(event, shown) is None  # shown once until it changes
