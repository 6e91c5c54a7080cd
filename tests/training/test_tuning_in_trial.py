"""Live changes applied inside a trial at an epoch boundary, for each training loop: minibatch
epochs, stacked fold heads, and cross-validation folds trained in turn."""

from pathlib import Path

import numpy as np
import pytest

from transfer_automl.data import load_dataset
from transfer_automl.space import default_space
from transfer_automl.trial import TrialContext, TrialSpec, TrialState

RES = 64


def _runner(tmp_path_factory, cache_root, colour_folder, cv_folds):
    from transfer_automl.training import TrialRunner

    work = tmp_path_factory.mktemp(f"tuning-cv{cv_folds}")
    data = load_dataset(colour_folder, workdir=work / "datasets")
    manifest = data.save_manifest(work / "dataset.json")
    return TrialRunner(TrialContext(str(manifest), str(work), str(work / "features"),
                                    str(cache_root / "backbones"), cv_folds=cv_folds))


@pytest.fixture(scope="module")
def holdout(tmp_path_factory, cache_root, colour_folder):
    return _runner(tmp_path_factory, cache_root, colour_folder, 0)


@pytest.fixture(scope="module")
def folds(tmp_path_factory, cache_root, colour_folder):
    return _runner(tmp_path_factory, cache_root, colour_folder, 3)


class Reporter:
    """Hands the trial ``changes`` in reply to the report of epoch ``at`` (or, with
    ``by_poll``, when the trial polls after that many polls)."""

    def __init__(self, changes, at=2, by_poll=False):
        self.changes, self.at, self.by_poll = changes, at, by_poll
        self.seen, self.polls = [], 0

    def __call__(self, metrics):
        self.seen.append(metrics)
        if not self.by_poll and metrics.epoch == self.at:
            return dict(self.changes)
        return None

    def poll(self):
        self.polls += 1
        return dict(self.changes) if self.by_poll and self.polls == self.at else None


def _spec(trial_id, **overrides):
    config = {**default_space().default, "resolution": RES, "epochs": 6, "optimizer": "sgd",
              "learning_rate": 0.01, **overrides}
    return TrialSpec(trial_id, 0, config, "test", seed=0)


@pytest.mark.parametrize("name, overrides", [
    ("stacked", {"n_dense": 1}),                      # heads on cached features
    ("minibatch", {"augment": 0.5, "epochs": 4}),     # a backbone pass per step
])
def test_change_applies_from_the_next_epoch(holdout, name, overrides):
    reporter = Reporter({"learning_rate": 0.002, "momentum": 0.5, "epochs_left": 2})
    result = holdout.run(_spec(f"tune-{name}", **overrides), reporter)
    assert result.state == TrialState.COMPLETE, result.reason
    # epochs 1-2 as planned, then two more under the change
    assert [m.epoch for m in reporter.seen] == [1, 2, 3, 4]
    assert reporter.seen[2].tuned["learning_rate"] == 0.002
    assert reporter.seen[2].tuned["from_epoch"] == 3
    assert reporter.seen[1].tuned is None and reporter.seen[3].tuned is None
    (tuning,) = result.extra["tunings"]
    assert tuning["epoch"] == 3 and tuning["changes"]["momentum"] == 0.5
    saved = np.load(tuning["checkpoint"])
    assert len(saved.files) == len(np.load(result.artifact).files)


def test_settings_the_optimizer_does_not_read_are_ignored_and_said(holdout):
    reporter = Reporter({"learning_rate": 0.002, "momentum": 0.5})
    result = holdout.run(_spec("tune-adam", optimizer="adam", n_dense=1, epochs=3), reporter)
    (tuning,) = result.extra["tunings"]
    assert tuning["changes"] == {"learning_rate": 0.002}
    assert "adam does not use it" in tuning["ignored"]["momentum"]
    assert reporter.seen[2].tuned["ignored"]["momentum"]


def test_folds_in_turn_take_changes_by_polling_and_report_them_with_the_curve(folds):
    # fine-tuning with 3 folds trained one after another: epochs are reported at the end
    reporter = Reporter({"learning_rate": 0.001}, at=2, by_poll=True)
    result = folds.run(_spec("tune-folds", unfrozen_blocks=1, n_dense=1, epochs=4), reporter)
    assert result.state == TrialState.COMPLETE, result.reason
    assert result.extra["cv_folds"] == 3.0
    (tuning,) = result.extra["tunings"]
    assert tuning["epoch"] == 3  # polled after the second epoch of the first fold in turn
    assert [m.epoch for m in reporter.seen] == [1, 2, 3, 4]
    assert reporter.seen[2].tuned["learning_rate"] == 0.001
    assert Path(tuning["checkpoint"]).is_file()


def test_fewer_epochs_in_a_later_fold_shorten_the_reported_curve(folds):
    reporter = Reporter({"epochs_left": 1}, at=6, by_poll=True)  # 6th poll: fold 2, epoch 2
    result = folds.run(_spec("tune-short", unfrozen_blocks=1, n_dense=1, epochs=4), reporter)
    assert result.state == TrialState.COMPLETE, result.reason
    assert [m.epoch for m in reporter.seen] == [1, 2, 3]  # what every fold ran
