import pytest

from transfer_automl.samplers import Observation, RandomSampler, TPESampler
from transfer_automl.space import Choice, Float, SearchSpace


def _space():
    return SearchSpace((Float("x", -5.0, 5.0), Choice("c", ("a", "b", "c"))),
                       {"x": 0.0, "c": "a"})


@pytest.mark.parametrize("sampler", [RandomSampler(), TPESampler(n_startup=3)])
def test_suggestions_are_valid_and_seeded(sampler):
    space = _space()
    a = sampler.suggest(space, [], seed=7)
    b = sampler.suggest(space, [], seed=7)
    assert a == b
    space.validate(a)


def _late_mean(sampler, n=40, late=20):
    space = _space()
    history: list[Observation] = []
    for i in range(n):
        cfg = sampler.suggest(space, history, seed=i)
        score = -abs(cfg["x"] - 3.0) + (2.0 if cfg["c"] == "b" else 0.0)
        history.append(Observation(cfg, score))
    return sum(o.score for o in history[-late:]) / late


def test_tpe_beats_random_on_the_same_budget():
    assert _late_mean(TPESampler(n_startup=5)) > _late_mean(RandomSampler()) + 0.5


def test_tpe_uses_history_from_elsewhere():
    space = _space()

    def score(cfg):
        return -abs(cfg["x"] - 3.0) + (2.0 if cfg["c"] == "b" else 0.0)

    prior_cfgs = [RandomSampler().suggest(space, [], seed=100 + i) for i in range(30)]
    prior = [Observation(c, score(c)) for c in prior_cfgs]
    informed = [score(TPESampler(n_startup=3).suggest(space, prior, seed=s)) for s in range(10)]
    blind = [score(TPESampler(n_startup=3).suggest(space, [], seed=s)) for s in range(10)]
    assert sum(informed) / 10 > sum(blind) / 10 + 0.5


def test_failed_observations_are_tolerated():
    space = _space()
    history = [Observation({"x": 1.0, "c": "a"}, None)] * 3
    space.validate(TPESampler(n_startup=1).suggest(space, history, seed=0))
