"""Seeded, stratified train/val/test splitting that never leaves a class without training data."""

from __future__ import annotations

import math

import numpy as np


def class_quota(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """How many of a class's ``n`` images go to train, val and test.

    Each held-out share is ``round(n * fraction)`` (halves round up) but at least 1 when its
    fraction is positive; then test, and after it val, give images back until train keeps at
    least 1. So 2 images give 1 train + 1 val, 3 give 1 + 1 + 1, and 1 image stays in train.

    Args:
        n: Images in the class.
        val_fraction: Requested share of validation images.
        test_fraction: Requested share of test images.

    Returns:
        ``(n_train, n_val, n_test)``, summing to ``n``.
    """
    n_val = max(1, math.floor(n * val_fraction + 0.5)) if val_fraction > 0 else 0
    n_test = max(1, math.floor(n * test_fraction + 0.5)) if test_fraction > 0 else 0
    while n_val + n_test > n - 1 and n_test > 0:
        n_test -= 1
    while n_val + n_test > n - 1 and n_val > 0:
        n_val -= 1
    return n - n_val - n_test, n_val, n_test


def stratified_split(
    labels: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split indices into train, val and test, class by class, reproducibly for a seed.

    Args:
        labels: Integer class label of every item.
        val_fraction: Share of each class for validation (see :func:`class_quota`).
        test_fraction: Share of each class for test.
        seed: Seed of the shuffle; the same labels and seed give the same split.

    Returns:
        Sorted index arrays ``(train, val, test)`` that partition ``range(len(labels))``.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_train, n_val, _ = class_quota(len(idx), val_fraction, test_fraction)
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train:n_train + n_val])
        parts[2].append(idx[n_train + n_val:])
    return tuple(  # type: ignore[return-value]
        np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for p in parts
    )
