"""The search loop's state: ``ask()`` for a trial, ``tell()`` its result. No I/O here."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transfer_automl.diagnosis import diagnose_trial
from transfer_automl.samplers import Observation, Sampler, TPESampler
from transfer_automl.schedule import FidelitySchedule
from transfer_automl.space import Config, SearchSpace, fidelity
from transfer_automl.trial import EpochMetrics, TrialResult, TrialSpec, TrialState

__all__ = ["Study", "TrialRecord", "trial_seed"]


def trial_seed(base: int, number: int) -> int:
    """The seed trial ``number`` of a study seeded ``base`` samples and trains with.

    Mixed, not added: with ``base + number`` a study of seed 1 would replay a study of seed 0
    shifted by one trial, so runs of nearby seeds (and a knowledge base built with one of
    them) would share most of their random configurations.
    """
    return int(np.random.SeedSequence([base, number]).generate_state(1)[0] & 0x7FFFFFFF)


def _last_epoch(record) -> bool:
    """Whether a running trial has nothing left to stop (one exact solve, or its last
    epoch reported)."""
    config = record.spec.config
    return (config.get("optimizer") == "lbfgs"
            or len(record.epochs) >= int(config.get("epochs") or 0))


@dataclass
class TrialRecord:
    """The driver's view of one trial: its spec, live metrics and final result."""

    spec: TrialSpec
    state: TrialState = TrialState.RUNNING
    started: float = field(default_factory=time.monotonic)
    epochs: list[EpochMetrics] = field(default_factory=list)
    result: TrialResult | None = None

    @property
    def score(self) -> float | None:
        if self.result is not None:
            return self.result.score
        return max((e.val_accuracy for e in self.epochs), default=None)


class Study:
    """Ask/tell search over a space, in the manner of Optuna's ``Study``.

    Enqueued configurations (the default, warm-start priors) are asked first, in order; after
    that the sampler proposes. The sampler sees every observation, including ``history``
    given at construction (trials of earlier runs), so warm start is plain data.

    Args:
        space: the search space.
        sampler: proposes configurations (default: TPE).
        seed: base seed; trial ``n`` samples and trains with ``trial_seed(seed, n)``.
        history: observations from elsewhere that inform the sampler.
        schedule: a multi-fidelity schedule (cheap trials first); None samples the whole
            space from the start.
        run_id: the run this study is the search of ("" when it has none), for messages
            that name it.
    """

    def __init__(self, space: SearchSpace, sampler: Sampler | None = None, seed: int = 0,
                 history: Sequence[Observation] = (),
                 schedule: FidelitySchedule | None = None, run_id: str = "") -> None:
        self.space = space
        self.run_id = run_id  # the run on disk this study belongs to, if any
        self.schedule = schedule
        self.sampler = sampler or TPESampler()
        self.seed = seed
        self._history = list(history)
        self._queue: list[tuple[Config, str, int | None]] = []
        self.trials: dict[str, TrialRecord] = {}

    def enqueue(self, config: Mapping[str, Any], origin: str = "enqueued",
                seed: int | None = None) -> None:
        """Ask for ``config`` (completed from the default) before any sampled configuration.

        With ``seed`` the trial trains with that seed, and the same configuration may be
        queued once per seed (repeats, as in an ablation study); without, a configuration
        already queued or run is not asked for again.
        """
        completed = self.space.complete(config)
        if any(completed == c and seed == s for c, _, s in self._queue):
            return
        self._queue.append((completed, origin, seed))

    def add_history(self, observations: Sequence[Observation]) -> None:
        """Give the sampler observations from elsewhere (warm start from earlier runs)."""
        self._history.extend(observations)

    def restore(self, spec: TrialSpec, result: TrialResult) -> None:
        """Put back a trial finished in an earlier session (resume): it is never re-run."""
        self.trials[spec.trial_id] = TrialRecord(spec)
        self.tell(result)

    def ask(self) -> TrialSpec:
        """Create the next trial and mark it running."""
        number = 1 + max((r.spec.number for r in self.trials.values()), default=-1)
        seen = [r.spec.config for r in self.trials.values()]
        config, origin, seed = None, "", None
        while self._queue and config is None:
            candidate, origin, seed = self._queue.pop(0)
            config = None if seed is None and candidate in seen else candidate
        parent = None
        if config is None:
            config, origin, parent = self._sample(number)
        spec = TrialSpec(f"t{number:03d}", number, config, origin,
                         trial_seed(self.seed, number) if seed is None else seed, parent=parent)
        self.trials[spec.trial_id] = TrialRecord(spec)
        return spec

    def report(self, metrics: EpochMetrics) -> None:
        """Record one epoch of a running trial."""
        self.trials[metrics.trial_id].epochs.append(metrics)

    def tell(self, result: TrialResult) -> None:
        """Record the final result of a trial."""
        record = self.trials[result.trial_id]
        record.result = result
        record.state = result.state
        if result.history:
            record.epochs = list(result.history)

    @property
    def running(self) -> list[TrialRecord]:
        return [r for r in self.trials.values() if r.state == TrialState.RUNNING]

    @property
    def finished(self) -> list[TrialRecord]:
        return [r for r in self.trials.values() if r.state.finished]

    def best(self) -> TrialRecord | None:
        """The finished trial with the highest score (completed or pruned), if any."""
        scored = [r for r in self.finished
                  if r.result and r.result.score is not None and r.result.artifact]
        return max(scored, key=lambda r: (r.result.score, -r.spec.number), default=None)

    def leaderboard(self) -> list[dict[str, Any]]:
        """One row per trial, best first, then running and failed trials."""
        rows = []
        for r in self.trials.values():
            res = r.result
            verdict = diagnose_trial(r.spec.config, r.epochs)
            rows.append({
                "trial": r.spec.trial_id,
                "status": r.state.value,
                "score": r.score,
                "best_epoch": res.best_epoch if res else None,
                "epochs_run": len(r.epochs),
                "cost_s": round(res.seconds, 2) if res else None,
                "fidelity": res.fidelity if res and res.fidelity else fidelity(r.spec.config),
                "origin": r.spec.origin,
                "parent": r.spec.parent,
                "reason": res.reason if res else "",
                "diagnosis": str(verdict),
                "light": verdict.light,
                "suggest_stop": None if r.state.finished or _last_epoch(r)
                else verdict.stop_suggestion(),
                "config": self.space.active(r.spec.config),
            })
        rows.sort(key=lambda row: (row["score"] is None, -(row["score"] or 0.0), row["trial"]))
        return rows

    def _sample(self, number: int) -> tuple[Config, str, str | None]:
        """A sampled configuration, its origin and its parent trial (for promoted ones)."""
        space, phase, parent = self.space, "", None
        if self.schedule is not None:
            ranked = sorted((r for r in self.finished if r.result and r.result.score is not None),
                            key=lambda r: -r.result.score)
            space, phase, position = self.schedule.subspace(
                self.space, number, [r.spec.config for r in ranked])
            parent = ranked[position].spec.trial_id if position is not None else None
        history = [o for o in self._observations() if space.contains(o.config)]
        config = space.repair(self.sampler.suggest(space, history, trial_seed(self.seed, number)))
        origin = f"{self.sampler.name}/{phase}" if phase else self.sampler.name
        return config, origin, parent

    def _observations(self) -> list[Observation]:
        own = [Observation(dict(r.spec.config), r.result.score if r.result else None)
               for r in self.trials.values()]
        return self._history + own
