"""TrialRunner in-process on a tiny dataset: each fidelity, the cache, failure handling."""

from pathlib import Path

import numpy as np
import pytest

from transfer_automl.data import load_dataset
from transfer_automl.trial import TrialContext
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
    """A trial of the default config, trained by Adam unless ``overrides`` say otherwise."""
    config = {**default_space().default, "resolution": RES, "epochs": 3, "optimizer": "adam",
              **overrides}
    return TrialSpec(trial_id, 0, config, "test", seed=0)


def _run(runner, spec):
    seen = []
    return runner.run(spec, seen.append), seen


@pytest.mark.parametrize("overrides, fidelity", [
    ({}, "features"),
    ({"optimizer": "lbfgs"}, "features"),
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
    # the held-out predictions of the best epoch: the validation images, each once, in order
    from pathlib import Path

    held = np.load(Path(result.artifact).parent / "heldout.npz")
    data = runner.dataset
    np.testing.assert_array_equal(held["rows"], np.arange(len(data.train),
                                                          len(data.train) + len(data.val)))
    assert held["proba"].shape == (len(data.val), len(data.class_names))
    np.testing.assert_allclose(held["proba"].sum(axis=1), 1.0, atol=1e-4)
    hits = np.mean(held["proba"].argmax(axis=1) == data.val.labels)
    assert hits == pytest.approx(result.score, abs=1e-6)


def test_cross_validated_trial_keeps_out_of_fold_predictions(tmp_path, runner):
    """With k folds every training + validation image is held out by exactly one fold."""
    from pathlib import Path

    from transfer_automl.training import TrialRunner

    ctx = TrialContext(runner.context.manifest, str(tmp_path), runner.context.feature_cache,
                       runner.context.backbone_cache, cv_folds=3)
    cv = TrialRunner(ctx)
    data = cv.dataset
    for overrides in ({"optimizer": "lbfgs"}, {}):
        result, _ = _run(cv, _spec("cv-" + ("x" if overrides else "g"), **overrides))
        assert result.extra["cv_folds"] == 3.0
        held = np.load(Path(result.artifact).parent / "heldout.npz")
        n = len(data.train) + len(data.val)
        assert sorted(held["rows"].tolist()) == list(range(n))
        labels = np.concatenate([data.train.labels, data.val.labels])[held["rows"]]
        pooled = np.mean(held["proba"].argmax(axis=1) == labels)
        assert abs(pooled - result.score) < 0.1  # mean of fold accuracies vs pooled


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


def test_superseded_attempt_writes_nothing(runner, tmp_path):
    from transfer_automl.errors import TrialSuperseded

    def reporter(metrics):
        if metrics.epoch == 2:
            raise TrialSuperseded(f"{TrialSuperseded.PREFIX}a newer attempt runs elsewhere")

    result = runner.run(_spec("s", epochs=5), reporter)
    assert result.state == TrialState.FAILED and "newer attempt" in result.reason
    assert result.artifact is None
    assert not (Path(runner.context.run_dir) / "trials" / "s").exists()


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


def test_trials_of_a_run_share_its_cross_validation_folds(runner):
    """With the run's fold seed, trials of different seeds are scored on the same folds (an
    exact solve then gives the same score); without it, each trial draws its own folds."""
    from dataclasses import replace

    from transfer_automl.training import TrialRunner

    def scores(context):
        cv_runner = TrialRunner(context)
        cv_runner._backbones = runner._backbones
        out = []
        for seed in (0, 1, 2, 3):
            spec = TrialSpec(f"fold-{seed}", seed, _spec("x", optimizer="lbfgs").config,
                             "test", seed=seed)
            result, _ = _run(cv_runner, spec)
            assert result.extra.get("cv_folds", 0) >= 2, result.reason
            out.append((result.score, result.extra.get("cv_seed")))
        return out

    shared = scores(replace(runner.context, cv_folds=3, fold_seed=7))
    assert shared == [shared[0]] * 4 and shared[0][1] == 7.0
    own = scores(replace(runner.context, cv_folds=3))
    assert [s for _, s in own] == [0.0, 1.0, 2.0, 3.0]


def test_exact_solver_matches_scikit_learn_logistic_regression(runner):
    """The lbfgs head is multinomial logistic regression: sklearn's C maps to
    weight_decay = 1 / (2 C n), and both optima agree."""
    from sklearn.linear_model import LogisticRegression

    from transfer_automl.training._assemble import select_pooled
    from transfer_automl.training._inputs import cached_outputs

    result, seen = _run(runner, _spec("exact", optimizer="lbfgs"))
    assert result.state == TrialState.COMPLETE, result.reason
    assert len(seen) == 1 and result.extra["lbfgs_iterations"] >= 1
    config = _spec("exact").config
    arrays = cached_outputs(runner, runner.backbone(config["backbone"]), config, {})
    x = select_pooled(arrays["train"], runner.backbone(config["backbone"]), "avg")
    y = runner.dataset.train.labels
    wd = _spec("exact", optimizer="lbfgs").config["weight_decay"]
    reference = LogisticRegression(C=1.0 / (2 * wd * len(y)), tol=1e-10, max_iter=5000).fit(x, y)
    with np.load(result.artifact) as saved:
        kernel, bias = saved["arr_0"], saved["arr_1"]
    ours = x @ kernel + bias
    theirs = reference.decision_function(x)

    def objective(logits, w):  # what both minimise, on the mean-loss scale
        logits = logits - logits.max(1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        return -log_p[np.arange(len(y)), y].mean() + wd * float((w * w).sum())

    ours_obj, theirs_obj = objective(ours, kernel), objective(theirs, reference.coef_)
    assert ours_obj <= theirs_obj + 1e-4  # at the optimum, to the solver's tolerance
    # and the same model in effect: the same predictions
    np.testing.assert_array_equal(ours.argmax(1), theirs.argmax(1))
    # solved tightly, the optimum itself agrees: near-identical centred logits
    from transfer_automl.training._exact import fit_linear

    tight = fit_linear(x, y, 3, wd, gtol=1e-10)
    ours = x @ tight.kernel + tight.bias
    np.testing.assert_allclose(ours - ours.mean(1, keepdims=True),
                               theirs - theirs.mean(1, keepdims=True), rtol=0.01, atol=0.02)
    assert result.score == seen[0].val_accuracy


def test_stacked_folds_train_like_separate_runs(runner):
    """Heads trained together (one step for all folds) equal heads trained alone: the
    gradients of one head do not depend on the others."""
    from transfer_automl.training._loops import Member, loop_stacked
    from transfer_automl.training._runner import _Fit
    from transfer_automl.training._inputs import TrialInputs
    from transfer_automl.training._model import build_head
    import tf_keras as keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    folds = [(x[:30], y[:30], x[30:], y[30:]), (x[10:], y[10:], x[:10], y[:10])]
    spec = _spec("stack", epochs=2, batch_size=16, head_dropout=0.0)

    def train(arrays):
        keras.utils.set_random_seed(0)
        fit = _Fit(runner, spec, lambda m: None)
        heads = [build_head(spec.config, 8, 3) for _ in arrays]
        for h in heads:  # same start for every head, whatever the construction order
            h.set_weights([np.full_like(w, 0.01) for w in h.get_weights()])
        fit.trainable = heads[0]
        loop_stacked(fit, [Member(h, h, [], rows=np.arange(len(a[2])))
                           for h, a in zip(heads, arrays)],
                      TrialInputs(None, lambda m: m, arrays=arrays, batch_size=16, seed=0), 3)
        return heads, fit.history

    (alone,), _ = train(folds[:1])
    (together, _), history = train(folds)
    for a, b in zip(alone.get_weights(), together.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert [m.epoch for m in history] == [1, 2]


def test_a_learning_rate_of_ten_is_diagnosed_as_diverging(runner):
    from transfer_automl.diagnosis import Verdict, diagnose_trial

    spec = _spec("lr10", optimizer="sgd", learning_rate=10.0, momentum=0.9, epochs=4,
                 weight_decay=0.0, head_dropout=0.0)
    spec = TrialSpec("lr10", 0, {**spec.config, "learning_rate": 10.0}, "test", 0)
    result, _ = _run(runner, spec)
    verdict = diagnose_trial(spec.config, result.history)
    assert verdict.verdict == Verdict.DIVERGING, (result.state, [m.loss for m in result.history])
    assert "lower the learning rate" in verdict.advice


def test_models_of_many_trials_in_one_process_do_not_share_fine_tuned_blocks(runner, tmp_path):
    """Scoring a fine-tuned trial's model must not change the next frozen model's outputs:
    the unfrozen blocks are the loaded backbone's own variables."""
    from transfer_automl.training._assemble import trial_classifier

    frozen, _ = _run(runner, _spec("share-frozen", epochs=1))
    tuned, _ = _run(runner, _spec("share-tuned", unfrozen_blocks=2, epochs=2, learning_rate=0.05,
                                  backbone_lr_mult=1.0))
    cache = runner.context.backbone_cache
    images = np.random.default_rng(0).uniform(0, 255, (4, RES, RES, 3)).astype(np.float32)
    alone = trial_classifier(_spec("f", epochs=1).config, 3, frozen.artifact, {}, cache)
    expected = alone(images, training=False).numpy()
    shared: dict = {}
    trial_classifier(_spec("t", unfrozen_blocks=2).config, 3, tuned.artifact, shared, cache)
    after = trial_classifier(_spec("f", epochs=1).config, 3, frozen.artifact, shared, cache)
    np.testing.assert_allclose(after(images, training=False).numpy(), expected, rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("augment", [0.0, 0.5])
def test_fine_tuning_starts_from_the_linear_probe(runner, augment):
    """A linear head that fine-tunes blocks starts from the exact solution on frozen
    features: with a learning rate too small to move anything, its first epoch already
    scores what the probe scores (a random head would be near chance)."""
    probe, _ = _run(runner, _spec("lp-ref", optimizer="lbfgs"))
    result, seen = _run(runner, _spec(f"lp-{augment}", unfrozen_blocks=1, n_dense=0, epochs=1,
                                      learning_rate=1e-7, augment=augment))
    assert result.state == TrialState.COMPLETE, result.reason
    assert "probe_s" in result.extra
    assert seen[0].val_accuracy >= probe.score - 0.1 and seen[0].val_accuracy > 0.6
