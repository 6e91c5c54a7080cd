"""Objectives the Spark benchmark runs inside Spark tasks: cheap, deterministic, picklable.

The benchmark registers this module with ``cloudpickle.register_pickle_by_value`` because
Spark's Python workers cannot import ``benchmarks/`` by name.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np

from transfer_automl.errors import TrialPruned
from transfer_automl.space import Choice, Float, SearchSpace
from transfer_automl.trial import EpochMetrics, TrialResult, TrialState


def synthetic_space(epoch_min: float, epoch_max: float, epochs: int) -> SearchSpace:
    """Two knobs: a learning rate that sets the final value, an epoch time that sets the cost."""
    return SearchSpace((Float("learning_rate", 1e-4, 1e-1, log=True),
                        Float("epoch_s", epoch_min, epoch_max, log=True),
                        Choice("epochs", (epochs,))),
                       {"learning_rate": 3e-3, "epoch_s": epoch_min, "epochs": epochs})


def curve_value(learning_rate: float, epoch: int, epochs: int, seed: int) -> float:
    """Validation accuracy at ``epoch``: saturating in epochs, peaked in log learning rate.

    Far from lr = 3e-3 the curve tops out near 0.35, at it near 0.95, so bad trials are
    visible after a few epochs; a little seeded noise keeps curves from being exact copies.
    """
    quality = math.exp(-((math.log10(learning_rate) + 2.5) ** 2) / (2 * 0.6 ** 2))
    final = 0.35 + 0.6 * quality
    shape = (1 - math.exp(-epoch / 2.5)) / (1 - math.exp(-epochs / 2.5))
    noise = 0.01 * np.random.default_rng([seed, epoch]).standard_normal()
    return float(min(1.0, max(0.0, final * shape + noise)))


def curve_trial(spec, context, reporter) -> TrialResult:
    """Sleep ``epoch_s`` per epoch, report each epoch, stop when the driver says so."""
    start, wall_start = time.monotonic(), time.time()
    config, epochs = spec.config, int(spec.config["epochs"])
    history: list[EpochMetrics] = []
    state, reason = TrialState.COMPLETE, ""
    try:
        for epoch in range(1, epochs + 1):
            time.sleep(config["epoch_s"])
            value = curve_value(config["learning_rate"], epoch, epochs, spec.seed)
            metrics = EpochMetrics(spec.trial_id, epoch, 1.0 - value, value, 1.0 - value,
                                   value, config["epoch_s"])
            history.append(metrics)
            reporter(metrics)
    except TrialPruned as exc:  # caught here (not by the task) to keep history and timing
        state, reason = TrialState.PRUNED, str(exc)
    best = max(history, key=lambda m: m.val_accuracy) if history else None
    return TrialResult(spec.trial_id, state, score=best.val_accuracy if best else None,
                       best_epoch=best.epoch if best else None, history=tuple(history),
                       reason=reason, seconds=time.monotonic() - start, artifact="none",
                       extra={"pid": os.getpid(), "t0": wall_start, "t1": time.time()})


def run_full_trial(spec) -> TrialResult:
    """The synchronous baseline's map function: the same trial, nobody listening."""
    return curve_trial(spec, None, lambda metrics: None)


def trivial_trial(spec, context, reporter) -> TrialResult:
    """An objective that does nothing: what remains of a trial's time is dispatch."""
    return TrialResult(spec.trial_id, TrialState.COMPLETE, score=0.0, artifact="none")


def trivial_objective(params) -> float:
    """The same nothing, in hyperopt's calling convention."""
    return 0.0
