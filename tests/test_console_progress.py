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
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert [f"trial {n}/3" in line for n, line in enumerate(lines, start=1)] == [True] * 3
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
