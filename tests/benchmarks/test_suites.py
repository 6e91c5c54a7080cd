"""One smoke test per benchmark suite: its ``--quick`` run end to end into ``tmp_path``.

Each asserts real outputs (CSV rows with the suite's columns, the Markdown report) and, for
the resumable suites, that a second run skips the units already done. Data is generated
(``benchmarks.harness.write_quick_datasets``), so nothing needs ``../shared/datasets``.
"""

from __future__ import annotations

import csv
import shutil
import subprocess

import pytest

import benchmarks
from benchmarks import harness

SPARK = shutil.which("java") is not None
try:
    import pyspark  # noqa: F401
except ImportError:
    SPARK = False


@pytest.fixture()
def quick(tmp_path, cache_root):
    """Run a suite's quick mode into ``tmp_path`` on the session cache; its exit code."""
    def run(name: str, *extra: str) -> int:
        return benchmarks.run(name, ["--quick", "--out", str(tmp_path),
                                     "--cache-dir", str(cache_root), *extra])
    return run


def rows(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_every_suite_is_registered_with_a_description():
    assert set(benchmarks.SUITES) >= {"warm_start_loo", "cost_aware", "spark_async",
                                      "cv_fold_leak", "selection_bias", "rescore_exact_kb",
                                      "baseline_gain", "throughput", "build_seed_kb",
                                      "meta_dataset"}
    for name in benchmarks.SUITES:
        assert benchmarks.describe(name)
        for option in ("--quick", "--out", "--resume"):
            assert option in harness.build_parser(name, benchmarks.suite(name)).format_help()


def test_result_rows_resume_lock_and_new_columns(tmp_path):
    table = harness.ResultRows(tmp_path / "r.csv", ("a", "b"))
    with table.locked():
        table.append([{"a": 1, "b": 2, "ignored": 3}])
    assert table.done(lambda r: r["a"]) == {"1"}
    wider = harness.ResultRows(tmp_path / "r.csv", ("a", "b", "c"))
    wider.append([{"a": 4, "b": 5, "c": 6}])
    assert wider.read() == [{"a": "1", "b": "2", "c": ""}, {"a": "4", "b": "5", "c": "6"}]
    assert wider.set_aside() == tmp_path / "r.csv.bak" and wider.read() == []


def test_command_line_drops_a_shard():
    line = harness.command_line("warm_start_loo", ["--shard", "1/2", "--seeds", "0"],
                                ("--shard",))
    assert line == "transfer-automl benchmark warm_start_loo --seeds 0"
    assert harness.Stamp.now().cpus >= 1


def test_throughput(quick, tmp_path):
    assert quick("throughput") == 0
    lines = (tmp_path / "throughput.md").read_text().splitlines()
    assert lines[0].startswith("| date | dataset |") and "| colours | 16 | 64 |" in lines[-1]


def test_cv_fold_leak_resumes(quick, tmp_path):
    assert quick("cv_fold_leak") == 0
    first = rows(tmp_path / "cv_fold_leak.csv")
    assert list(first[0]) == ["dataset", "n", "pooling", "labels", "weight_decay",
                              "from_zeros", "chained", "gap"]
    assert len(first) == 2 * 2 * 2  # pooling x labels x weight decays
    real = [r for r in first if r["labels"] == "real"]
    assert min(float(r["from_zeros"]) for r in real) > 0.8  # colours are easy
    assert "Weakest penalty" in (tmp_path / "cv_fold_leak.md").read_text()
    assert quick("cv_fold_leak") == 0  # the dataset is done: nothing re-run
    assert rows(tmp_path / "cv_fold_leak.csv") == first


def test_cost_aware(quick, tmp_path):
    # part c is two fit_auto searches through harness.search, which the suites below cover;
    # left out here to keep this file near two minutes
    assert quick("cost_aware", "--parts", "ab") == 0
    text = (tmp_path / "cost_aware.md").read_text()
    for section in ("a. Head-trial cost", "b. Extraction vs raw forward"):
        assert section in text
    assert "**Head trial (exact (lbfgs, the default), cache off):" in text
    assert "Command: `transfer-automl benchmark cost_aware --quick" in text


def test_selection_bias_resumes(quick, tmp_path):
    assert quick("selection_bias") == 0
    first = rows(tmp_path / "selection_bias.csv")
    assert list(first[0]) == ["dataset", "seed", "trial", "state", "fidelity", "origin", "val",
                              "test", "chosen", "exported_test", "n_val", "n_test", "commit"]
    assert len(first) == 2 and sum(r["chosen"] == "True" for r in first) == 1
    assert all(r["test"] for r in first if r["val"])  # every scored trial has a test score
    assert "| colours | 0 |" in (tmp_path / "selection_bias.md").read_text()
    assert quick("selection_bias") == 0
    assert rows(tmp_path / "selection_bias.csv") == first


def test_warm_start_loo_resumes(quick, tmp_path):
    assert quick("warm_start_loo") == 0
    first = rows(tmp_path / "warm_start_loo.csv")
    assert tuple(first[0]) == benchmarks.suite("warm_start_loo").FIELDS
    assert {(r["dataset"], r["mode"]) for r in first} == {("colours", "auto"),
                                                         ("colours", "none")}
    report = (tmp_path / "warm_start_loo.md").read_text()
    assert "| colours | 0 |" in report and "## Anytime" in report
    assert quick("warm_start_loo") == 0
    assert rows(tmp_path / "warm_start_loo.csv") == first


def test_baseline_gain(quick, tmp_path):
    assert quick("baseline_gain") == 0
    (row,) = rows(tmp_path / "baseline_gain.csv")
    assert row["dataset"] == "colours" and row["seed"] == "0"
    assert float(row["diff"]) == float(row["test"]) - float(row["baseline"])
    assert float(row["latency_ms"]) > 0 and float(row["baseline_latency_ms"]) > 0
    assert float(row["search_s"]) <= 20 + 5  # the budget, less loading; one epoch of grace
    text = (tmp_path / "baseline_gain.md").read_text()
    assert "| colours | 1 |" in text and "Median over 1 datasets" in text
    assert quick("baseline_gain") == 0  # resumed: the finished pair is not run again
    assert len(rows(tmp_path / "baseline_gain.csv")) == 1


def test_build_seed_kb_then_rescore(quick, tmp_path):
    import json

    assert quick("build_seed_kb") == 0
    doc = json.loads((tmp_path / "seed_kb.json").read_text())
    assert [d["name"] for d in doc["datasets"]] == ["colours"] and len(doc["trials"]) == 1
    assert quick("rescore_exact_kb", str(tmp_path / "seed_kb.json")) == 0
    text = (tmp_path / "rescore_exact_kb.md").read_text()
    assert "| colours | t000 |" in text and "1 trials re-scored" in text
    again = json.loads((tmp_path / "seed_kb.json").read_text())
    assert "score_chained_folds" in again["trials"][0]["extra"]


def test_build_seed_kb_from_meta_dataset(tmp_path, cache_root, colour_folder):
    """The seed gains the build's rows (whole lines only: the build may be appending) and
    their datasets' embeddings; its searches stay; a second refresh changes nothing."""
    import json

    from knowledge_base import KnowledgeBase

    seed = tmp_path / "seed_kb.json"
    with KnowledgeBase(tmp_path / "base.sqlite") as kb:
        kb.start_run("r", kb.add_dataset("searched", "fp-s", [1.0, 0.0]))
        kb.record_trial("r", {"trial_id": "t000", "status": "complete", "score": 0.7})
        kb.finish_run("r")
        kb.export_json(seed)
    line = {"dataset": colour_folder.name, "portfolio_version": 1, "config_id": "x-l0-224-avg",
            "fidelity": "features", "state": "complete", "reason": "", "score": 0.9,
            "best_epoch": 1, "n_images": 30, "cv_folds": 5.0, "curve": [
                {"epoch": 1, "val_accuracy": 0.912345, "val_loss": 0.3, "accuracy": 1.0,
                 "seconds": 0.5}], "wall_s": 1.0, "cpu_s": 1.0, "features_s": 0.1,
            "commit": "abc", "load": 1.0, "finished": "2026-12-01T00:00:00Z"}
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps(line) + "\n" + json.dumps(
        dict(line, dataset="elsewhere", config_id="x-l0-160-avg")) + "\n" + '{"dataset": "ha')
    embeddings = tmp_path / "embeddings.json"
    embeddings.write_text(json.dumps({colour_folder.name: [0.5, 0.25], "elsewhere": [1, 2]}))
    argv = ["--from-meta-dataset", "--export", str(seed), "--meta-rows", str(rows),
            "--meta-embeddings", str(embeddings), "--root", str(colour_folder.parent),
            "--out", str(tmp_path), "--cache-dir", str(cache_root)]
    assert benchmarks.run("build_seed_kb", argv) == 0
    first = seed.read_text()
    assert benchmarks.run("build_seed_kb", argv) == 0
    assert json.loads(seed.read_text())["portfolio"] == json.loads(first)["portfolio"]
    with KnowledgeBase(tmp_path / "fresh.sqlite") as kb:
        kb.import_json(seed)
        assert [t.score for t in kb.trials()] == [0.7]
        got = {r.dataset: r for r in kb.portfolio_rows(1)}
        vectors = {d.name: d.embedding.tolist() for d in kb.portfolio_datasets()}
    assert set(got) == {colour_folder.name, "elsewhere"}
    assert len(got[colour_folder.name].fingerprint) == 64  # the folder's content
    assert got["elsewhere"].fingerprint == "name:elsewhere"  # no folder: keyed by name
    assert got[colour_folder.name].curve[0]["val_accuracy"] == 0.9123
    assert vectors == {colour_folder.name: [0.5, 0.25], "elsewhere": [1.0, 2.0]}


def test_meta_dataset(tmp_path, cache_root, monkeypatch):
    # build_meta_dataset.py takes no cache option: point the library's default root here
    home = tmp_path / "xdg"
    (home / "transfer-automl").mkdir(parents=True)
    (cache_root / "backbones").mkdir(exist_ok=True)
    (home / "transfer-automl" / "backbones").symlink_to(cache_root / "backbones")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    monkeypatch.delenv("TRANSFER_AUTOML_CACHE", raising=False)
    assert benchmarks.run("meta_dataset", ["--quick", "--out", str(tmp_path)]) == 0
    [path] = (tmp_path / "meta_dataset").glob("portfolio_v*.jsonl")
    [row] = [__import__("json").loads(line) for line in path.read_text().splitlines()]
    assert row["dataset"] == "colours" and row["config_id"] == "x-l0-160-avg"
    assert row["state"] == "complete" and row["score"] > 0.8


@pytest.mark.skipif(not SPARK, reason="needs pyspark and java")
def test_spark_async(quick, tmp_path):
    assert quick("spark_async", "--master", "local[1]", "--parts", "a,b") == 0
    text = (tmp_path / "spark_async.md").read_text()
    assert "(a) Asynchronous + early stopping" in text and "(b) Per-trial dispatch" in text
    assert "**Makespan ratio async+stop / sync:" in text


def test_scheduling_replay_resumes(quick, tmp_path):
    assert quick("scheduling_replay") == 0
    first = rows(tmp_path / "scheduling_replay.csv")
    assert tuple(first[0]) == benchmarks.suite("scheduling_replay").FIELDS
    # 2 generated datasets x 2 repetitions x 2 slot counts x every scheduler
    assert len(first) == 2 * 2 * 2 * 8
    assert {r["scheduler"] for r in first} >= {"sync-batches", "sync-sha", "async+stop"}
    by = {(r["dataset"], r["slots"], r["rep"], r["scheduler"]): r for r in first}
    for (dataset, slots, rep, name), r in by.items():  # no scheduler beats the full curves
        full = by[(dataset, slots, rep, "sync-batches")]
        assert float(r["best_score"]) <= float(full["best_score"])
    text = (tmp_path / "scheduling_replay.md").read_text()
    assert "## 4 slots, pooled over datasets" in text and "## Goals" in text
    assert "Command: `transfer-automl benchmark scheduling_replay --quick" in text
    assert quick("scheduling_replay") == 0  # both datasets done: nothing re-run
    assert rows(tmp_path / "scheduling_replay.csv") == first


def test_cli_lists_the_suites_and_forwards_options():
    from typer.testing import CliRunner

    from transfer_automl.cli import app

    result = CliRunner().invoke(app, ["benchmark", "--help"])
    assert result.exit_code == 0
    for name in ("warm_start_loo", "throughput", "cv_fold_leak"):
        assert name in result.output
    result = CliRunner().invoke(app, ["benchmark", "throughput", "--help"])
    assert result.exit_code == 0 and "--quick" in result.output and "--images" in result.output


def test_transfer_replay_finds_the_planted_structure(quick, tmp_path):
    """On the generated meta-dataset (two families of datasets, each preferring its own
    configurations, near in embedding) the methods that use the embedding beat a random
    order, a larger KB lowers regret, and near datasets agree."""
    import numpy as np

    from benchmarks import _replay_methods as rm
    from benchmarks import transfer_replay

    assert quick("transfer") == 0
    text = (tmp_path / "transfer_replay.md").read_text()
    assert "8 held-out datasets" in text and "nearest neighbour" in text
    rows_path, emb_path = tmp_path / "synthetic" / "rows.jsonl", tmp_path / "synthetic" / \
        "embeddings.json"
    args = harness.parse("transfer", transfer_replay, ["--quick", "--out", str(tmp_path)])
    meta = transfer_replay.load(rows_path, emb_path, args)
    results = transfer_replay.evaluate(meta, args)
    first = 0  # regret after one trial
    saved = results["random"][:, first] - results["nearest neighbour"][:, first]
    assert saved.mean() > 0.05 and (saved >= 0).all()
    curve = transfer_replay.kb_size_curve(meta, args)
    assert curve[-1][1] < curve[0][1]
    dist, agree = rm.rank_agreement(meta)
    assert np.corrcoef(dist, agree)[0, 1] < -0.5


def test_replay_regret_counts_trials_and_seconds():
    import numpy as np

    from benchmarks import _replay_methods as rm

    scores, costs = np.array([0.5, 0.9, 0.7]), np.array([10.0, 100.0, 5.0])
    trials, seconds = rm.regret_curves(scores, costs, [2, 0, 1], [1, 2, 3], [4, 15, 200])
    assert np.allclose(trials, [0.2, 0.2, 0.0])
    assert np.allclose(seconds, [0.9, 0.2, 0.0])  # nothing done after 4 s counts as 0
    assert rm.trials_to_reach(scores, [2, 0, 1], 0.01) == 3


def test_transfer_replay_reads_the_same_table_from_a_kb(tmp_path):
    """``--kb``: the build's rows and embeddings as the KB holds them give the replay the
    table the JSON lines give; a row a search added (its own split) is left out."""
    import json

    import numpy as np

    from benchmarks import transfer_replay
    from benchmarks._replay_kb import kb_table
    from knowledge_base import KnowledgeBase

    rows_path, emb_path = transfer_replay.write_synthetic(tmp_path / "synthetic")
    args = harness.parse("transfer", transfer_replay, ["--out", str(tmp_path)])
    expected = transfer_replay.load(rows_path, emb_path, args)
    vectors = json.loads(emb_path.read_text())
    lines = [json.loads(line) for line in rows_path.read_text().splitlines()]
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        kb.add_portfolio_rows(
            [dict(r, portfolio_version=1, fingerprint=f"content-{r['dataset']}",
                  embedding=vectors[r["dataset"]]) for r in lines]
            + [dict(lines[0], portfolio_version=1, config_id="f-k1-sgd-1e-2", score=1.0,
                    fingerprint=f"content-{lines[0]['dataset']}", source="run:r/t000")])
        kb.export_json(tmp_path / "kb.json")
    for source in (tmp_path / "kb.sqlite", tmp_path / "kb.json"):
        got = transfer_replay.matrix(*kb_table(source), emb_path, args)
        assert (got.datasets, got.configs) == (expected.datasets, expected.configs)
        assert np.array_equal(got.scores, expected.scores)
        assert np.array_equal(got.costs, expected.costs)
        np.testing.assert_allclose(got.embeddings, expected.embeddings, rtol=1e-6)


def test_radon_machine(quick, tmp_path):
    assert quick("radon_machine") == 0
    (row,) = rows(tmp_path / "radon_machine.csv")
    assert row["size"] == "100%+flips" and int(row["partitions"]) == int(row["dims"]) + 3
    assert all(0.0 <= float(row[k]) <= 1.0 for k in ("full_acc", "same_acc", "avg_acc",
                                                       "radon_acc"))
    assert "| colours | 100%+flips |" in (tmp_path / "radon_machine.md").read_text()
