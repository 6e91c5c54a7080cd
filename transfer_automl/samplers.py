"""Samplers propose the next configuration from what has been observed so far.

A sampler is stateless with respect to history: it receives every observation on each call.
That keeps it trivially correct under asynchronous completion and lets the history contain
trials from other runs (warm start) just as well as this run's own.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from transfer_automl.space import Config, SearchSpace
from transfer_automl.trial import Observation

__all__ = ["Observation", "Sampler", "RandomSampler", "TPESampler"]


class Sampler(abc.ABC):
    """Proposes configurations of a :class:`SearchSpace`."""

    @abc.abstractmethod
    def suggest(self, space: SearchSpace, history: Sequence[Observation], seed: int) -> Config:
        """Return a complete configuration to evaluate next.

        Args:
            space: the search space.
            history: all observations so far, finished or running.
            seed: a seed for this one suggestion (callers vary it per trial).
        """

    @property
    def name(self) -> str:
        return type(self).__name__.removesuffix("Sampler").lower()


class _HyperoptSampler(Sampler):
    """Shared plumbing: rebuild a hyperopt ``Trials`` from the history, call an algorithm."""

    def _algo(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def suggest(self, space: SearchSpace, history: Sequence[Observation], seed: int) -> Config:
        from hyperopt import Domain

        domain = Domain(lambda _: 0.0, space.to_hyperopt())
        trials = _trials_from(space, history)
        new_id = len(history)
        docs = self._algo()([new_id], domain, trials, seed)
        return space.from_vals(docs[0]["misc"]["vals"])


class RandomSampler(_HyperoptSampler):
    """Independent draws from the space (with its sampling weights)."""

    def _algo(self):
        from hyperopt import rand

        return rand.suggest


class TPESampler(_HyperoptSampler):
    """hyperopt's Tree-structured Parzen Estimator, driven one suggestion at a time.

    Args:
        n_startup: observations with a score needed before TPE replaces random draws.
            hyperopt's default of 20 is too many for searches of 10-30 trials.
        gamma: share of observations TPE treats as "good".
    """

    def __init__(self, n_startup: int = 4, gamma: float = 0.25) -> None:
        self.n_startup = n_startup
        self.gamma = gamma

    def _algo(self):
        from functools import partial

        from hyperopt import tpe

        return partial(tpe.suggest, n_startup_jobs=self.n_startup, gamma=self.gamma)


def _trials_from(space: SearchSpace, history: Sequence[Observation]):
    """A hyperopt ``Trials`` holding ``history`` as finished (or failed) documents."""
    from hyperopt import STATUS_FAIL, STATUS_OK, Trials, base

    trials = Trials()
    docs = []
    for tid, obs in enumerate(history):
        vals = space.to_vals(obs.config)
        ok = obs.score is not None
        docs.append({
            "state": base.JOB_STATE_DONE if ok else base.JOB_STATE_ERROR,
            "tid": tid,
            "spec": None,
            "result": {"status": STATUS_OK, "loss": -obs.score} if ok else {"status": STATUS_FAIL},
            "misc": {"tid": tid, "cmd": ("domain_attachment", "FMinIter_Domain"),
                     "workdir": None, "idxs": {k: [tid] for k in vals}, "vals": vals},
            "exp_key": None, "owner": None, "version": 0,
            "book_time": None, "refresh_time": None,
        })
    if docs:
        trials.insert_trial_docs(docs)
    trials.refresh()
    return trials
