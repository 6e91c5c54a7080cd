"""Radon points and the Radon machine head: geometry, aggregation, where it does not apply, and
partitions run as Spark tasks."""

import numpy as np
import pytest

from transfer_automl.errors import InputError
from transfer_automl.radon import (RadonMachine, SparkMap, iterated_radon_point, max_dims,
                                   radon_point)


def test_radon_point_of_a_square_is_its_centre():
    square = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(radon_point(square), [0.5, 0.5], atol=1e-12)


def test_radon_point_lies_in_the_hulls_of_both_parts():
    rng = np.random.default_rng(0)
    points = rng.normal(size=(7, 5))  # r = d + 2
    system = np.vstack([points.T, np.ones((1, 7))])
    lam = np.linalg.svd(system)[2][-1]
    pos, neg = lam > 0, lam <= 0
    left = lam[pos] @ points[pos] / lam[pos].sum()
    right = lam[neg] @ points[neg] / lam[neg].sum()
    np.testing.assert_allclose(radon_point(points), left)
    np.testing.assert_allclose(left, right, atol=1e-9)  # the same point from either side


def test_too_few_points_and_wrong_counts_are_refused():
    with pytest.raises(InputError, match="at least 5 points"):
        radon_point(np.zeros((4, 3)))
    with pytest.raises(InputError, match="r \\*\\* height = 25"):
        iterated_radon_point(np.zeros((24, 3)), 5, 2)


def test_iterated_radon_point_resists_outlying_models():
    rng = np.random.default_rng(1)
    models = rng.normal(size=(25, 3)) * 0.1 + 1.0  # r = 5, h = 2
    models[[0, 7, 13]] += 50.0  # three wild partition models
    radon = iterated_radon_point(models, 5, 2)
    assert np.abs(radon - 1.0).max() < 1.0  # the average is dragged about 6 away
    assert np.abs(models.mean(axis=0) - 1.0).max() > 5.0


def _blobs(n, classes=3, width=40, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, width)) * 2.0
    y = rng.integers(0, classes, size=n)
    return (centres[y] + rng.normal(size=(n, width))).astype(np.float32), y


def test_radon_machine_is_close_to_the_learner_on_all_data():
    from sklearn.linear_model import LogisticRegression

    x, y = _blobs(3000)
    x, xt, y, yt = x[:2000], x[2000:], y[:2000], y[2000:]
    machine = RadonMachine(height=1, dims=8, seed=0).fit(x, y)
    assert machine.n_partitions_ == 11 and machine.partition_weights_.shape == (11, 3, 9)
    radon = (machine.predict(xt) == yt).mean()
    averaged = (machine.predict(xt, machine.averaged_) == yt).mean()
    whole = (LogisticRegression(max_iter=1000).fit(x, y).predict(xt) == yt).mean()
    assert radon > whole - 0.02 and averaged > whole - 0.02


def test_it_says_where_it_does_not_apply():
    x, y = _blobs(100)
    assert max_dims(100, height=2) == 0 and max_dims(100, height=1) == 3
    with pytest.raises(InputError, match="does not apply.*learner on all the data"):
        RadonMachine(height=2).fit(x, y)
    with pytest.raises(InputError, match="height"):
        RadonMachine(height=0)


@pytest.mark.slow
def test_partitions_run_as_spark_tasks(tmp_path):
    pytest.importorskip("pyspark")
    from transfer_automl.executors.spark_session import default_conf, get_or_create

    session, created = get_or_create("local[2]", defaults=default_conf())
    try:
        x, y = _blobs(1500, seed=3)
        here = RadonMachine(dims=6, seed=2).fit(x, y)
        there = RadonMachine(dims=6, seed=2).fit(x, y, mapper=SparkMap(session.sparkContext),
                                                 workdir=tmp_path)
        np.testing.assert_allclose(there.weights_, here.weights_, rtol=1e-6, atol=1e-8)
    finally:
        if created:
            session.stop()
