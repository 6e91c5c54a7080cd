"""The executor contract, run against the in-process fake, the local and the Spark executor.

Whatever runs the trials, the driver relies on the same behaviour: every submitted trial ends
in exactly one result, its epochs arrive before it in order, a failing trial reports why, a
stopped trial ends pruned after its current epoch, a killed one ends failed with the kill's
reason, and ``close`` may be called twice. The real executors run a cheap trial function that
behaves like the fake (``lr > 0.5`` raises), so the same assertions hold for all three.
"""

from __future__ import annotations

import sys
import time

import pytest

from tests.fake_executor import FakeExecutor
from transfer_automl.executors import LocalExecutor
from transfer_automl.trial import EpochMetrics, TrialContext, TrialResult, TrialSpec, TrialState

EPOCH_S = 0.3


def cheap_trial(spec, context, reporter):
    """Reports ``epochs`` epochs, ``EPOCH_S`` apart; ``lr > 0.5`` raises like the fake."""
    if spec.config["lr"] > 0.5:
        raise ValueError("boom")
    history = []
    for epoch in range(1, spec.config["epochs"] + 1):
        time.sleep(EPOCH_S)
        acc = 0.5 + 0.01 * epoch
        metrics = EpochMetrics(spec.trial_id, epoch, 1 - acc, acc, 1 - acc, acc, EPOCH_S)
        history.append(metrics)
        reporter(metrics)
    return TrialResult(spec.trial_id, TrialState.COMPLETE, score=history[-1].val_accuracy,
                       best_epoch=len(history), history=tuple(history))


def _fake():
    return FakeExecutor(slots=2)


def _local():
    return LocalExecutor(n_parallel=2, trial_fn=cheap_trial)


def _spark():
    pytest.importorskip("pyspark")
    from pyspark import cloudpickle

    from transfer_automl.executors.spark import SparkExecutor

    # Pytest imports this file under a name Spark's workers may not import: ship by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    return SparkExecutor("local[2]", trial_fn=cheap_trial)


@pytest.fixture(params=["fake", "local", "spark"])
def executor(request, tmp_path):
    ex = {"fake": _fake, "local": _local, "spark": _spark}[request.param]()
    ex.start(TrialContext("unused.json", str(tmp_path), "", ""))
    yield ex
    ex.close()


def _spec(n: int, lr: float = 0.01, epochs: int = 3) -> TrialSpec:
    return TrialSpec(f"t{n:03d}", n, {"lr": lr, "epochs": epochs}, "contract", seed=0)


def _drain(ex, ids, timeout_s: float = 120.0, on_epoch=None):
    """Poll until every trial in ``ids`` has a result; all events in arrival order."""
    events, done, deadline = [], set(), time.monotonic() + timeout_s
    while done != set(ids):
        assert time.monotonic() < deadline, f"no result for {set(ids) - done}"
        for event in ex.poll(0.2):
            events.append(event)
            if isinstance(event, TrialResult):
                done.add(event.trial_id)
            elif on_epoch is not None:
                on_epoch(event)
    return events


def test_every_trial_ends_in_one_result_after_its_epochs_in_order(executor):
    assert executor.n_slots >= 1
    specs = [_spec(0), _spec(1, epochs=2)][:executor.n_slots]
    for spec in specs:
        executor.submit(spec)
    events = _drain(executor, [s.trial_id for s in specs])
    for spec in specs:
        mine = [e for e in events if e.trial_id == spec.trial_id]
        assert isinstance(mine[-1], TrialResult) and mine[-1].state == TrialState.COMPLETE
        assert sum(isinstance(e, TrialResult) for e in mine) == 1
        assert [e.epoch for e in mine[:-1]] == list(range(1, spec.config["epochs"] + 1))


def test_a_failing_trial_reports_why_and_the_slot_serves_again(executor):
    executor.submit(_spec(0, lr=0.9))
    (result,) = [e for e in _drain(executor, ["t000"]) if isinstance(e, TrialResult)]
    assert result.state == TrialState.FAILED and "boom" in result.reason
    executor.submit(_spec(1))
    (result,) = [e for e in _drain(executor, ["t001"]) if isinstance(e, TrialResult)]
    assert result.state == TrialState.COMPLETE


def test_a_stopped_trial_ends_pruned_after_its_current_epoch(executor):
    executor.submit(_spec(0, epochs=50))
    asked = []

    def stop_once(metrics):
        if not asked:
            executor.stop(metrics.trial_id, "not promising")
            asked.append(metrics.epoch)

    events = _drain(executor, ["t000"], on_epoch=stop_once)
    result = events[-1]
    assert result.state == TrialState.PRUNED and "not promising" in result.reason
    assert len([e for e in events if isinstance(e, EpochMetrics)]) < 50


def test_a_killed_trial_ends_failed_with_the_reason(executor):
    executor.submit(_spec(0, epochs=50))
    killed = []

    def kill_once(metrics):
        if not killed:
            executor.kill(metrics.trial_id, "timed out after 1 s")
            killed.append(True)

    result = [e for e in _drain(executor, ["t000"], on_epoch=kill_once)
              if isinstance(e, TrialResult)]
    assert len(result) == 1
    assert result[0].state == TrialState.FAILED and "timed out after 1 s" in result[0].reason


def test_close_is_idempotent(executor):
    executor.close()
    executor.close()
