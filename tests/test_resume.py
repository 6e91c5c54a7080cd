"""A driver killed mid-search, then resumed: finished trials are kept, not re-run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from transfer_automl import TrackingOptions, resume
from transfer_automl.errors import InputError
from transfer_automl.run import JOURNAL

SCRIPT = """
import sys
from transfer_automl import SearchOptions, TrackingOptions, fit_auto
from transfer_automl.space import default_space
if __name__ == "__main__":
    space = default_space().fix(resolution=64, epochs=3)
    fit_auto(sys.argv[1], max_trials=6, time_budget_s=600, seed=0, kb=False,
             cache_dir=sys.argv[2],
             search=SearchOptions(space=space, multi_fidelity=False, early_stopping=False),
             tracking=TrackingOptions(runs_dir=sys.argv[3]))
"""


@pytest.mark.slow
def test_killed_driver_then_resume(tmp_path, cache_root, colour_folder):
    runs = tmp_path / "runs"
    script = tmp_path / "driver.py"
    script.write_text(SCRIPT)
    proc = subprocess.Popen([sys.executable, str(script), str(colour_folder), str(cache_root),
                             str(runs)], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = None
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(runs.glob(f"*/{JOURNAL}"))
        if found and len(found[0].read_text().splitlines()) >= 2:
            journal = found[0]
            break
        time.sleep(0.5)
    assert journal is not None, "the driver never finished two trials"
    os.killpg(proc.pid, signal.SIGKILL)   # the driver and its workers, mid-search
    proc.wait()
    before = [json.loads(line) for line in journal.read_text().splitlines()]
    run_id = journal.parent.name

    started = []
    def on_started(event):
        if event.kind == "started":
            started.append(event.trial.spec.trial_id)
    result = resume(run_id, cache_dir=cache_root, kb=False,
                    tracking=TrackingOptions(runs_dir=runs, trackers=(on_started,)))
    done_before = {b["spec"]["trial_id"]: b["result"]["score"] for b in before}
    assert not set(started) & set(done_before), "a finished trial ran again"
    board = {row["trial"]: row for row in result.leaderboard}
    assert len(board) == 6
    for trial_id, score in done_before.items():
        assert board[trial_id]["score"] == score
    assert result.test_score is not None


def test_resume_unknown_run_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no resumable run"):
        resume("nope", cache_dir=tmp_path, kb=False,
               tracking=TrackingOptions(runs_dir=tmp_path / "runs"))
