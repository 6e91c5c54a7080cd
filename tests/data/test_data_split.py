"""Stratified, seeded splitting and the tiny-class rule."""

from __future__ import annotations

import numpy as np
import pytest

from transfer_automl.data._split import class_quota, stratified_split


@pytest.mark.parametrize(
    "n,expected",
    [(1, (1, 0, 0)), (2, (1, 1, 0)), (3, (1, 1, 1)), (4, (2, 1, 1)), (10, (6, 2, 2)), (20, (14, 3, 3)),
     (100, (70, 15, 15))],
)
def test_class_quota(n, expected):
    assert class_quota(n, 0.15, 0.15) == expected


def test_class_quota_without_test():
    assert class_quota(2, 0.15, 0.0) == (1, 1, 0)
    assert class_quota(10, 0.2, 0.0) == (8, 2, 0)


def test_split_partitions_and_stratifies():
    labels = np.repeat(np.arange(4), [40, 20, 7, 2])
    train, val, test = stratified_split(labels, 0.15, 0.15, seed=0)
    joined = np.concatenate([train, val, test])
    assert sorted(joined.tolist()) == list(range(len(labels)))
    assert np.bincount(labels[train], minlength=4).tolist() == [28, 14, 5, 1]
    assert np.bincount(labels[val], minlength=4).tolist() == [6, 3, 1, 1]
    assert np.bincount(labels[test], minlength=4).tolist() == [6, 3, 1, 0]


def test_split_is_deterministic_per_seed():
    labels = np.repeat(np.arange(3), 30)
    a = stratified_split(labels, 0.2, 0.2, seed=7)
    b = stratified_split(labels, 0.2, 0.2, seed=7)
    c = stratified_split(labels, 0.2, 0.2, seed=8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])
