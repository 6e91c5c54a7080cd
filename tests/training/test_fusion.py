"""Heads on fused features: several backbones' pooled features side by side, trained and
exported as one model that predicts what the trial predicted."""

from pathlib import Path

import numpy as np
import pytest

from transfer_automl.data import load_dataset
from transfer_automl.space import default_space, fused_backbones
from transfer_automl.trial import TrialContext, TrialSpec, TrialState

PAIR = ("efficientnet_lite0", "efficientnet_lite1")


@pytest.fixture(scope="module")
def runner(tmp_path_factory, cache_root, colour_folder):
    from transfer_automl.training import TrialRunner

    work = tmp_path_factory.mktemp("fused")
    data = load_dataset(colour_folder, workdir=work / "datasets")
    ctx = TrialContext(str(data.save_manifest(work / "dataset.json")), str(work),
                       str(work / "features"), str(cache_root / "backbones"), cv_folds=0)
    return TrialRunner(ctx)


def _spec(trial_id, **overrides):
    space = default_space(PAIR)
    config = {**space.default, "resolution": 64, "fusion": "+".join(PAIR), **overrides}
    return TrialSpec(trial_id, 0, config, "test", seed=0)


def test_fusion_is_a_choice_of_cheap_trials_only():
    space = default_space(PAIR)
    assert space.param("fusion").options == ("none", "+".join(PAIR))
    config = {**space.default, "fusion": "+".join(PAIR)}
    assert fused_backbones(config) == PAIR
    assert fused_backbones({**config, "unfrozen_blocks": 1}) == ()
    assert fused_backbones({**config, "augment": 0.5}) == ()
    assert "fusion" not in default_space().names  # one backbone: nothing to fuse


@pytest.mark.parametrize("overrides", [{}, {"optimizer": "adam", "n_dense": 1, "epochs": 2}])
def test_a_fused_trial_reads_both_backbones_and_exports_what_it_predicted(
        runner, overrides, tmp_path, cache_root):
    from transfer_automl.trial_model import export_trial

    spec = _spec("fused-" + ("mlp" if overrides else "linear"), **overrides)
    result = runner.run(spec, lambda m: None)
    assert result.state == TrialState.COMPLETE, result.reason
    widths = [runner.backbone(n).spec.feature_size for n in PAIR]
    with np.load(result.artifact) as saved:
        assert saved["arr_0"].shape[0] == sum(widths)  # the head reads both, side by side
    held = np.load(Path(result.artifact).parent / "heldout.npz")
    data = runner.dataset
    exported = export_trial(spec.config, result.artifact, data.class_names, tmp_path / "m",
                            backbone_cache=cache_root / "backbones", metadata={})
    np.testing.assert_allclose(exported.predict_proba(list(data.val.paths)), held["proba"],
                               atol=2e-3)
