"""The replay executor (simulated time, stop at the next epoch boundary, slots) and the
synchronous schedulers of the scheduling replay (batches, successive halving)."""

from __future__ import annotations

import math

import pytest

from benchmarks import _sched_policies as policies
from benchmarks._sched_replay import Recorded, ReplayExecutor
from transfer_automl.trial import EpochMetrics, TrialResult, TrialSpec, TrialState


def curve(key: str, seconds, startup=1.0, values=None) -> Recorded:
    values = values or [0.1 * (i + 1) for i in range(len(seconds))]
    return Recorded(key, startup, tuple((v, 1.0 - v, v, s) for v, s in zip(values, seconds)))


def spec(number: int, key: str, **config) -> TrialSpec:
    return TrialSpec(f"t{number:03d}", number, {"config_id": key, **config}, "test", number)


def drain(executor, until=None) -> list[tuple[float, object]]:
    """Poll until nothing runs (or ``until`` returns True); (time, event) pairs."""
    out = []
    while executor.running or executor._pending:
        for event in executor.poll(math.inf):
            out.append((executor.clock(), event))
            if until and until(event):
                return out
    return out


def test_from_row_takes_the_startup_as_wall_time_less_epochs():
    row = {"config_id": "g-x", "wall_s": 10.0, "curve": [
        {"epoch": 2, "val_accuracy": 0.6, "val_loss": 0.5, "accuracy": 0.7, "seconds": 3.0},
        {"epoch": 1, "val_accuracy": 0.5, "val_loss": 0.6, "accuracy": 0.6, "seconds": 4.0}]}
    rec = Recorded.from_row(row)
    assert rec.key == "g-x" and rec.startup_s == pytest.approx(3.0)
    assert [e[0] for e in rec.epochs] == [0.5, 0.6] and rec.seconds() == 7.0


def test_epochs_are_reported_at_their_recorded_end_times():
    ex = ReplayExecutor({"a": curve("a", [2.0, 3.0, 5.0], startup=1.0)}, slots=1)
    ex.submit(spec(0, "a"))
    events = drain(ex)
    epochs = [(t, e.epoch, e.val_accuracy) for t, e in events if isinstance(e, EpochMetrics)]
    assert epochs == [(3.0, 1, 0.1), (6.0, 2, 0.2), (11.0, 3, pytest.approx(0.3))]
    t, result = events[-1]
    assert t == 11.0 and isinstance(result, TrialResult) and result.state == TrialState.COMPLETE
    assert result.score == pytest.approx(0.3) and result.best_epoch == 3
    assert result.seconds == 11.0 and ex.last_end == 11.0


def test_a_poll_waits_at_most_its_timeout():
    ex = ReplayExecutor({"a": curve("a", [10.0], startup=0.0)}, slots=1)
    ex.submit(spec(0, "a"))
    assert ex.poll(4.0) == [] and ex.clock() == 4.0
    assert [type(e) for e in ex.poll(100.0)] == [EpochMetrics, TrialResult]
    assert ex.clock() == 10.0


def test_stop_ends_the_trial_at_its_next_epoch_boundary_with_its_best_epoch():
    ex = ReplayExecutor({"a": curve("a", [1.0] * 6, startup=0.0,
                                    values=[0.5, 0.9, 0.6, 0.7, 0.8, 0.95])}, slots=1)
    ex.submit(spec(0, "a"))
    events = drain(ex, until=lambda e: isinstance(e, EpochMetrics) and e.epoch == 2)
    assert events[-1][0] == 2.0
    ex.stop("t000", "median rule")  # read when epoch 3 is reported
    t, last = drain(ex)[-1]
    assert t == 3.0 and last.state == TrialState.PRUNED and last.reason == "median rule"
    assert len(last.history) == 3 and last.score == 0.9 and last.best_epoch == 2


def test_kill_ends_the_trial_at_once():
    ex = ReplayExecutor({"a": curve("a", [5.0, 5.0], startup=0.0)}, slots=1)
    ex.submit(spec(0, "a"))
    ex.poll(6.0)  # epoch 1 at 5 s
    ex.kill("t000", "timed out")
    (result,) = ex.poll(0.0)
    assert result.state == TrialState.FAILED and ex.clock() == 5.0 and not ex.running


def test_slots_are_respected_and_trials_run_side_by_side():
    recorded = {k: curve(k, [4.0], startup=0.0) for k in "abc"}
    ex = ReplayExecutor(recorded, slots=2)
    ex.submit(spec(0, "a"))
    ex.submit(spec(1, "b"))
    with pytest.raises(RuntimeError, match="slots are busy"):
        ex.submit(spec(2, "c"))
    ends = [(t, e.trial_id) for t, e in drain(ex) if isinstance(e, TrialResult)]
    assert ends == [(4.0, "t000"), (4.0, "t001")] and ex.max_seen == 2


def test_an_epoch_cap_and_a_resume_from_the_checkpoint():
    ex = ReplayExecutor({"a": curve("a", [1.0, 2.0, 3.0], startup=5.0)}, slots=1)
    ex.submit(spec(0, "a", epochs=1))
    (_, first), = [p for p in drain(ex) if isinstance(p[1], TrialResult)]
    assert first.state == TrialState.COMPLETE and len(first.history) == 1 and ex.clock() == 6.0
    resumed = TrialSpec("t000r1", 0, {"config_id": "a"}, "test", 0, init_weights=first.artifact)
    ex.submit(resumed)
    events = drain(ex)
    assert [e.epoch for _, e in events if isinstance(e, EpochMetrics)] == [2, 3]
    assert events[-1][0] == 6.0 + 2.0 + 3.0  # no start-up again by default
    assert len(events[-1][1].history) == 3 and events[-1][1].extra["epochs_replayed"] == 2


def test_the_product_driver_runs_the_replay_in_simulated_time():
    recorded = {k: curve(k, [10.0] * 4, startup=0.0) for k in "abcd"}
    out = policies.run("async", recorded, list("abcd"), slots=2)
    assert out.makespan_s == 80.0 and out.epochs == 16 and out.stopped == 0
    assert out.busy_s == 160.0 and out.best_score == pytest.approx(0.4)


def test_sync_batches_wait_for_the_slowest_trial_of_each_batch():
    recorded = {"short": curve("short", [1.0], startup=0.0),
                "long": curve("long", [10.0], startup=0.0)}
    order = ["long", "short", "short", "short"]
    assert policies.run("sync-batches", recorded, order, slots=2).makespan_s == 11.0
    assert policies.run("async", recorded, order, slots=2).makespan_s == 10.0


def test_successive_halving_rungs_and_sizes():
    assert policies.rung_epochs(40, 2, 3) == [2, 6, 18, None]
    assert policies.rung_epochs(5, 2, 3) == [2, None]
    assert policies.rung_sizes(24, 4, 3) == [24, 8, 2, 1]
    assert policies.rung_sizes(9, 3, 3) == [9, 3, 1]


def test_successive_halving_promotes_the_top_third_after_a_barrier(monkeypatch):
    # nine trials of 6 one-second epochs; trial i's curve is flat at i/10
    recorded = {f"c{i}": curve(f"c{i}", [1.0] * 6, startup=0.0, values=[i / 10] * 6)
                for i in range(9)}
    order = [f"c{i}" for i in range(9)]
    executor_runs = []
    real = policies.run_barrier

    def spy(executor, specs):
        executor_runs.append((executor.clock(), [s.trial_id for s in specs]))
        return real(executor, specs)

    monkeypatch.setattr(policies, "run_barrier", spy)
    out = policies.sync_sha(recorded, order, slots=3, eta=3, min_epochs=2)
    (t0, rung0), (t1, rung1) = executor_runs
    assert len(rung0) == 9 and t0 == 0.0
    assert rung1 == ["t008r1", "t007r1", "t006r1"]  # the best three, best first
    assert t1 == 6.0  # three waves of 2 epochs on 3 slots: the barrier
    assert out.makespan_s == 6.0 + 4.0 and out.best_score == pytest.approx(0.8)
    assert out.epochs == 9 * 2 + 3 * 4 and out.stopped == 6


def test_without_stop_lag_a_stop_ends_the_trial_at_the_epoch_just_reported():
    ex = ReplayExecutor({"a": curve("a", [1.0] * 6, startup=0.0)}, slots=1, stop_lag=False)
    ex.submit(spec(0, "a"))
    drain(ex, until=lambda e: isinstance(e, EpochMetrics) and e.epoch == 2)
    ex.stop("t000", "stalled")
    (t, last), = drain(ex)
    assert t == 2.0 and last.state == TrialState.PRUNED and len(last.history) == 2
