"""Ensembles end to end: chosen after the search, exported as one SavedModel, shown first."""

import json

import numpy as np
import pytest

from transfer_automl import ensemble, fit_auto, load_model
from transfer_automl.options import SearchOptions, TrackingOptions
from transfer_automl.space import active_settings, default_space
from transfer_automl.trial_model import export_ensemble, export_trial


@pytest.fixture(scope="module")
def forced(tmp_path_factory, cache_root, colour_folder):
    """A search whose ensemble is forced: the colours are too easy for one to be chosen."""
    chosen = {}

    def pick_two(candidates, labels, **kwargs):
        a, b = candidates[:2]
        chosen["ensemble"] = ensemble.Ensemble({a.trial_id: 0.75, b.trial_id: 0.25}, 1.0, 1.0,
                                               len(a.rows), 1)
        return chosen["ensemble"]

    space = default_space().fix(resolution=64, epochs=3, unfrozen_blocks=0, augment=0.0)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ensemble, "select", pick_two)
        result = fit_auto(colour_folder, max_trials=3, time_budget_s=600, seed=0, kb=False,
                          cache_dir=cache_root, search=SearchOptions(space=space),
                          tracking=TrackingOptions(runs_dir=tmp_path_factory.mktemp("runs")))
    return result, chosen["ensemble"]


def test_the_ensemble_is_exported_listed_and_explained(forced, colour_folder, tmp_path):
    result, chosen = forced
    assert result.ensemble is chosen
    row = result.leaderboard[0]
    assert row["trial"] == "ensemble" and row["members"] == chosen.weights
    assert len(result.leaderboard) == 4  # the ensemble and three trials
    assert "ensemble of 2 trials" in result.explanation
    meta = json.loads((result.model.path / "metadata.json").read_text())
    assert meta["ensemble"]["weights"] == chosen.weights
    assert sorted(meta["refit_members"]) == sorted(chosen.weights)  # refit on train + val
    assert result.test_report is not None and result.test_score >= 0.8
    single = result.export(tmp_path / "single", single=True)
    meta = json.loads((single / "metadata.json").read_text())
    assert "ensemble" not in meta and meta["config"] == active_settings(result.best_config)


def test_members_sharing_a_backbone_pass_average_their_probabilities(forced, colour_folder,
                                                                     cache_root, tmp_path):
    """The exported ensemble predicts the weighted average of its members' exports, with one
    shared forward pass at one resolution, and with a resolution per member otherwise."""
    result, _ = forced
    run = result.model.path.parent
    trials = [json.loads(line) for line in (run / "trials.jsonl").read_text().splitlines()]
    done = [t for t in trials if t.get("result", {}).get("artifact")][:2]
    configs = [t["spec"]["config"] for t in done]
    weights = [t["result"]["artifact"] for t in done]
    paths = sorted(str(p) for p in colour_folder.rglob("*.png"))[::3]
    backbones = cache_root / "backbones"
    names = ["blue", "green", "red"]

    def single(config, path, out):
        return load_model(export_trial(config, path, names, tmp_path / out,
                                       backbone_cache=backbones, metadata={}).path)

    probs = [single(c, w, f"m{i}").predict_proba(paths) for i, (c, w) in
             enumerate(zip(configs, weights))]
    shared = export_ensemble([(configs[0], weights[0], 0.6), (configs[1], weights[1], 0.4)],
                             names, tmp_path / "shared", backbone_cache=backbones, metadata={})
    assert shared.resolution == 64
    np.testing.assert_allclose(shared.predict_proba(paths), 0.6 * probs[0] + 0.4 * probs[1],
                               atol=1e-5)
    # a head on pooled features reads any resolution: the same head at 96 px is a new member
    at96 = {**configs[1], "resolution": 96}
    mixed = export_ensemble([(configs[0], weights[0], 0.5), (at96, weights[1], 0.5)], names,
                            tmp_path / "mixed", backbone_cache=backbones, metadata={})
    assert mixed.resolution is None
    expected = 0.5 * probs[0] + 0.5 * single(at96, weights[1], "m96").predict_proba(paths)
    np.testing.assert_allclose(load_model(mixed.path).predict_proba(paths), expected, atol=1e-4)
