"""The exact solver for linear heads on cached features: multinomial logistic regression.

A linear head on frozen, pooled features is a convex problem. Minibatch Adam gets near its
optimum after enough epochs; L-BFGS on the whole training set gets there in well under a
second for a few thousand images, with no learning rate, batch size or epoch count to get
wrong. The objective is the one the gradient path trains, so scores and weights compare:

    mean_i CE(softmax(x_i W + b), t_i) + weight_decay * ||W||^2

with ``t_i`` the one-hot label smoothed by ``label_smoothing`` (the bias is not penalised).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax
from threadpoolctl import threadpool_limits

MAX_ITER = 1000
GTOL = 1e-5


@dataclass(frozen=True)
class LinearSolution:
    """Weights of the fitted head and the solver's account of how it got there."""

    kernel: np.ndarray  # (features, classes)
    bias: np.ndarray  # (classes,)
    iterations: int
    converged: bool


def fit_linear(x: np.ndarray, y: np.ndarray, n_classes: int, weight_decay: float,
               label_smoothing: float = 0.0, max_iter: int = MAX_ITER,
               gtol: float = GTOL, init: LinearSolution | None = None) -> LinearSolution:
    """Minimise the smoothed cross-entropy plus the L2 penalty with L-BFGS (float64).

    Args:
        x: features, shape (n, d).
        y: integer labels in ``[0, n_classes)``, shape (n,).
        n_classes: number of classes (columns of the kernel).
        weight_decay: coefficient of ``||W||^2`` added to the mean loss.
        label_smoothing: share of each target spread evenly over all classes.
        max_iter: L-BFGS iterations at most.
        gtol: stop when no gradient component exceeds this (on the mean-loss scale).
        init: a solution to start from instead of zeros. Only one fitted on data disjoint
            from every row this solution will be scored on (benchmarks use it to measure
            the leak described next).

    Starting a cross-validation fold from another
    fold's solution is a leak, not a shortcut: that solution was trained on this fold's
    held-out rows, and with a weak penalty and more features than rows the problem is so
    flat that L-BFGS stops near where it started, scoring the held-out rows with weights
    that memorised them (random labels scored 0.81 against a chance of 0.14).
    """
    # The two products run in float32 (features are float32; twice as fast), everything
    # else, the softmax and what L-BFGS sees, in float64.
    x = np.ascontiguousarray(x, np.float32)
    n, d = x.shape
    targets = np.full((n, n_classes), label_smoothing / n_classes)
    targets[np.arange(n), np.asarray(y, np.int64)] += 1.0 - label_smoothing

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * n_classes].reshape(d, n_classes), theta[d * n_classes:]
        log_p = log_softmax((x @ w.astype(np.float32)).astype(np.float64) + b, axis=1)
        loss = -np.sum(targets * log_p) / n + weight_decay * np.sum(w * w)
        residual = (np.exp(log_p) - targets) / n
        grad_w = (x.T @ residual.astype(np.float32)).astype(np.float64) \
            + 2.0 * weight_decay * w
        return loss, np.concatenate([grad_w.ravel(), residual.sum(axis=0)])

    theta0 = np.zeros(d * n_classes + n_classes)
    if init is not None:
        theta0 = np.concatenate([init.kernel.ravel(), init.bias]).astype(np.float64)
    # Single-threaded BLAS: these products are small, and in a worker whose TensorFlow
    # threads are alive, more BLAS threads only fight over the cores (measured 1.6x slower).
    with threadpool_limits(limits=1, user_api="blas"):
        found = minimize(objective, theta0, jac=True, method="L-BFGS-B",
                         options={"maxiter": max_iter, "gtol": gtol})
    w = found.x[: d * n_classes].reshape(d, n_classes)
    return LinearSolution(w.astype(np.float32), found.x[d * n_classes:].astype(np.float32),
                          int(found.nit), bool(found.success))


def evaluate(solution: LinearSolution, x: np.ndarray, y: np.ndarray,
             label_smoothing: float = 0.0) -> tuple[float, float]:
    """Mean (smoothed) cross-entropy and accuracy of the fitted head on ``(x, y)``."""
    logits = np.asarray(x, np.float64) @ solution.kernel + solution.bias
    log_p = log_softmax(logits, axis=1)
    n_classes = logits.shape[1]
    y = np.asarray(y, np.int64)
    nll = -log_p[np.arange(len(y)), y]
    smooth = -log_p.mean(axis=1)
    loss = float(np.mean((1.0 - label_smoothing) * nll + label_smoothing * smooth))
    return loss, float(np.mean(np.argmax(logits, axis=1) == y))
