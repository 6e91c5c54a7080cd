"""Leave-one-component-out ablation on a real (tiny) dataset, through the local executor."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from transfer_automl.ablation import BASELINE, ablate, variants
from transfer_automl.errors import InputError
from transfer_automl.options import TrackingOptions
from transfer_automl.space import default_space

BASE = {"resolution": 64, "n_dense": 1, "units_1": 64, "dropout_1": 0.3, "batchnorm_1": True,
        "head_dropout": 0.2, "label_smoothing": 0.1, "optimizer": "adam", "epochs": 3,
        "learning_rate": 3e-3}
COMPONENTS = ["dense_1", "dropout", "batchnorm", "label_smoothing"]


def test_variants_take_out_one_component_each():
    from transfer_automl.ablation import _space_for

    base = _space_for(default_space(), BASE).complete({**BASE, "n_dense": 2, "units_2": 128})
    out = variants(base, ["dense_1", "dense_2", "dropout", "batchnorm", "label_smoothing"])
    assert out[BASELINE] == base
    assert out["dense_1"]["n_dense"] == 1 and out["dense_1"]["units_1"] == 128  # layer 2 moves up
    assert out["dense_2"]["n_dense"] == 1 and out["dense_2"]["units_1"] == 64
    assert out["dropout"]["dropout_1"] == out["dropout"]["head_dropout"] == 0.0
    assert out["batchnorm"]["batchnorm_1"] is False
    assert out["label_smoothing"]["label_smoothing"] == 0.0
    for name, config in out.items():  # everything else is left as it was
        changed = {k for k in base if config[k] != base[k]}
        assert name == BASELINE or changed
        assert "resolution" not in changed and "optimizer" not in changed
    with pytest.raises(InputError, match="already off"):
        variants(base, ["unfreezing"])
    with pytest.raises(InputError, match="unknown"):
        variants(base, ["everything"])


@pytest.fixture(scope="module")
def study(tmp_path_factory, cache_root, colour_folder):
    out, runs = tmp_path_factory.mktemp("ablation-out"), tmp_path_factory.mktemp("ablation-runs")
    result = ablate(colour_folder, BASE, COMPONENTS, seeds=(0, 1), cache_dir=cache_root,
                    tracking=TrackingOptions(runs_dir=runs), out_dir=out)
    return result, out, runs


def test_table_chart_and_intervals(study):
    result, out, _ = study
    assert [r.component for r in result.rows] == [BASELINE, *COMPONENTS]
    for row in result.rows:
        assert len(row.scores) == 2 and all(0.0 <= s <= 1.0 for s in row.scores)
        assert math.isclose(row.effect, sum(row.diffs) / 2)
        assert row.interval is not None and row.interval >= 0.0
    table = (out / "ablation.md").read_text()
    for name in COMPONENTS:
        assert f"| {name} |" in table
    assert (out / "ablation.png").read_bytes().startswith(b"\x89PNG")


def test_baseline_row_is_a_plain_run_of_the_base_config(study, tmp_path, cache_root,
                                                         colour_folder):
    """The same config, seed and split trained on its own gives the baseline's validation
    score: the ablation adds nothing of its own to the measurement."""
    from transfer_automl.data import load_dataset
    from transfer_automl.trial import TrialContext
    from transfer_automl.run import find_run
    from transfer_automl.training import TrialRunner
    from transfer_automl.trial import TrialSpec

    result, _, runs = study
    entries, _ = find_run(runs, result.run_id).journal()
    base_spec, base_result = next((s, r) for s, r in entries
                                  if s.origin == f"ablation/{BASELINE}" and s.seed == 0)
    data = load_dataset(colour_folder, seed=0, workdir=cache_root / "datasets")
    manifest = data.save_manifest(tmp_path / "dataset.json")
    runner = TrialRunner(TrialContext(str(manifest), str(tmp_path), str(cache_root / "features"),
                                      str(cache_root / "backbones"), cv_folds=0))
    plain = runner.run(TrialSpec("plain", 0, dict(base_spec.config), "test", seed=0),
                       lambda m: None)
    assert plain.score == pytest.approx(base_result.score, abs=1e-6)


def test_warm_start_is_ablated_as_whole_searches(tmp_path, cache_root, colour_folder):
    result = ablate(colour_folder, BASE, ["warm_start"], seeds=(0,), search_trials=1,
                    kb=str(tmp_path / "kb.sqlite"), cache_dir=cache_root,
                    tracking=TrackingOptions(runs_dir=tmp_path / "runs"), out_dir=tmp_path / "out")
    row = result.rows[-1]
    assert row.component.startswith("warm_start")
    assert len(row.scores) == len(row.baseline) == 1 and row.interval is None
    assert all(0.0 <= s <= 1.0 for s in row.scores + row.baseline)
    assert "n/a (1 seed)" in (tmp_path / "out" / "ablation.md").read_text()


def test_cli_rejects_bad_requests(colour_folder):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "transfer_automl.cli", "ablate",
                               str(colour_folder), *args], capture_output=True, text=True,
                              timeout=300)

    done = cli("--components", "dropout", "--config", "{not json")
    assert done.returncode == 2 and "not valid JSON" in done.stderr
    done = cli("--components", "dropout")
    assert done.returncode == 2 and "--config or --from-run" in done.stderr
