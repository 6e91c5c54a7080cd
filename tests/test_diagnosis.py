import math

from transfer_automl.diagnosis import Verdict, diagnose
from transfer_automl.trial import EpochMetrics


def curve(train_acc, val_acc, loss=None, val_loss=None):
    n = len(val_acc)
    loss = loss or [1.0 / (i + 1) for i in range(n)]
    val_loss = val_loss or [1.0 / (i + 1) for i in range(n)]
    return [EpochMetrics("t", i + 1, loss[i], train_acc[i], val_loss[i], val_acc[i], 0.1)
            for i in range(n)]


def test_nan_loss_is_diverging_with_advice_to_lower_the_learning_rate():
    d = diagnose(curve([0.5, 0.3], [0.5, 0.2], loss=[1.0, math.nan]))
    assert d.verdict == Verdict.DIVERGING and "lower the learning rate" in d.advice
    assert d.colour == "red"


def test_exploding_loss_is_diverging():
    d = diagnose(curve([0.5, 0.4, 0.3], [0.5, 0.4, 0.3], loss=[1.0, 5.0, 40.0]))
    assert d.verdict == Verdict.DIVERGING


def test_overfitting_train_up_val_flat():
    train = [0.6, 0.8, 0.9, 0.97, 0.99, 1.0, 1.0]
    val = [0.6, 0.7, 0.72, 0.71, 0.70, 0.70, 0.69]
    vloss = [1.0, 0.8, 0.7, 0.75, 0.85, 0.95, 1.1]
    assert diagnose(curve(train, val, val_loss=vloss)).verdict == Verdict.OVERFITTING


def test_underfitting_low_plateau():
    train = [0.3, 0.35, 0.36, 0.36, 0.36, 0.36, 0.36]
    val = [0.3, 0.34, 0.35, 0.35, 0.35, 0.35, 0.35]
    d = diagnose(curve(train, val))
    assert d.verdict == Verdict.UNDERFITTING and "unfreeze" in d.advice


def test_converged_high_plateau():
    train = [0.8, 0.9, 0.93, 0.94, 0.94, 0.94, 0.94]
    val = [0.8, 0.88, 0.9, 0.9, 0.9, 0.9, 0.9]
    assert diagnose(curve(train, val)).verdict == Verdict.CONVERGED


def test_still_improving_and_too_short():
    assert diagnose(curve([0.5, 0.6, 0.7, 0.8], [0.5, 0.6, 0.7, 0.8])).verdict == Verdict.IMPROVING
    assert diagnose(curve([0.5], [0.5])).verdict == Verdict.TOO_SHORT


def test_exact_solutions_are_judged_by_their_generalisation_gap():
    from transfer_automl.diagnosis import Verdict, diagnose_trial
    from transfer_automl.trial import EpochMetrics

    exact = {"optimizer": "lbfgs"}
    fits = [EpochMetrics("t", 1, 0.1, 0.97, 0.2, 0.95, 0.1)]
    assert diagnose_trial(exact, fits).verdict == Verdict.CONVERGED
    gap = [EpochMetrics("t", 1, 0.01, 1.0, 0.9, 0.7, 0.1)]
    verdict = diagnose_trial(exact, gap)
    assert verdict.verdict == Verdict.OVERFITTING and "weight_decay" in verdict.advice
    # gradient-trained trials are judged by their curve as before
    assert diagnose_trial({"optimizer": "adam"}, fits).verdict == Verdict.TOO_SHORT
