"""The run recorder writes a run to the knowledge base only once a trial of it has completed."""

from __future__ import annotations

from types import SimpleNamespace

from knowledge_base import KnowledgeBase
from transfer_automl.run import RunFiles
from transfer_automl.search import EventKind, SearchEvent
from transfer_automl.space import Choice, SearchSpace
from transfer_automl.study import Study, TrialRecord
from transfer_automl.tracking.recorder import RunRecorder
from transfer_automl.trial import TrialResult, TrialSpec, TrialState

SPACE = SearchSpace((Choice("lr", (0.1, 0.01)),), {"lr": 0.1})
DATA = SimpleNamespace(fingerprint="f" * 16, report=SimpleNamespace(
    source="/data/cats", to_dict=lambda: {"classes": 2}), class_names=["a", "b"],
    train=SimpleNamespace(labels=[0, 1]), val=SimpleNamespace(labels=[]), test=[])


def _search(recorder, study, outcomes):
    """Feed the recorder started/finished events of one trial per outcome."""
    for n, (state, score) in enumerate(outcomes):
        record = TrialRecord(TrialSpec(f"t{n:03d}", n, {"lr": 0.1}, "test", seed=0))
        recorder.on_event(SearchEvent(EventKind.STARTED, record, study, float(n)))
        record.result = TrialResult(record.spec.trial_id, state, score=score,
                                    reason="" if score else "worker process died")
        record.state = state
        recorder.on_event(SearchEvent(EventKind.FINISHED, record, study, n + 0.5))


def _recorder(tmp_path, kb):
    files = RunFiles(tmp_path / "run-1")
    files.run_dir.mkdir()
    study = Study(SPACE)
    return RunRecorder(kb, DATA, [1.0, 0.0, 0.0], files, study), study


def test_a_search_whose_trials_all_fail_leaves_nothing_to_match(tmp_path, monkeypatch):
    monkeypatch.setattr("transfer_automl.embedding.meta_features", lambda data: {})
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    recorder, study = _recorder(tmp_path, kb)
    _search(recorder, study, [(TrialState.FAILED, None)] * 3)
    recorder.close("failed")
    with KnowledgeBase(tmp_path / "kb.sqlite") as again:
        assert again.datasets() == [] and again.runs() == []
    assert len(RunFiles(tmp_path / "run-1").journal()[0]) == 3  # the journal is complete


def test_the_first_completed_trial_writes_the_run_with_the_trials_before_it(tmp_path,
                                                                            monkeypatch):
    monkeypatch.setattr("transfer_automl.embedding.meta_features", lambda data: {})
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    recorder, study = _recorder(tmp_path, kb)
    _search(recorder, study, [(TrialState.FAILED, None), (TrialState.COMPLETE, 0.75),
                              (TrialState.PRUNED, 0.5)])
    recorder.close("complete")
    with KnowledgeBase(tmp_path / "kb.sqlite") as again:
        [dataset] = again.datasets()
        assert dataset.name == "cats"
        [run] = again.runs()
        assert run.status == "complete"
        trials = sorted(again.trials(), key=lambda t: t.trial_id)
        assert [(t.trial_id, t.status) for t in trials] == [
            ("t000", "failed"), ("t001", "complete"), ("t002", "pruned")]
