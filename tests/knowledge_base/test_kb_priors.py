"""Priors from a match: the group's winning backbone, weighted points, rank-normalised history."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge_base.matching import GroupMatch, Match, Neighbour
from knowledge_base.priors import priors, rank_normalise
from transfer_automl.trial import Observation
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
    # Ranks, not raw accuracy: lite0's 0.95/0.96 on the easy dataset would beat lite1's 0.42
    # on the hard one.
    assert 1 >= ev["lite1"].mean > ev["lite0"].mean >= 0
    assert p.backbone.reason == "best on the matched group"  # names carry no default


def _backbone_trials(kb, space, rows_per_dataset):
    """Three datasets, each running ``rows_per_dataset`` of ``(backbone, lr, score)``."""
    for d in range(3):
        ds = kb.add_dataset(f"old{d}", f"fp-old{d}", [1.0, 0.1 * d, 0.0])
        kb.start_run(f"old-run{d}", ds)
        for n, (backbone, lr, score) in enumerate(rows_per_dataset):
            kb.record_trial(f"old-run{d}", {
                "trial_id": f"t{n:03d}", "number": n, "status": "complete", "score": score + d / 100,
                "config": space.complete({"backbone": backbone, "learning_rate": lr})})
        kb.finish_run(f"old-run{d}")
    return _near(*((i, f"old{i - 1}", 0.8) for i in (1, 2, 3)))


def test_a_backbone_is_not_credited_with_the_settings_it_happened_to_run_with(sqlite_kb):
    """Lite1 ran only with the good learning rate; at that rate Lite0 did as well. The mean
    rank of each backbone's trials would pick Lite1; at matched settings neither is ahead,
    so the space's default, Lite0, is kept, and says why."""
    space = default_space(("efficientnet_lite0", "efficientnet_lite1"))
    good, bad = 3e-3, 2e-4
    m = _backbone_trials(sqlite_kb, space, [
        ("efficientnet_lite0", good, 0.90), ("efficientnet_lite1", good, 0.90),
        ("efficientnet_lite0", good * 1.1, 0.89), ("efficientnet_lite1", good * 1.1, 0.89),
        ("efficientnet_lite0", bad, 0.50), ("efficientnet_lite0", bad * 1.1, 0.49)])
    choice = priors(m, sqlite_kb, space).backbone
    assert choice.name == "efficientnet_lite0" and choice.confident
    ev = choice.evidence
    assert abs(ev["efficientnet_lite1"].mean - ev["efficientnet_lite0"].mean) < 0.05
    assert choice.reason.startswith("the default")


def test_the_default_backbone_gives_way_to_a_clearly_better_one(sqlite_kb):
    space = default_space(("efficientnet_lite0", "efficientnet_lite1"))
    m = _backbone_trials(sqlite_kb, space, [
        (b, lr, 0.5 + 0.3 * (b == "efficientnet_lite1") + lr)
        for lr in (1e-3, 2e-3, 3e-3) for b in ("efficientnet_lite0", "efficientnet_lite1")])
    choice = priors(m, sqlite_kb, space).backbone
    assert choice.name == "efficientnet_lite1"
    assert choice.reason.startswith("ahead of the default efficientnet_lite0 by")
    # Demanding a larger gain than the evidence shows keeps the default.
    gain = choice.evidence["efficientnet_lite1"].mean - choice.evidence["efficientnet_lite0"].mean
    assert priors(m, sqlite_kb, space, min_gain=gain + 0.01).backbone.name == "efficientnet_lite0"


def _scores(kb, name, fp, vector, run_id, rows, status="complete"):
    """A dataset whose run scored ``rows`` of ``(lr, score)``."""
    ds = kb.add_dataset(name, fp, vector)
    kb.start_run(run_id, ds)
    for n, (lr, score) in enumerate(rows):
        kb.record_trial(run_id, {"trial_id": f"t{n:03d}", "number": n, "status": status,
                                 "config": {"backbone": "lite0", "lr": lr, "units": 8},
                                 "score": score})
    kb.finish_run(run_id)
    return ds


def _near(*neighbours):
    ids = tuple(i for i, _, _ in neighbours)
    return Match(groups=(GroupMatch(1, 0.1, ids),),
                 neighbours=tuple(Neighbour(i, name, 0.1, s) for i, name, s in neighbours),
                 novel=False, threshold=0.3, groups_version=1)


def test_points_pass_over_a_configuration_that_only_one_neighbour_likes(sqlite_kb):
    """The nearest dataset's best is poor on the two others; a configuration second-best on
    the nearest and good on the others comes first."""
    spiky, steady = 0.5, 0.01
    a = _scores(sqlite_kb, "a", "fp-a", [1, 0, 0], "ra",
                [(spiky, 0.99), (steady, 0.95), (0.1, 0.90), (0.2, 0.80)])
    b = _scores(sqlite_kb, "b", "fp-b", [0, 1, 0], "rb",
                [(spiky, 0.20), (steady, 0.70), (0.1, 0.60), (0.2, 0.50)])
    c = _scores(sqlite_kb, "c", "fp-c", [0, 0, 1], "rc",
                [(spiky, 0.30), (steady, 0.90), (0.1, 0.80), (0.2, 0.70)])
    p = priors(_near((a, "a", 0.9), (b, "b", 0.8), (c, "c", 0.8)), sqlite_kb, NAMES,
               n_points=1)
    assert [pt.config["lr"] for pt in p.points] == [steady]
    assert p.points[0].source == "kb:a/ra/t001"  # from the nearest dataset that ran it
    # weight: the similarity-weighted mean rank, 2/3 on a and 1 on b and c
    assert p.points[0].weight == pytest.approx((0.9 * 2 / 3 + 0.8 + 0.8) / 2.5)


def test_points_come_in_order_of_their_estimate_each_once(sqlite_kb):
    """x is best on a only, z on b only, y second on both: y first, then x and z (ties go to
    the nearer source); w, middling on both, comes last. Each configuration is proposed once
    although both datasets ran it."""
    a = _scores(sqlite_kb, "a", "fp-a", [1, 0, 0], "ra",
                [(0.1, 0.9), (0.2, 0.8), (0.3, 0.1), (0.4, 0.5)])  # x y z w
    b = _scores(sqlite_kb, "b", "fp-b", [0, 1, 0], "rb",
                [(0.1, 0.1), (0.2, 0.8), (0.3, 0.9), (0.4, 0.5)])
    p = priors(_near((a, "a", 0.7), (b, "b", 0.7)), sqlite_kb, NAMES, n_points=3)
    assert [pt.config["lr"] for pt in p.points] == [0.2, 0.1, 0.3]
    assert [pt.source for pt in p.points] == ["kb:a/ra/t001", "kb:a/ra/t000", "kb:a/ra/t002"]
    assert [pt.weight for pt in p.points] == pytest.approx([2 / 3, 0.5, 0.5])
    assert len(priors(_near((a, "a", 0.7), (b, "b", 0.7)), sqlite_kb, NAMES,
                      n_points=10).points) == 4


def test_a_neighbour_that_never_ran_a_configuration_judges_it_by_the_pooled_forest(sqlite_kb):
    """Two of a's configurations tie on a; b never ran either, but its trials say small
    learning rates do well there, so the small one comes first. b's trials were pruned:
    they inform the estimate without being candidates themselves."""
    a = _scores(sqlite_kb, "a", "fp-a", [1, 0, 0], "ra", [(0.15, 0.9), (0.0015, 0.9), (0.5, 0.3)])
    b = _scores(sqlite_kb, "b", "fp-b", [0, 1, 0], "rb",
                [(0.001, 0.90), (0.002, 0.92), (0.003, 0.91), (0.1, 0.30), (0.2, 0.31),
                 (0.3, 0.32)], status="pruned")
    p = priors(_near((a, "a", 0.9), (b, "b", 0.9)), sqlite_kb, NAMES, n_points=2)
    assert [pt.config["lr"] for pt in p.points] == [0.0015, 0.15]
    assert all(pt.source.startswith("kb:a/") for pt in p.points)
    assert p.points[0].weight > 0.75 / 2 + 0.5 / 2 > p.points[1].weight


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


def test_novel_match_backs_off_to_what_works_across_the_kb(two_datasets):
    """Far from everything, the neighbours' similarities mean nothing: no history, and the
    points are ranked over every KB dataset weighted alike, whichever the match lists."""
    kb, a, b = two_datasets
    p = priors(_match(a, b, novel=True), kb, NAMES, n_points=2)
    assert p.novel and p.history == ()
    assert p.backbone.name == "lite1" and not p.backbone.confident
    alike = Match(neighbours=(Neighbour(a, "easy", 0.1, 1.0), Neighbour(b, "hard", 0.1, 1.0)),
                  novel=False, threshold=0.3)
    expected = priors(alike, kb, NAMES, n_points=2).points
    assert len(expected) == 2 and p.points == expected
    # Only the hard dataset listed, barely similar: the easy one still counts as much.
    lone = Match(neighbours=(Neighbour(b, "hard", 0.9, 0.01),), novel=True, threshold=0.3)
    assert priors(lone, kb, NAMES, n_points=2).points == expected
    # Not novel, that lone neighbour decides alone: its own best run comes first.
    near = Match(neighbours=(Neighbour(b, "hard", 0.1, 0.9),), novel=False, threshold=0.3)
    assert priors(near, kb, NAMES, n_points=2).points[0].source == "kb:hard/rb/t001"


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
    space's default and nothing is enqueued; "auto" fixes the group's winning backbone, or
    for a dataset far from everything, only enqueues the KB-wide points."""
    from transfer_automl import planning

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

    cold_space, p, cold = planning.plan(sqlite_kb, [1.0, 0.1, 0.0], space, "none")
    assert cold.mode == "none" and cold.group is not None and not cold.group["novel"]
    assert cold_space.param("backbone").options == space.param("backbone").options
    assert cold.backbone == {"name": "efficientnet_lite0", "why": "default; warm start off"}

    warm_space, p, warm = planning.plan(sqlite_kb, [1.0, 0.1, 0.0], space, "auto")
    assert warm.mode == "points+history" and p.points
    assert warm_space.param("backbone").options == ("efficientnet_lite1",)
    assert warm.backbone["name"] == "efficientnet_lite1"

    # Far from all three: "auto" keeps the default backbone and gives TPE no history, but
    # still tries what ranked best across the KB first.
    far_space, p, far = planning.plan(sqlite_kb, [0.0, 0.0, 1.0], space, "auto")
    assert far.group["novel"] and far.mode == "points" and p.points and p.history == ()
    assert far_space.param("backbone").options == space.param("backbone").options
    assert far.backbone["why"] == "default; unseen domain"
    assert "backs off to what works across the whole KB" in far.describe()


def test_points_carry_over_to_the_backbone_chosen_for_the_search(sqlite_kb):
    """Neighbours that ran only Lite0 still give points when the search is fixed to Lite1:
    the configurations keep their head and fine-tuning settings and take the chosen backbone."""
    space = default_space(("efficientnet_lite0", "efficientnet_lite1"))
    ds = sqlite_kb.add_dataset("old", "fp-old", [1.0, 0.0, 0.0])
    sqlite_kb.start_run("old-run", ds)
    for n, wd in enumerate((1e-5, 1e-4, 1e-3)):
        sqlite_kb.record_trial("old-run", {
            "trial_id": f"t{n:03d}", "number": n, "status": "complete", "score": 0.5 + wd,
            "config": space.complete({"weight_decay": wd})})
    sqlite_kb.finish_run("old-run")
    fixed = space.fix(backbone="efficientnet_lite1")
    p = priors(_near((ds, "old", 0.9)), sqlite_kb, fixed, n_points=3)
    assert [pt.config["weight_decay"] for pt in p.points] == [1e-3, 1e-4, 1e-5]
    assert all(pt.config["backbone"] == "efficientnet_lite1" and fixed.contains(pt.config)
               for pt in p.points)
    assert p.points[0].source == "kb:old/old-run/t002"
