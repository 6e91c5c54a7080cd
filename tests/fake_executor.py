"""An in-process executor for driver tests: one epoch of every running trial per poll."""

import time

from transfer_automl.executors.base import Executor
from transfer_automl.trial import EpochMetrics, TrialResult, TrialState


class FakeExecutor(Executor):
    """Runs one epoch per poll; lr > 0.5 raises, so failures are exercised too."""

    def __init__(self, slots=2, epoch_s=0.0):
        self.slots, self.epoch_s = slots, epoch_s
        self.running, self.stopped, self.closed = {}, {}, False
        self.killed = []  # results of killed trials, reported by the next poll
        self.max_seen = 0
        self.tunes = {}  # live changes, carried by the trial's next epoch

    @property
    def n_slots(self):
        return self.slots

    def start(self, context):
        self.context = context

    def submit(self, spec):
        assert len(self.running) < self.slots
        self.running[spec.trial_id] = [spec, 0]
        self.max_seen = max(self.max_seen, len(self.running))

    def poll(self, timeout):
        time.sleep(self.epoch_s)
        events, self.killed = self.killed, []
        for trial_id, (spec, epoch) in list(self.running.items()):
            if spec.config["lr"] > 0.5:
                events.append(TrialResult(trial_id, TrialState.FAILED, reason="ValueError: boom"))
                del self.running[trial_id]
                continue
            epoch += 1
            acc = 1.0 - abs(spec.config["lr"] - 0.01) - 0.1 / epoch
            tuned = self.tunes.pop(trial_id, None)
            events.append(EpochMetrics(trial_id, epoch, 1 - acc, acc, 1 - acc, acc,
                                       self.epoch_s,
                                       {**tuned, "from_epoch": epoch} if tuned else None))
            self.running[trial_id][1] = epoch
            if trial_id in self.stopped or epoch == spec.config["epochs"]:
                state = TrialState.PRUNED if trial_id in self.stopped else TrialState.COMPLETE
                events.append(TrialResult(trial_id, state, score=acc, best_epoch=epoch,
                                          reason=self.stopped.get(trial_id, ""),
                                          artifact=f"{trial_id}.npz",
                                          seconds=epoch * self.epoch_s))
                del self.running[trial_id]
        return events

    def tune(self, trial_id, changes):
        if trial_id not in self.running:
            return False
        self.tunes.setdefault(trial_id, {}).update(changes)
        return True

    def stop(self, trial_id, reason):
        self.stopped[trial_id] = reason

    def kill(self, trial_id, reason):
        if self.running.pop(trial_id, None) is not None:
            self.killed.append(TrialResult(trial_id, TrialState.FAILED, reason=reason))

    def close(self):
        self.closed = True
