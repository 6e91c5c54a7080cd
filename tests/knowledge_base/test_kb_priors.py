"""Priors from a match: the group's winning backbone, weighted points, rank-normalised history."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_base.matching import GroupMatch, Match, Neighbour
from knowledge_base.priors import priors, rank_normalise
from transfer_automl.samplers import Observation
from transfer_automl.space import default_space

NAMES = ("backbone", "lr", "units")


def _run(kb, ds, run_id, trials):
    kb.start_run(run_id, ds)
    for n, (backbone, lr, score, status) in enumerate(trials):
        kb.record_trial(run_id, {"trial_id": f"t{n:03d}", "number": n, "status": status,
                                 "config": {"backbone": backbone, "lr": lr, "units": 8},
                                 "score": score})
    kb.finish_run(run_id)


@pytest.fixture
def two_datasets(sqlite_kb):
    """Dataset A (easy: high accuracies) and B (hard) in one group; lite1 wins on both by rank."""
    a = sqlite_kb.add_dataset("easy", "fp-a", [1.0, 0.0, 0.0])
    b = sqlite_kb.add_dataset("hard", "fp-b", [0.9, 0.1, 0.0])
    _run(sqlite_kb, a, "ra", [("lite0", 0.1, 0.95, "complete"), ("lite0", 0.2, 0.96, "complete"),
                              ("lite1", 0.01, 0.99, "complete"), ("lite1", 0.02, 0.98, "complete"),
                              ("lite0", 0.3, None, "failed")])
    _run(sqlite_kb, b, "rb", [("lite0", 0.1, 0.30, "complete"), ("lite1", 0.015, 0.42, "complete"),
                              ("lite1", 0.03, 0.40, "pruned"), ("lite0", 0.2, 0.35, "complete")])
    return sqlite_kb, a, b


def _match(a, b, novel=False):
    return Match(groups=(GroupMatch(1, 0.1, (a, b)),),
                 neighbours=(Neighbour(a, "easy", 0.05, 0.9), Neighbour(b, "hard", 0.2, 0.5)),
                 novel=novel, threshold=0.3, groups_version=1)


def test_rank_normalise():
    assert rank_normalise([0.2, 0.9, 0.5]).tolist() == [0.0, 1.0, 0.5]
    assert rank_normalise([1.0, 1.0, 0.0]).tolist() == [0.75, 0.75, 0.0]
    assert rank_normalise([0.7]).tolist() == [0.5] and rank_normalise([]).size == 0


def test_backbone_that_won_on_the_group_with_its_evidence(two_datasets):
    kb, a, b = two_datasets
    p = priors(_match(a, b), kb, NAMES)
    assert p.backbone.name == "lite1" and p.backbone.confident and p.backbone.group_id == 1
    ev = p.backbone.evidence
    assert (ev["lite1"].count, ev["lite1"].datasets, ev["lite0"].count) == (4, 2, 4)
    assert ev["lite1"].mean > ev["lite0"].mean
    # On raw accuracy lite0's 0.95/0.96 on the easy dataset would beat lite1's 0.42 on the hard one.
    assert ev["lite1"].mean == pytest.approx(np.mean([1, 2 / 3, 1, 2 / 3]))


def test_points_are_weighted_diverse_and_tagged_with_their_source(two_datasets):
    kb, a, b = two_datasets
    p = priors(_match(a, b), kb, NAMES, n_points=3)
    assert [pt.source for pt in p.points] == ["kb:easy/ra/t002", "kb:hard/rb/t001",
                                              "kb:easy/ra/t003"]
    assert p.points[0].config == {"backbone": "lite1", "lr": 0.01, "units": 8}
    assert p.points[0].weight == pytest.approx(0.9) and p.points[1].weight == pytest.approx(0.5)
    assert len({tuple(sorted(pt.config.items())) for pt in p.points}) == 3
    # The same configuration from two datasets is proposed once.
    kb.record_trial("rb", {"trial_id": "t001", "config": {"backbone": "lite1", "lr": 0.01,
                                                          "units": 8}})
    p = priors(_match(a, b), kb, NAMES, n_points=3)
    assert [pt.source for pt in p.points] == ["kb:easy/ra/t002", "kb:easy/ra/t003",
                                              "kb:hard/rb/t003"]


def test_history_is_rank_normalised_thinned_and_limited_to_the_space(two_datasets):
    kb, a, b = two_datasets
    p = priors(_match(a, b), kb, NAMES)
    assert all(isinstance(o, Observation) and 0.0 <= o.score <= 1.0 for o in p.history)
    assert all(set(o.config) == set(NAMES) for o in p.history)
    # easy: similarity 0.9 keeps ceil(0.9 * 4) = 4 scored trials; hard: ceil(0.5 * 4) = 2
    # spread over its ranking, i.e. its worst and its best.
    assert len(p.history) == 6
    assert sorted(o.score for o in p.history[:4]) == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert [o.score for o in p.history[4:]] == [0.0, 1.0]
    # Configs lacking a parameter of the space are left out.
    assert priors(_match(a, b), kb, NAMES + ("dropout",)).history == ()
    # A SearchSpace also filters by validity: "lite0"/"lite1" are not among its backbones.
    assert priors(_match(a, b), kb, default_space(("efficientnet_lite0",))).points == ()


def test_novel_match_backs_off_but_still_suggests_a_backbone(two_datasets):
    kb, a, b = two_datasets
    p = priors(_match(a, b, novel=True), kb, NAMES)
    assert p.novel and p.points == () and p.history == ()
    assert p.backbone.name == "lite1" and not p.backbone.confident


def test_empty_kb_gives_nothing(sqlite_kb):
    p = priors(Match(), sqlite_kb, NAMES)
    assert p.novel and p.backbone.name is None and p.points == () and p.history == ()


def test_priors_warm_start_a_study_end_to_end(sqlite_kb):
    """KB trials -> match -> priors -> Study: points are asked first with their source as
    origin, the history informs TPE, and the new trials record which prior they came from."""
    from knowledge_base import match, trial_record
    from transfer_automl.study import Study
    from transfer_automl.trial import TrialResult, TrialState

    space = default_space(("efficientnet_lite0", "efficientnet_lite1"))
    rng = np.random.default_rng(0)
    for d in range(3):
        ds = sqlite_kb.add_dataset(f"old{d}", f"fp-old{d}", [1.0, 0.1 * d, 0.0])
        sqlite_kb.start_run(f"old-run{d}", ds)
        for n in range(6):
            config = space.complete({"learning_rate": float(10 ** rng.uniform(-4, -1.6)),
                                     "backbone": ("efficientnet_lite0",
                                                  "efficientnet_lite1")[n % 2]})
            sqlite_kb.record_trial(f"old-run{d}", {
                "trial_id": f"t{n:03d}", "number": n, "config": config, "status": "complete",
                "score": 0.5 + 0.05 * n + 0.1 * (config["backbone"] == "efficientnet_lite1")})
        sqlite_kb.finish_run(f"old-run{d}")

    m = match(sqlite_kb, [1.0, 0.1, 0.0], k_datasets=3)
    p = priors(m, sqlite_kb, space, n_points=2)
    assert not m.novel and p.backbone.name == "efficientnet_lite1"
    assert len(p.points) == 2 and len(p.history) > 0

    study = Study(space.fix(backbone=p.backbone.name), seed=0, history=p.history)
    for point in p.points:
        study.enqueue(point.config, origin=point.source)
    new = sqlite_kb.add_dataset("new", "fp-new", [1.0, 0.1, 0.0])
    sqlite_kb.start_run("new-run", new)
    specs = [study.ask() for _ in range(3)]
    assert [s.origin for s in specs[:2]] == [pt.source for pt in p.points]
    assert specs[2].origin not in {pt.source for pt in p.points}  # sampled, with history
    for spec in specs:
        result = TrialResult(spec.trial_id, TrialState.COMPLETE, score=0.9, best_epoch=1)
        sqlite_kb.record_trial("new-run", trial_record(spec, result))
    stored = sqlite_kb.trials(run_id="new-run")
    assert [t.prior for t in stored] == [pt.source for pt in p.points] + [None]


def test_cold_mode_matches_but_never_applies_the_kb(sqlite_kb):
    """warm_start="none" is a cold search: the match is reported, the backbone stays the
    space's default and nothing is enqueued; "auto" fixes the group's winning backbone."""
    from transfer_automl import warmstart

    space = default_space(("efficientnet_lite0", "efficientnet_lite1"))
    for d in range(3):
        ds = sqlite_kb.add_dataset(f"old{d}", f"fp-old{d}", [1.0, 0.1 * d, 0.0])
        sqlite_kb.start_run(f"old-run{d}", ds)
        for n in range(4):
            config = space.complete({"backbone": ("efficientnet_lite0",
                                                  "efficientnet_lite1")[n % 2],
                                     "learning_rate": 1e-3 * (n + 1)})
            sqlite_kb.record_trial(f"old-run{d}", {
                "trial_id": f"t{n:03d}", "number": n, "config": config, "status": "complete",
                "score": 0.5 + 0.1 * (n % 2) + 0.01 * n})
        sqlite_kb.finish_run(f"old-run{d}")

    cold_space, p, cold = warmstart.plan(sqlite_kb, [1.0, 0.1, 0.0], space, "none")
    assert cold.mode == "none" and cold.group is not None and not cold.group["novel"]
    assert cold_space.param("backbone").options == space.param("backbone").options
    assert cold.backbone == {"name": "efficientnet_lite0", "why": "default; warm start off"}

    warm_space, p, warm = warmstart.plan(sqlite_kb, [1.0, 0.1, 0.0], space, "auto")
    assert warm.mode == "points+history" and p.points
    assert warm_space.param("backbone").options == ("efficientnet_lite1",)
    assert warm.backbone["name"] == "efficientnet_lite1"
