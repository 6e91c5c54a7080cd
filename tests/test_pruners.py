import math

from transfer_automl.pruners import ASHAPruner, AnyPruner, CurvePruner, MedianPruner
from transfer_automl.study import TrialRecord
from transfer_automl.trial import EpochMetrics, TrialResult, TrialSpec, TrialState


def record(trial_id, vals, epochs=10, losses=None, finished=False):
    r = TrialRecord(TrialSpec(trial_id, 0, {"epochs": epochs}, "test", 0))
    losses = losses or [1.0] * len(vals)
    r.epochs = [EpochMetrics(trial_id, i + 1, losses[i], v, losses[i], v, 0.0)
                for i, v in enumerate(vals)]
    if finished:
        r.state = TrialState.COMPLETE
        r.result = TrialResult(trial_id, TrialState.COMPLETE, score=max(vals))
    return r


def test_median_rule_stops_below_median_only_with_enough_evidence():
    done = [record(f"d{i}", [0.5, 0.6, 0.7 + 0.01 * i, 0.8], finished=True) for i in range(3)]
    bad = record("bad", [0.2, 0.3, 0.4])
    good = record("good", [0.5, 0.7, 0.9])
    pruner = MedianPruner(min_epochs=3, min_trials=3)
    assert "median rule" in pruner.prune(bad, done)
    assert pruner.prune(good, done) is None
    assert pruner.prune(bad, done[:2]) is None          # too few finished trials
    assert pruner.prune(record("early", [0.1, 0.1]), done) is None  # before min_epochs


def test_asha_keeps_the_top_third_at_rungs():
    done = [record(f"d{i}", [0.1 * i + 0.1, 0.1 * i + 0.2], finished=True) for i in range(5)]
    pruner = ASHAPruner(min_epochs=2, eta=3)
    assert pruner.rungs(20) == [2, 6, 18]
    assert "ASHA" in pruner.prune(record("low", [0.05, 0.1]), done)
    assert pruner.prune(record("top", [0.9, 0.95]), done) is None
    assert pruner.prune(record("off-rung", [0.05, 0.1, 0.1]), done) is None


def test_curve_pruner_stops_diverging_and_stalled_trials():
    pruner = CurvePruner(patience=3)
    nan = record("nan", [0.5, 0.4], losses=[1.0, math.nan])
    assert pruner.prune(nan, []).startswith("diverging: lower the learning rate")
    stalled = record("stall", [0.5, 0.8, 0.8, 0.79, 0.8])
    assert "stalled" in pruner.prune(stalled, [])
    assert pruner.prune(record("up", [0.5, 0.6, 0.7, 0.8, 0.9]), []) is None


def test_any_pruner_returns_the_first_reason():
    nan = record("nan", [0.5, 0.4], losses=[1.0, math.inf])
    assert AnyPruner(MedianPruner(), CurvePruner()).prune(nan, []).startswith("diverging")


def test_median_rule_ignores_pruned_peers():
    done = [record(f"d{i}", [0.5, 0.6, 0.7, 0.8], finished=True) for i in range(3)]
    for r in done:
        r.state = TrialState.PRUNED
    assert MedianPruner(min_epochs=3, min_trials=3).prune(record("x", [0.1, 0.1, 0.1]), done) is None
