"""TrialRunner in-process on a tiny dataset: each fidelity, the cache, failure handling."""

import numpy as np
import pytest

from transfer_automl.data import load_dataset
from transfer_automl.executors.base import TrialContext
from transfer_automl.space import default_space
from transfer_automl.trial import TrialSpec, TrialState

RES = 64


@pytest.fixture(scope="module")
def runner(tmp_path_factory, cache_root, colour_folder):
    from transfer_automl.training import TrialRunner

    work = tmp_path_factory.mktemp("run")
    data = load_dataset(colour_folder, workdir=work / "datasets")
    manifest = data.save_manifest(work / "dataset.json")
    ctx = TrialContext(str(manifest), str(work), str(work / "features"),
                       str(cache_root / "backbones"), cv_folds=0)
    return TrialRunner(ctx)


def _spec(trial_id, **overrides):
    config = {**default_space().default, "resolution": RES, "epochs": 3, **overrides}
    return TrialSpec(trial_id, 0, config, "test", seed=0)


def _run(runner, spec):
    seen = []
    return runner.run(spec, seen.append), seen


@pytest.mark.parametrize("overrides, fidelity", [
    ({}, "features"),
    ({"unfrozen_blocks": 2, "n_dense": 1}, "activations"),
    ({"augment": 0.5, "epochs": 2}, "images"),
])
def test_each_fidelity_trains_and_reports(runner, overrides, fidelity):
    result, seen = _run(runner, _spec(f"t-{fidelity}", **overrides))
    assert result.state == TrialState.COMPLETE, result.reason
    assert result.fidelity == fidelity
    assert [m.epoch for m in seen] == list(range(1, len(seen) + 1))
    assert result.score == max(m.val_accuracy for m in seen)
    assert result.artifact and np.load(result.artifact).files


def test_second_trial_reads_the_feature_cache(runner):
    first, _ = _run(runner, _spec("c1", pooling="max"))
    second, _ = _run(runner, _spec("c2", pooling="avgmax", learning_rate=3e-3))
    assert first.extra["cache_hit"] in (0.0, 1.0)
    assert second.extra["cache_hit"] == 1.0


def test_same_seed_same_head_weights(runner):
    a, _ = _run(runner, _spec("s1"))
    b, _ = _run(runner, _spec("s2"))
    wa, wb = np.load(a.artifact), np.load(b.artifact)
    for key in wa.files:
        np.testing.assert_allclose(wa[key], wb[key], rtol=1e-5, atol=1e-6)


def test_fine_tuning_leaves_the_loaded_backbone_unchanged(runner):
    backbone = runner.backbone("efficientnet_lite0")
    _, top = backbone.split(2)
    before = [v.numpy().copy() for v in top.trainable_variables]
    result, _ = _run(runner, _spec("ft", unfrozen_blocks=2, learning_rate=1e-2,
                                   backbone_lr_mult=1.0))
    assert result.state == TrialState.COMPLETE, result.reason
    for b, v in zip(before, top.trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())


def test_nan_loss_fails_the_trial_with_its_reason(runner):
    spec = _spec("nan")
    spec = TrialSpec("nan", 0, {**spec.config, "learning_rate": float("inf"), "optimizer": "sgd",
                                "weight_decay": 0.0}, "test", 0)
    result, _ = _run(runner, spec)
    assert result.state == TrialState.FAILED
    assert "non-finite loss" in result.reason


def test_exception_fails_the_trial_with_its_reason(runner):
    spec = _spec("bad")
    spec = TrialSpec("bad", 0, {**spec.config, "optimizer": "rmsprop"}, "test", 0)
    result, _ = _run(runner, spec)
    assert result.state == TrialState.FAILED
    assert "optimizer" in result.reason


def test_pruned_by_reporter_keeps_best_epoch(runner):
    from transfer_automl.errors import TrialPruned

    def reporter(metrics):
        if metrics.epoch == 2:
            raise TrialPruned("stopped by test")

    result = runner.run(_spec("p", epochs=5), reporter)
    assert result.state == TrialState.PRUNED and result.reason == "stopped by test"
    assert len(result.history) == 2 and result.artifact


def test_refit_trains_on_train_and_val_for_exactly_the_given_epochs(runner):
    from dataclasses import replace

    spec = replace(_spec("refit", epochs=10), refit_epochs=2)
    result, seen = _run(runner, spec)
    assert result.state == TrialState.COMPLETE, result.reason
    assert len(seen) == 2 and result.best_epoch == 2   # the last epoch, not the best
    assert result.artifact


def test_small_datasets_score_head_trials_by_cross_validation(runner):
    from dataclasses import replace

    from transfer_automl.training import TrialRunner

    cv_runner = TrialRunner(replace(runner.context, cv_folds=5))
    cv_runner._backbones = runner._backbones  # reuse the loaded backbone
    result, seen = _run(cv_runner, _spec("cv"))
    assert result.extra.get("cv_folds", 0) >= 2
    assert len(seen) == 3 and result.artifact
    # fine-tuning on cached activations is cross-validated too, fold after fold, from the
    # pretrained weights each time
    backbone = runner.backbone("efficientnet_lite0")
    _, top = backbone.split(1)
    before = [v.numpy().copy() for v in top.trainable_variables]
    result, seen = _run(cv_runner, _spec("cvft", unfrozen_blocks=1, epochs=2))
    assert result.state == TrialState.COMPLETE, result.reason
    assert result.extra.get("cv_folds", 0) >= 2 and len(seen) == 2
    for b, v in zip(before, top.trainable_variables):
        np.testing.assert_array_equal(b, v.numpy())
    # augmented trials keep the holdout split
    result, _ = _run(cv_runner, _spec("nocv", augment=0.5, epochs=1))
    assert "cv_folds" not in result.extra
