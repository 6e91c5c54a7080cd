"""The driver loop against an in-process executor with a synthetic objective."""

import time

from tests.fake_executor import FakeExecutor
from transfer_automl.search import Budget, run_search
from transfer_automl.space import Choice, Float, SearchSpace
from transfer_automl.study import Study
from transfer_automl.trial import EpochMetrics, TrialContext, TrialResult, TrialState

CTX = TrialContext("manifest.json", "run", "features", "backbones")


def _space():
    return SearchSpace((Float("lr", 1e-4, 1.0, log=True), Choice("epochs", (3, 6))),
                       {"lr": 0.01, "epochs": 3})


def test_runs_max_trials_default_first_and_fills_slots():
    study = Study(_space(), seed=1)
    study.enqueue(_space().default, origin="default")
    ex = FakeExecutor(slots=2)
    events = []
    run_search(study, ex, CTX, Budget(max_trials=7, time_budget_s=60), events.append, poll_s=0)
    assert len(study.trials) == 7
    assert study.trials["t000"].spec.origin == "default"
    assert study.trials["t000"].spec.config == _space().default
    assert ex.max_seen == 2 and ex.closed
    assert all(r.state.finished for r in study.trials.values())
    kinds = {e.kind for e in events}
    assert kinds == {"started", "epoch", "finished"}
    board = study.leaderboard()
    assert board[0]["score"] == max(r["score"] for r in board if r["score"] is not None)


def test_failed_trials_are_recorded_and_search_goes_on():
    space = _space()
    study = Study(space, seed=0)
    study.enqueue({"lr": 0.9}, origin="bad")
    study.enqueue({"lr": 0.01}, origin="good")
    run_search(study, FakeExecutor(slots=1), CTX, Budget(4, 60), poll_s=0)
    bad = study.trials["t000"]
    assert bad.state == TrialState.FAILED and "boom" in bad.result.reason
    assert study.best().spec.trial_id != "t000"
    assert len(study.trials) == 4


def test_time_budget_stops_running_trials():
    study = Study(_space(), seed=0)
    study.enqueue({"lr": 0.01, "epochs": 6})
    ex = FakeExecutor(slots=1, epoch_s=0.05)
    start = time.monotonic()
    run_search(study, ex, CTX, Budget(max_trials=50, time_budget_s=0.12), poll_s=0)
    assert time.monotonic() - start < 5
    first = study.trials["t000"]
    assert first.state == TrialState.PRUNED and first.result.reason == "time budget reached"
    assert len(study.trials) < 50


def test_enqueue_skips_duplicates():
    study = Study(_space(), seed=0)
    study.enqueue({"lr": 0.01})
    study.enqueue({"lr": 0.01, "epochs": 3})
    a, b = study.ask(), study.ask()
    assert a.origin == "enqueued" and b.origin == "tpe"


def test_without_a_trial_cap_the_search_runs_until_its_time_budget():
    study = Study(_space(), seed=0)
    ex = FakeExecutor(slots=1, epoch_s=0.01)
    start = time.monotonic()
    run_search(study, ex, CTX, Budget(max_trials=None, time_budget_s=0.6), poll_s=0)
    spent = time.monotonic() - start
    assert 0.5 <= spent < 5  # the last trial may not start in the last trial-length
    # each trial takes 3-6 epochs of 0.01 s: a budget of 0.6 s holds many more than a few
    assert len(study.trials) >= 8


def test_the_search_ends_near_its_budget_not_a_trial_later():
    """No trial starts when there is less time left than trials typically take, and running
    trials are asked to stop one epoch early, so the search ends close to its budget."""
    import hyperopt.tpe  # noqa: F401  (imported once, before the clock starts)

    study = Study(_space(), seed=0)
    study.enqueue(_space().default)
    study.ask()  # the sampler's first call loads what it needs
    study = Study(_space(), seed=0)
    ex = FakeExecutor(slots=1, epoch_s=0.05)  # 3 or 6 epochs: 0.15-0.3 s a trial
    start = time.monotonic()
    run_search(study, ex, CTX, Budget(max_trials=None, time_budget_s=1.2), poll_s=0)
    assert time.monotonic() - start < 1.2 + 0.25
    typical = sorted(r.result.seconds for r in study.finished)[len(study.finished) // 2]
    late = [r for r in study.trials.values() if r.started - start > 1.2 - typical + 0.05]
    assert not late


def test_schedule_without_a_trial_cap_goes_on_mixing_heads_into_fine_tuning():
    from transfer_automl.schedule import FidelitySchedule
    from transfer_automl.space import default_space

    study = Study(default_space(), seed=0, schedule=FidelitySchedule(max_trials=None))
    origins = []
    for i in range(24):
        spec = study.ask()
        origins.append(spec.origin)
        study.tell(TrialResult(spec.trial_id, TrialState.COMPLETE, score=0.5 + 0.01 * (i % 5),
                               artifact="w.npz"))
    assert origins[:12] == ["tpe/cheap"] * 12
    later = origins[12:]
    assert later.count("tpe/cheap") == 4 and later.count("tpe/fine-tune") == 8
    assert all(later[i] == "tpe/cheap" for i in range(2, 12, 3))


def test_schedule_runs_cheap_trials_first_then_fine_tunes_the_best():
    from transfer_automl.schedule import FidelitySchedule
    from transfer_automl.space import default_space, fidelity

    space = default_space()
    study = Study(space, seed=0, schedule=FidelitySchedule(max_trials=10, cheap_share=0.6))
    specs = []
    for i in range(10):
        spec = study.ask()
        specs.append(spec)
        score = 0.5 + 0.01 * i if spec.config["n_dense"] else 0.9 - 0.01 * i
        study.tell(TrialResult(spec.trial_id, TrialState.COMPLETE, score=score,
                               artifact="w.npz"))
    assert all(fidelity(s.config) == "features" for s in specs[:6])
    assert all(s.origin == "tpe/cheap" for s in specs[:6])
    late = specs[6:]
    assert all(s.config["unfrozen_blocks"] > 0 for s in late)
    assert all(s.origin == "tpe/fine-tune" for s in late)
    best_two = sorted(specs[:6], key=lambda s: -study.trials[s.trial_id].result.score)[:2]
    heads = {tuple(sorted((k, s.config[k]) for k in ("n_dense", "pooling", "resolution")))
             for s in best_two}
    assert {tuple(sorted((k, s.config[k]) for k in ("n_dense", "pooling", "resolution")))
            for s in late} <= heads


def test_pruner_stops_a_running_trial_and_frees_its_slot():
    from transfer_automl.pruners.base import Pruner

    class StopBadLr(Pruner):
        def prune(self, trial, finished):
            return "bad lr" if trial.spec.config["lr"] > 0.1 and trial.epochs else None

    study = Study(_space(), seed=0)
    study.enqueue({"lr": 0.3, "epochs": 6})
    study.enqueue({"lr": 0.01, "epochs": 3})
    run_search(study, FakeExecutor(slots=1), CTX, Budget(2, 60), poll_s=0, pruner=StopBadLr())
    first, second = study.trials["t000"], study.trials["t001"]
    assert first.state == TrialState.PRUNED and first.result.reason == "bad lr"
    assert len(first.epochs) < 6
    assert second.state == TrialState.COMPLETE


class SlowEpochExecutor(FakeExecutor):
    """Epochs take ``epoch_s`` of wall time and a stop takes effect at the end of the epoch
    under way, as in a real worker; a kill reports the trial failed, as the real executors do."""

    def __init__(self, epoch_s):
        super().__init__(slots=1)
        self.epoch_s, self.killed = epoch_s, []

    def submit(self, spec):
        super().submit(spec)
        self.running[spec.trial_id].append(time.monotonic())

    def poll(self, timeout):
        time.sleep(0.01)
        events = self.killed
        self.killed = []
        for trial_id, (spec, epoch, began) in list(self.running.items()):
            if time.monotonic() - began < self.epoch_s:
                continue
            epoch += 1
            events.append(EpochMetrics(trial_id, epoch, 0.5, 0.5, 0.5, 0.5, self.epoch_s))
            if trial_id in self.stopped or epoch == spec.config["epochs"]:
                state = TrialState.PRUNED if trial_id in self.stopped else TrialState.COMPLETE
                events.append(TrialResult(trial_id, state, score=0.5, best_epoch=epoch,
                                          reason=self.stopped.get(trial_id, "")))
                del self.running[trial_id]
            else:
                self.running[trial_id][1:] = [epoch, time.monotonic()]
        return events

    def kill(self, trial_id, reason):
        if self.running.pop(trial_id, None) is not None:
            self.killed.append(TrialResult(trial_id, TrialState.FAILED, reason=reason))


def _stop_after_first_epoch():
    from transfer_automl.pruners.base import Pruner

    class StopAfterFirstEpoch(Pruner):
        def prune(self, trial, finished):
            return "stalled" if trial.epochs else None

    return StopAfterFirstEpoch()


def test_a_stopped_trial_with_slow_epochs_finishes_its_epoch_instead_of_being_killed():
    study = Study(_space(), seed=0)
    study.enqueue({"lr": 0.01, "epochs": 6})
    # The stop arrives as the second epoch begins; the 0.05 s grace alone would kill it.
    run_search(study, SlowEpochExecutor(epoch_s=0.25), CTX, Budget(1, 60, grace_s=0.05),
               poll_s=0, pruner=_stop_after_first_epoch())
    trial = study.trials["t000"]
    assert trial.state == TrialState.PRUNED and trial.result.reason == "stalled"
    assert len(trial.epochs) == 2


def test_a_stopped_trial_that_never_stops_is_still_killed():
    class Deaf(SlowEpochExecutor):
        def stop(self, trial_id, reason):
            pass

    study = Study(_space(), seed=0)
    study.enqueue({"lr": 0.01, "epochs": 6})
    run_search(study, Deaf(epoch_s=0.25), CTX, Budget(1, 60, grace_s=0.05), poll_s=0,
               pruner=_stop_after_first_epoch())
    trial = study.trials["t000"]
    assert trial.state == TrialState.FAILED
    assert trial.result.reason.startswith("stalled; killed after")
    assert len(trial.epochs) < 6


def test_first_cheap_trials_share_one_feature_cache_entry():
    from transfer_automl.schedule import FidelitySchedule
    from transfer_automl.space import default_space

    space = default_space(["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"])
    study = Study(space, seed=3, schedule=FidelitySchedule(max_trials=20))
    pinned = []
    for _ in range(6):   # n_cheap = 12, half of them pinned
        spec = study.ask()
        pinned.append((spec.config["backbone"], spec.config["resolution"]))
        study.tell(TrialResult(spec.trial_id, TrialState.COMPLETE, score=0.5, artifact="w"))
    assert set(pinned) == {("efficientnet_lite0", 224)}


def test_nearby_seeds_draw_unrelated_configurations():
    """Seed 1 must not replay seed 0 shifted by a trial (it did when trial n used seed + n)."""
    def draws(seed, n=8):
        study = Study(_space(), seed=seed)
        specs = [study.ask() for _ in range(n)]
        return [s.config["lr"] for s in specs[1:]], [s.seed for s in specs]  # [0] is the default

    (lr0, seeds0), (lr1, seeds1) = draws(0), draws(1)
    assert draws(0) == (lr0, seeds0)  # still deterministic for a seed
    assert not set(lr0) & set(lr1)
    assert not set(seeds0) & set(seeds1)


class VirtualClockExecutor(FakeExecutor):
    """One epoch per poll, each ``epoch_s`` seconds long on a virtual clock (no sleeping)."""

    def __init__(self, slots=1, epoch_s=10.0):
        super().__init__(slots=slots, epoch_s=0.0)
        self.virtual_epoch_s, self.now = epoch_s, 0.0

    def clock(self):
        return self.now

    def poll(self, timeout):
        self.now += self.virtual_epoch_s
        return super().poll(timeout)


def test_budgets_and_timeouts_are_read_from_the_clock_given():
    """A simulated executor passes its own clock: a 100 s budget of 10 s epochs ends near
    100 simulated seconds at once, and trials start at simulated times."""
    study = Study(_space(), seed=0)
    ex = VirtualClockExecutor(slots=1, epoch_s=10.0)
    start = time.monotonic()
    run_search(study, ex, CTX, Budget(max_trials=None, time_budget_s=100), poll_s=0,
               clock=ex.clock)
    assert time.monotonic() - start < 5
    assert 90 <= ex.now <= 110
    starts = [r.started for r in study.trials.values()]
    assert starts[0] == 0.0 and starts == sorted(starts) and starts[-1] < 100
    study = Study(_space(), seed=0)
    study.enqueue({"lr": 0.01, "epochs": 6})
    ex = VirtualClockExecutor(slots=1, epoch_s=10.0)
    run_search(study, ex, CTX, Budget(1, 1000, trial_timeout_s=25), poll_s=0, clock=ex.clock)
    trial = study.trials["t000"]
    assert trial.state == TrialState.FAILED and "timed out after 25 s" in trial.result.reason
    assert len(trial.epochs) == 3
