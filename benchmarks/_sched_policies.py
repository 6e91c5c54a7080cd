"""The schedulers the replay compares, all on :class:`ReplayExecutor` and one trial order.

- ``async+stop``: the product's driver (``run_search``) with its default pruner (curve
  rules + median rule), exactly as ``fit_auto`` runs them;
- ``async+asha``: the same driver with the product's ``ASHAPruner`` (eta 3);
- ``async``: the same driver, no pruner;
- ``sync-batches``: ``slots`` trials at a time, each batch waiting for its slowest;
- ``sync-sha``: synchronous successive halving: rungs at ``min_epochs * eta**k`` epochs and
  a last rung to the full curve; every trial of a rung runs (as slots free up) before the
  top ``1/eta`` are promoted; a promoted trial resumes from its checkpoint as a new trial
  does in the product (``init_weights``), paying its recorded start-up again;
- ``sync-sha-free``: the same with free resumption (no start-up again): a lower bound;
- ``async+asha-nolag``, ``async+stop-nolag``: the asynchronous ones on workers that end a
  trial at the epoch whose report made the driver stop it (not one epoch later).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from benchmarks._sched_replay import Recorded, ReplayExecutor
from transfer_automl.trial import TrialContext, TrialResult, TrialSpec, TrialState

SCHEDULERS = ("sync-batches", "sync-sha", "sync-sha-free", "async", "async+asha",
              "async+stop", "async+asha-nolag", "async+stop-nolag")
CONTEXT = TrialContext("replay", "", "", "")


@dataclass(frozen=True)
class Outcome:
    """What one scheduler did with one trial order.

    Attributes:
        makespan_s: simulated seconds until the last trial ended.
        best_score: the best validation accuracy of any epoch that ran.
        busy_s: slot-seconds the trials occupied.
        epochs: epochs run in all.
        stopped: trials that did not run their whole recorded curve.
    """

    scheduler: str
    makespan_s: float
    best_score: float
    busy_s: float
    epochs: int
    stopped: int


def run(scheduler: str, recorded: Mapping[str, Recorded], order: Sequence[str], slots: int,
        eta: int = 3, min_epochs: int = 2) -> Outcome:
    """Run the trials named by ``order`` (keys of ``recorded``) with ``scheduler``."""
    if scheduler == "sync-batches":
        return sync_batches(recorded, order, slots)
    if scheduler in ("sync-sha", "sync-sha-free"):
        return sync_sha(recorded, order, slots, eta, min_epochs,
                        resume_startup=scheduler == "sync-sha")
    if scheduler.startswith("async"):
        from transfer_automl.pruners import ASHAPruner, default_pruner

        kind = scheduler.removesuffix("-nolag")
        pruner = {"async": None, "async+stop": default_pruner,
                  "async+asha": lambda: ASHAPruner(min_epochs=min_epochs, eta=eta)}[kind]
        return async_search(recorded, order, slots, pruner and pruner(), scheduler,
                            stop_lag=not scheduler.endswith("-nolag"))
    raise KeyError(f"unknown scheduler {scheduler!r}; known: {', '.join(SCHEDULERS)}")


def async_search(recorded: Mapping[str, Recorded], order: Sequence[str], slots: int,
                 pruner, name: str = "async", stop_lag: bool = True) -> Outcome:
    """The product's driver loop on the replay: the study asks for the configurations of
    ``order`` (enqueued, one trial seed each so repeats run), the pruner judges each epoch."""
    from transfer_automl.samplers import RandomSampler
    from transfer_automl.search import Budget, run_search
    from transfer_automl.space import Choice, SearchSpace
    from transfer_automl.study import Study

    keys = tuple(sorted(recorded))
    study = Study(SearchSpace((Choice("config_id", keys),), {"config_id": keys[0]}),
                  sampler=RandomSampler())
    for number, key in enumerate(order):
        study.enqueue({"config_id": key}, origin="replay", seed=number)
    executor = ReplayExecutor(recorded, slots, stop_lag=stop_lag)
    run_search(study, executor, CONTEXT, Budget(len(order), math.inf), pruner=pruner,
               clock=executor.clock)
    records = list(study.trials.values())
    if [r.spec.config["config_id"] for r in records] != list(order):
        raise RuntimeError("the study did not ask for the replayed order")
    return _outcome(name, executor, [r.result for r in records], recorded)


def sync_batches(recorded: Mapping[str, Recorded], order: Sequence[str],
                 slots: int) -> Outcome:
    """``slots`` trials at a time; the next batch starts when the whole batch has ended."""
    executor = ReplayExecutor(recorded, slots)
    specs = [_spec(i, key) for i, key in enumerate(order)]
    results = []
    for start in range(0, len(specs), slots):
        results += run_barrier(executor, specs[start:start + slots])
    return _outcome("sync-batches", executor, results, recorded)


def rung_epochs(max_epochs: int, min_epochs: int = 2, eta: int = 3) -> list[int | None]:
    """The epoch caps of the rungs: ``min_epochs * eta**k`` below ``max_epochs``, then None
    (the whole curve)."""
    caps, cap = [], min_epochs
    while cap < max_epochs:
        caps.append(cap)
        cap *= eta
    return [*caps, None]


def rung_sizes(n: int, rungs: int, eta: int = 3) -> list[int]:
    """Trials in each rung: ``n``, then the top ``1/eta`` of the rung before (at least one)."""
    sizes = [n]
    while len(sizes) < rungs:
        sizes.append(max(1, sizes[-1] // eta))
    return sizes


def sync_sha(recorded: Mapping[str, Recorded], order: Sequence[str], slots: int,
             eta: int = 3, min_epochs: int = 2, resume_startup: bool = True) -> Outcome:
    """Synchronous successive halving over the trials of ``order``.

    Within a rung a free slot takes the rung's next trial; the rung ends when all its trials
    have; then the best ``1/eta`` by best value so far go on, resuming from their checkpoint
    (paying their recorded start-up again if ``resume_startup``; either way their later
    epochs take their recorded times, so a resumed trial's re-tracing is never charged). A
    trial whose curve ended below a rung's cap is done and is carried along if promoted.
    """
    executor = ReplayExecutor(recorded, slots, resume_startup=resume_startup)
    caps = rung_epochs(max(recorded[k].n_epochs for k in order), min_epochs, eta)
    sizes = rung_sizes(len(order), len(caps), eta)
    alive = [(i, key, None) for i, key in enumerate(order)]  # number, key, last result
    results: list[TrialResult] = []
    for rung, (cap, size) in enumerate(zip(caps, sizes)):
        alive = sorted(alive, key=lambda a: _rank(a[2], a[0]))[:size]
        todo, carried = [], []
        for number, key, last in alive:
            done = len(last.history) if last else 0
            if last is not None and done >= recorded[key].n_epochs:
                carried.append((number, key, last))  # its curve is over
                continue
            spec = _spec(number, key, rung, cap, last.artifact if last else None)
            todo.append((spec, number, key))
        ended = {r.trial_id: r for r in run_barrier(executor, [t[0] for t in todo])}
        results += ended.values()
        alive = carried + [(number, key, ended[spec.trial_id]) for spec, number, key in todo]
    return _outcome("sync-sha" if resume_startup else "sync-sha-free", executor, results,
                    recorded)


def run_barrier(executor: ReplayExecutor, specs: Sequence[TrialSpec]) -> list[TrialResult]:
    """Run ``specs`` on the executor's slots (a free slot takes the next) and return when
    all have ended: a barrier. Results in the order of ``specs``."""
    waiting, running, results = list(specs), set(), {}
    while waiting or running:
        while waiting and len(running) < executor.n_slots:
            spec = waiting.pop(0)
            executor.submit(spec)
            running.add(spec.trial_id)
        for event in executor.poll(math.inf):
            if isinstance(event, TrialResult):
                running.discard(event.trial_id)
                results[event.trial_id] = event
    return [results[s.trial_id] for s in specs]


def _spec(number: int, key: str, rung: int | None = None, cap: int | None = None,
          init: str | None = None) -> TrialSpec:
    config = {"config_id": key} if cap is None else {"config_id": key, "epochs": cap}
    trial_id = f"t{number:03d}" if rung is None else f"t{number:03d}r{rung}"
    return TrialSpec(trial_id, number, config, "replay", number, init_weights=init)


def _rank(result: TrialResult | None, number: int) -> tuple:
    """Best value so far first; ties (and the first rung) in trial order."""
    score = result.score if result is not None and result.score is not None else -math.inf
    return (-score, number)


def _outcome(name: str, executor: ReplayExecutor, results: Sequence[TrialResult | None],
             recorded: Mapping[str, Recorded]) -> Outcome:
    done = [r for r in results if r is not None]
    best = max((r.score for r in done if r.score is not None), default=math.nan)
    epochs = sum(r.extra.get("epochs_replayed", 0) for r in done)
    # a trial's last result holds its whole history (a resumed trial's too)
    last: dict[str, TrialResult] = {}
    for r in done:
        last[r.trial_id.partition("r")[0]] = r
    stopped = sum(r.state != TrialState.COMPLETE
                  or len(r.history) < _length(r, executor, recorded) for r in last.values())
    return Outcome(name, executor.last_end, best, sum(r.seconds for r in done), epochs, stopped)


def _length(result: TrialResult, executor: ReplayExecutor,
            recorded: Mapping[str, Recorded]) -> int:
    key, _ = executor.checkpoints[result.artifact]
    return recorded[key].n_epochs
