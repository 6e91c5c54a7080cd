"""Groups found by clustering, regrouping as the KB grows, and matching with novelty."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_base.grouping import cluster, ensure_groups, regroup
from knowledge_base.index import DatasetIndex, normalise
from knowledge_base.matching import Match, match, similarity

from .conftest import blobs


def _fill(kb, points, prefix="d"):
    ids = {}
    for n, (blob, vector) in enumerate(points):
        ids[kb.add_dataset(f"{prefix}{blob}_{n}", f"{prefix}-fp-{blob}-{n}", vector)] = blob
    return ids


def _partition(groups) -> set[frozenset[int]]:
    return {frozenset(g.members) for g in groups}


def _planted(ids) -> set[frozenset[int]]:
    return {frozenset(i for i, b in ids.items() if b == blob) for blob in set(ids.values())}


def test_finds_the_planted_clusters_and_regroups_when_a_new_one_arrives(sqlite_kb):
    centres, points = blobs(4, per_blob=6)
    three = [(b, v) for b, v in points if b < 3]
    ids = _fill(sqlite_kb, three)
    assert regroup(sqlite_kb, seed=0) == 1
    groups = sqlite_kb.groups()
    assert len(groups) == 3 and _partition(groups) == _planted(ids)

    ids.update(_fill(sqlite_kb, [(b, v) for b, v in points if b == 3], prefix="new"))
    groups = ensure_groups(sqlite_kb)  # the KB grew: a new version is computed
    assert groups[0].version == 2
    assert len(groups) == 4 and _partition(groups) == _planted(ids)
    assert ensure_groups(sqlite_kb)[0].version == 2  # nothing new: no regrouping
    assert len(sqlite_kb.groups(version=1)) == 3  # old versions are kept


def test_clustering_is_deterministic_and_degenerate_cases_form_one_group():
    _, points = blobs(3, per_blob=5, seed=3)
    x = normalise([v for _, v in points])
    a, b = cluster(x, seed=7), cluster(x, seed=7)
    assert a.k == 3 and np.array_equal(a.labels, b.labels)
    assert cluster(x[:2]).k == 1
    noise = normalise(np.random.default_rng(0).normal(size=(20, 16)))
    assert cluster(noise).k == 1  # no structure: one group


def test_match_ranks_the_right_group_first_and_flags_far_embeddings(sqlite_kb):
    centres, points = blobs(4, per_blob=6, seed=1)
    ids = _fill(sqlite_kb, [(b, v) for b, v in points if b < 3])
    rng = np.random.default_rng(5)
    for blob in range(3):
        m = match(sqlite_kb, centres[blob] + rng.normal(size=16) * 0.3, k_datasets=4)
        assert not m.novel
        assert {ids[i] for i in m.best_group.members} == {blob}
        assert [g.distance for g in m.groups] == sorted(g.distance for g in m.groups)
        assert len(m.neighbours) == 4 and all(ids[n.dataset_id] == blob for n in m.neighbours)
        assert all(0 < n.similarity <= 1 for n in m.neighbours)
        assert m.neighbours[0].distance <= m.threshold
    far = match(sqlite_kb, centres[3])  # the unseen fourth blob
    assert far.novel and far.neighbours[0].distance > far.threshold
    assert far.neighbours[0].similarity < 0.5
    assert far.to_dict()["novel"] is True


def test_a_kb_of_lone_domains_still_flags_an_unseen_one(sqlite_kb):
    """Every KB dataset its own domain (all equally far apart): nearest-neighbour distances
    are then distances between domains, and only the typical-pair bound can flag novelty."""
    axes = np.eye(16)
    common = axes[15]
    for i in range(6):  # pairwise distance 1.0 after normalisation
        sqlite_kb.add_dataset(f"lone{i}", f"fp-lone-{i}", common + axes[i])
    near = match(sqlite_kb, common + axes[0] + 0.05 * axes[9])
    assert not near.novel and near.neighbours[0].name == "lone0"
    unseen = match(sqlite_kb, axes[7])  # orthogonal to all of them: distance sqrt(2)
    assert unseen.novel and unseen.threshold == pytest.approx(1.0, abs=1e-4)
    index = DatasetIndex.from_kb(sqlite_kb)
    assert index.pairwise_distances() == pytest.approx(np.ones(15), abs=1e-4)
    assert 1.5 * index.nearest_neighbour_distances().max() > np.sqrt(2)  # the old rule alone


def test_empty_and_tiny_kbs(sqlite_kb):
    assert match(sqlite_kb, [1.0, 2.0, 3.0]) == Match()
    assert Match().novel and Match().best_group is None
    first = sqlite_kb.add_dataset("only", "fp-only", [1.0, 0.0, 0.0])
    m = match(sqlite_kb, [1.0, 0.01, 0.0])
    assert not m.novel and m.neighbours[0].dataset_id == first  # fallback threshold
    assert m.best_group.members == (first,)
    assert match(sqlite_kb, [0.0, 0.0, 1.0]).novel
    assert match(sqlite_kb, [1.0, 0.0]) == Match()  # another embedder's dimension: no data


def test_index_distances_and_similarity():
    index = DatasetIndex([1, 2, 3], ["a", "b", "c"], [[1, 0], [0, 2], [1, 1e-6]])
    [(first, name, dist), second] = index.search([3, 0], 2)
    assert (first, name) == (1, "a") and dist == pytest.approx(0.0, abs=1e-3)
    assert second[0] == 3
    assert index.nearest_neighbour_distances() == pytest.approx([0, np.sqrt(2), 0], abs=1e-3)
    assert similarity(0.0, 0.3) == 1.0 and similarity(0.3, 0.3) == pytest.approx(0.5)
