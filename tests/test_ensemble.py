"""Greedy ensemble selection on held-out predictions."""

from types import SimpleNamespace

import numpy as np
import pytest

from transfer_automl.ensemble import Candidate, load_candidates, select

FROZEN = {"backbone": "efficientnet_lite0", "resolution": 224, "unfrozen_blocks": 0}


def _candidate(trial_id, proba, rows=None, **config):
    rows = np.arange(len(proba)) if rows is None else rows
    return Candidate(trial_id, {**FROZEN, **config}, np.asarray(rows), np.asarray(proba))


def _experts(n=40, seed=0):
    """Two trials, each sure and right on its own half of the images, unsure elsewhere."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    sure, unsure = np.eye(2)[y] * 0.9 + 0.05, np.full((n, 2), 0.5)
    unsure[np.arange(n), 1 - y] += 0.05  # a slight lean to the wrong class
    half = np.arange(n) < n // 2
    a = np.where(half[:, None], sure, unsure)
    b = np.where(half[:, None], unsure, sure)
    return y, a, b


def test_complementary_trials_make_an_ensemble_that_beats_each():
    y, a, b = _experts()
    ens = select([_candidate("a", a), _candidate("b", b)], y)
    assert ens is not None
    assert set(ens.weights) == {"a", "b"}
    assert sum(ens.weights.values()) == pytest.approx(1.0)
    assert ens.accuracy == 1.0 and ens.single_accuracy == 0.5
    assert ens.n_images == len(y) and ens.passes == 1


def test_no_ensemble_when_one_trial_is_best_alone():
    y, a, _ = _experts()
    perfect = np.eye(2)[y] * 0.98 + 0.01
    assert select([_candidate("p", perfect), _candidate("a", a)], y) is None


def test_forward_passes_are_bounded():
    y, a, b = _experts()
    other = [_candidate("a", a), _candidate("b", b, backbone="efficientnet_lite2")]
    assert select(other, y, max_passes=2).passes == 2
    assert select(other, y, max_passes=1) is None  # b needs a second backbone pass
    tuned = [_candidate("a", a), _candidate("b", b, unfrozen_blocks=2)]
    assert select(tuned, y, max_passes=1) is None  # a fine-tuned member has its own pass
    fused = [_candidate("a", a), _candidate("b", b, fusion="efficientnet_lite0+efficientnet_lite1")]
    assert select(fused, y, max_passes=2) is None  # b alone needs two passes
    assert select(fused, y, max_passes=3).passes == 3
    assert select(fused[::-1], y, max_passes=1) is None  # a best member over the bound


def test_choice_rests_on_the_best_trials_held_out_images():
    """A validation-only trial cannot join a cross-validated best trial's ensemble."""
    y, a, b = _experts()
    val_only = _candidate("b", b[30:], rows=np.arange(30, 40))
    assert select([_candidate("a", a), val_only], y) is None
    # the other way round: the choice rests on the 10 validation images both predicted
    y2 = y.copy()
    ens = select([_candidate("b", b[20:], rows=np.arange(20, 40)), _candidate("a", a)], y2)
    assert ens is None or ens.n_images == 20


def test_candidates_are_read_beside_the_checkpoints(tmp_path):
    records = []
    for i, score in enumerate([0.7, 0.9, 0.8]):
        d = tmp_path / f"t{i}"
        d.mkdir()
        (d / "weights.npz").write_bytes(b"")
        if i != 2:  # t2 kept no held-out predictions
            np.savez(d / "heldout.npz", rows=np.arange(3), proba=np.full((3, 2), 0.5))
        records.append(SimpleNamespace(
            spec=SimpleNamespace(trial_id=f"t{i}", number=i, config=FROZEN),
            result=SimpleNamespace(score=score, artifact=str(d / "weights.npz")),
            state=SimpleNamespace(value="complete")))
    assert [c.trial_id for c in load_candidates(records, 5)] == ["t1", "t0"]
    assert [c.trial_id for c in load_candidates(records, 1)] == ["t1"]
