"""Lineage, history pictures, restore and retune on a real (tiny) run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from transfer_automl import fit_auto
from transfer_automl.errors import InputError
from transfer_automl.history import ROOT, RunHistory, write_history
from transfer_automl.options import SearchOptions
from transfer_automl.restore import restore, retune
from transfer_automl.run import find_run
from transfer_automl.space import default_space


@pytest.fixture(scope="module")
def run(tmp_path_factory, cache_root, colour_folder):
    """A 4-trial run with the multi-fidelity schedule (2 cheap trials, 2 fine-tuning ones),
    recorded in a fresh knowledge base; its cache shares the session's converted backbone."""
    cache = tmp_path_factory.mktemp("tracking-cache")
    (cache_root / "backbones").mkdir(exist_ok=True)
    (cache / "backbones").symlink_to(cache_root / "backbones", target_is_directory=True)
    space = default_space(["efficientnet_lite0"]).fix(resolution=64, epochs=3)
    kb = cache / "kb.sqlite"
    result = fit_auto(colour_folder, max_trials=4, time_budget_s=600, seed=0, kb=str(kb),
                      cache_dir=cache, search=SearchOptions(space=space))
    return result, cache, kb


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transfer_automl.cli", *args],
                          capture_output=True, text=True, timeout=600)


def test_every_trial_appears_once_under_its_parent(run):
    result, cache, _ = run
    history = RunHistory.load(find_run(cache / "runs", result.run_id))
    nodes = history.tree()
    trials = [k for k, n in nodes.items() if n.kind == "trial"]
    assert sorted(trials) == sorted(row["trial"] for row in result.leaderboard)
    children = [c for n in nodes.values() for c in n.children]
    assert sorted(children) == sorted(k for k in nodes if k != ROOT)  # each node once
    fine = [row for row in result.leaderboard if row["origin"].endswith("fine-tune")]
    assert fine, "the schedule should have promoted a trial"
    for row in fine:  # a fine-tuning trial hangs under the trial whose head it keeps
        assert row["parent"] in trials and nodes[row["trial"]].parent == row["parent"]


def test_history_command_writes_the_tree_and_plots(run, tmp_path):
    result, cache, _ = run
    done = _cli("history", result.run_id, "--cache-dir", str(cache), "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert result.run_id in done.stdout
    png = (tmp_path / "tree.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    svg = (tmp_path / "tree.svg").read_text()
    assert "<svg" in svg
    for row in result.leaderboard:  # every trial is labelled in the picture
        assert row["trial"] in svg
    assert (tmp_path / "curves.png").exists() and (tmp_path / "best_so_far.png").exists()


def test_restore_exports_the_trial_model(run, tmp_path, colour_folder):
    result, cache, _ = run
    trial = restore(result.run_id, "t000", cache_dir=cache)
    assert trial.spec.trial_id == "t000" and trial.checkpoint.exists()
    model = trial.export(tmp_path / "t000")
    paths = sorted(str(p) for p in (colour_folder / "green").glob("*.png"))[:2]
    assert model.predict(paths) == ["green", "green"]
    with pytest.raises(InputError, match="no finished trial"):
        restore(result.run_id, "t999", cache_dir=cache)


def test_retune_continues_from_the_checkpoint_as_a_child(run):
    from knowledge_base import KnowledgeBase

    result, cache, kb = run
    parent = restore(result.run_id, "t000", cache_dir=cache)
    child = retune(result.run_id, "t000", cache_dir=cache, kb=str(kb), optimizer="adam",
                   learning_rate=1e-5, epochs=1)
    assert child.spec.parent == "t000" and child.spec.origin == "retune/t000"
    assert child.result.state.value == "complete", child.result.reason
    first = child.result.history[0]
    # it starts where the parent ended, not from scratch
    assert first.val_accuracy >= parent.result.score - 0.05
    assert child.result.extra["init"] == 1.0
    # the same training from fresh weights is far behind after one epoch
    from transfer_automl.trial import TrialContext
    from transfer_automl.training import TrialRunner
    from dataclasses import replace

    files = find_run(cache / "runs", result.run_id)
    runner = TrialRunner(TrialContext(str(files.manifest), str(files.run_dir / "control"),
                                      str(cache / "features"), str(cache / "backbones"),
                                      cv_folds=0))
    scratch = runner.run(replace(child.spec, trial_id="control", init_weights=None),
                         lambda m: None)
    assert first.val_loss < scratch.history[0].val_loss / 2
    # journalled in the run (so the tree shows it) and in the KB with its lineage
    nodes = RunHistory.load(files).tree()
    assert nodes[child.spec.trial_id].parent == "t000"
    with KnowledgeBase(str(kb)) as store:
        stored = {t.trial_id: t for t in store.trials(run_id=result.run_id)}
    assert stored[child.spec.trial_id].parent == "t000"
    fine = [row for row in result.leaderboard if row["parent"]]
    assert all(stored[row["trial"]].parent == row["parent"] for row in fine)
    # resource use travels with every trial's record
    for entry in stored.values():
        assert entry.extra["cpu_s"] > 0 and entry.extra["peak_rss_mb"] > 0


def test_retention_keeps_the_best_and_every_parent(run, tmp_path):
    import shutil

    from transfer_automl.api import retain_checkpoints
    from transfer_automl.study import Study

    result, cache, _ = run
    source = find_run(cache / "runs", result.run_id)
    copy = tmp_path / result.run_id
    shutil.copytree(source.run_dir, copy)
    journal = copy / "trials.jsonl"  # the copy's checkpoints are the copied files
    journal.write_text(journal.read_text().replace(str(source.run_dir), str(copy)))
    study = Study(default_space(["efficientnet_lite0"]).fix(resolution=64, epochs=3))
    for spec, res in find_run(tmp_path, result.run_id).journal()[0]:
        study.restore(spec, res)
    parents = {r.spec.parent for r in study.trials.values() if r.spec.parent}
    best = study.best().spec.trial_id
    removed = retain_checkpoints(study, keep=1)
    for record in study.trials.values():
        tid, artifact = record.spec.trial_id, record.result.artifact
        if tid == best or tid in parents:
            assert artifact and Path(artifact).is_file(), tid
        elif artifact:
            assert tid in removed and not Path(artifact).exists()
    assert removed  # the run had more checkpoints than the best and the parents
    gone = restore(result.run_id, removed[0], runs_dir=tmp_path, cache_dir=cache)
    assert gone.result.artifact.startswith(str(copy)), gone.result.artifact
    with pytest.raises(InputError, match="retention policy"):
        gone.checkpoint


def test_retune_rejects_what_it_cannot_change(run):
    result, cache, _ = run
    with pytest.raises(InputError, match="cannot change"):
        retune(result.run_id, "t000", cache_dir=cache, kb=False, n_dense=2)


def test_restore_command_retunes_into_one_more_child(run):
    result, cache, _ = run
    files = find_run(cache / "runs", result.run_id)
    before = len(files.timed_journal())
    done = _cli("restore", result.run_id, "t000", "--lr", "1e-4", "--epochs", "1",
                "--no-kb", "--cache-dir", str(cache))
    assert done.returncode == 0, done.stderr
    assert "child of t000" in done.stdout
    entries = files.timed_journal()
    assert len(entries) == before + 1 and entries[-1][0].parent == "t000"
    done = _cli("restore", result.run_id, "t999", "--cache-dir", str(cache))
    assert done.returncode == 2 and "no finished trial" in done.stderr
