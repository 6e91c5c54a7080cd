"""fit_auto end to end on a tiny generated folder, with a fresh-process reload of the export."""

import json
import subprocess
import sys

import numpy as np
import pytest

from transfer_automl import fit_auto
from transfer_automl.errors import InputError
from transfer_automl.options import SearchOptions, TrackingOptions
from transfer_automl.space import active_settings, default_space


@pytest.fixture(scope="module")
def result(tmp_path_factory, cache_root, colour_folder):
    space = default_space().fix(resolution=64, epochs=5)
    return fit_auto(colour_folder, max_trials=3, time_budget_s=600, seed=0, kb=False,
                    cache_dir=cache_root, search=SearchOptions(space=space),
                    tracking=TrackingOptions(runs_dir=tmp_path_factory.mktemp("runs")))


def test_result_contract(result):
    assert 0.0 <= result.best_score <= 1.0 and result.best_score >= 0.8
    assert result.test_score is not None and result.test_score >= 0.8
    assert len(result.leaderboard) == 3
    assert result.leaderboard[0]["score"] == result.best_score
    assert result.leaderboard[0]["config"]["resolution"] == 64
    assert {"trial", "status", "score", "cost_s", "fidelity", "origin", "reason", "config"} <= set(
        result.leaderboard[0])
    assert result.best_config["backbone"] == "efficientnet_lite0"
    assert result.group is None
    assert "trials" in result.explanation
    assert set(result.timings) == {"load_s", "plan_s", "search_s", "refit_s", "export_s"}
    assert all(v >= 0 for v in result.timings.values())
    assert result.model.metadata["timings"] == result.timings


def test_predict_paths_and_arrays(result, colour_folder):
    paths = sorted(str(p) for p in (colour_folder / "red").glob("*.png"))[:3]
    assert result.predict(paths) == ["red"] * 3
    from transfer_automl.data import read_image

    batch = np.stack([read_image(p) for p in paths])
    assert result.predict(batch) == result.predict(paths)
    np.testing.assert_allclose(result.predict_proba(batch / 255.0),
                               result.predict_proba(paths), atol=1e-5)
    assert result.predict(batch[0]) == result.predict(paths[:1])
    assert result.predict_proba(batch).shape == (3, 3)


def test_export_reloads_in_a_fresh_process(result, tmp_path, colour_folder):
    out = result.export(tmp_path / "model")
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["config"] == active_settings(result.best_config)
    assert meta["backbone"] == "efficientnet_lite0"
    if meta["config"]["n_dense"] < 2:  # the model's settings only: no idle second layer
        assert "units_2" not in meta["config"] and "units_2" in result.best_config
    assert json.loads((out / "labels.json").read_text()) == ["blue", "green", "red"]
    paths = sorted(str(p) for p in colour_folder.rglob("*.png"))[::4]
    code = (
        "import json, sys\n"
        "from transfer_automl import load_model\n"
        f"labels = load_model({str(out)!r}).predict({paths!r})\n"
        "assert 'transfer_automl.training._runner' not in sys.modules\n"
        "assert 'pretrained.loading' not in sys.modules\n"
        "print(json.dumps(labels))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == result.predict(paths)


def test_export_refuses_a_non_empty_directory(result, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        result.export(tmp_path / "x")


@pytest.mark.parametrize("kwargs, match", [
    ({"max_trials": 0}, "max_trials"),
    ({"time_budget_s": -1}, "time_budget_s"),
    ({"executor": "mars"}, "executor"),
    ({"search": SearchOptions(backbones=["resnet9000"])}, "backbones"),
])
def test_bad_arguments_name_the_parameter(colour_folder, kwargs, match, tmp_path):
    with pytest.raises(InputError, match=match):
        fit_auto(colour_folder, cache_dir=tmp_path, **kwargs)


def test_predict_command_prints_top_k_as_json(result, tmp_path, colour_folder):
    import json
    import subprocess
    import sys

    model = result.export(tmp_path / "model")
    images = [str(next((colour_folder / c).iterdir())) for c in ("blue", "red")]
    proc = subprocess.run([sys.executable, "-m", "transfer_automl.cli", "predict", str(model),
                           *images, "--json", "--top-k", "3"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["path"] for r in rows] == images
    for row in rows:
        assert [t["label"] for t in row["top"]][0] == row["label"] and len(row["top"]) == 3
        assert sorted(t["label"] for t in row["top"]) == ["blue", "green", "red"]
        probs = [t["probability"] for t in row["top"]]
        assert probs == sorted(probs, reverse=True) and abs(sum(probs) - 1) < 1e-4
    assert [r["label"] for r in rows] == result.model.predict(images)


def test_the_test_score_comes_with_its_count_interval_and_confusion(result, colour_folder):
    import json

    from transfer_automl.trial_model import wilson_interval

    report = result.test_report
    assert report.accuracy == result.test_score and report.n == sum(map(sum, report.confusion))
    low, high = report.interval
    assert low <= report.accuracy <= high and (low, high) == wilson_interval(
        round(report.accuracy * report.n), report.n)
    assert sorted(report.per_class) == ["blue", "green", "red"]
    assert sum(n for _, n in report.per_class.values()) == report.n
    assert f"on {report.n} images" in report.summary()
    assert "rough figure" in report.summary()  # a tiny test split says so
    saved = json.loads((result.model.path / "metadata.json").read_text())["test"]
    assert saved["n"] == report.n and saved["confusion"] == report.confusion
    assert len(repr(result)) < 300 and result.run_id in repr(result)


def test_wilson_interval():
    from transfer_automl.trial_model import wilson_interval

    low, high = wilson_interval(8, 10)
    assert abs(low - 0.4902) < 1e-3 and abs(high - 0.9433) < 1e-3
    assert wilson_interval(0, 0) == (0.0, 1.0) and wilson_interval(5, 5)[1] == 1.0


def test_a_search_without_a_knowledge_base_says_so(result):
    assert result.explanation.startswith("no knowledge base (kb=False)")
    assert "empty" not in result.explanation and result.group is None


def test_the_leaderboard_is_a_table_for_notebooks_and_pandas(result):
    board = result.leaderboard
    assert isinstance(board, list) and board[0]["trial"]  # still a list of row dicts
    assert repr(board).startswith(f"Leaderboard({len(board)} rows, best {board[0]['trial']}")
    html = board._repr_html_()
    assert html.count("<tr>") == len(board) + 1 and "<th>score</th>" in html
    frame = board.to_pandas()
    assert list(frame["trial"]) == [row["trial"] for row in board]
    assert frame["score"].iloc[0] == result.best_score
