"""The portfolio of the meta-dataset: fixed, valid in the search space, spanning it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from transfer_automl.portfolio import PORTFOLIO_VERSION, portfolio
from transfer_automl.space import default_space, exact_solvable


def test_portfolio_is_valid_and_spans_the_joint_space():
    entries = portfolio()
    space = default_space(("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"))
    assert PORTFOLIO_VERSION >= 1 and len(entries) >= 48
    assert len({e.config_id for e in entries}) == len(entries)
    for e in entries:
        assert space.validate(e.config) == e.config
        if e.config["optimizer"] == "lbfgs":
            assert exact_solvable(e.config), e.config_id
    cheap = [e for e in entries if e.fidelity == "features"]
    fine = [e for e in entries if e.fidelity == "activations"]
    assert len(fine) >= 12
    assert {e.config["backbone"] for e in cheap} == set(space.param("backbone").options)
    assert {e.config["pooling"] for e in cheap} == {"avg", "max", "avgmax"}
    assert {e.config["unfrozen_blocks"] for e in fine} == {1, 2, 3}
    assert {e.config["optimizer"] for e in fine} == {"sgd", "adam", "adamw"}
    # the first entry is the search's own default: the baseline every method is measured by
    assert entries[0].config == space.complete({})
    # the same list every time: rows of the meta-dataset are keyed by its ids
    assert [e.config for e in portfolio()] == [e.config for e in entries]


def test_fine_tuning_subsample_keeps_classes_and_test(colour_folder, tmp_path):
    from transfer_automl.data import load_dataset

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "build_meta_dataset.py"
    spec = importlib.util.spec_from_file_location("build_meta_dataset", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = load_dataset(colour_folder, workdir=tmp_path)
    small = module.subsample(data, 15)
    assert len(small.train) + len(small.val) <= 17 and small.test == data.test
    assert set(np.unique(small.train.labels)) == set(np.unique(data.train.labels))
    assert set(small.train.paths) <= set(data.train.paths)
    assert small.content_fingerprint != data.content_fingerprint
    assert module.subsample(data, 10_000) is data


def test_match_ignores_inactive_parameters_and_missing_fusion():
    from transfer_automl.portfolio import match

    entries = portfolio()
    assert all(match(e.config) == e for e in entries)  # no two entries are one configuration
    one_backbone = default_space()  # no fusion parameter: it fuses nothing
    assert match(one_backbone.complete({})).config_id == "x-l0-224-avg"
    exact = dict(entries[0].config, learning_rate=0.5, momentum=0.1, units_2=7)  # inactive
    assert match(exact) == entries[0]
    assert match(dict(exact, weight_decay=0.1)) is None
    assert match(dict(exact, weight_decay=5e-4 * (1 + 1e-12))) == entries[0]  # float noise
    fine = next(e for e in entries if e.config_id == "f-k2-sgd-1e-2")
    assert match(dict(fine.config, momentum=0.5)) is None  # active under SGD


def test_a_finished_trial_becomes_a_portfolio_row_only_if_it_is_one():
    from transfer_automl.portfolio import PORTFOLIO_VERSION, trial_portfolio_row
    from transfer_automl.trial import EpochMetrics, TrialResult, TrialSpec, TrialState

    config = default_space().complete({})
    spec = TrialSpec("t000", 0, config, "default", seed=0)
    done = TrialResult("t000", TrialState.COMPLETE, score=0.9, best_epoch=1, seconds=2.5,
                       fidelity="features", extra={"cv_folds": 5.0, "cpu_s": 2.0},
                       history=(EpochMetrics("t000", 1, 0.1, 1.0, 0.3, 0.9, 1.23456),))
    where = dict(dataset="cats", fingerprint="content", n_images=120, dataset_id=3)
    row = trial_portfolio_row(spec, done, **where, source="run:r1/t000")
    assert (row["portfolio_version"], row["config_id"], row["score"]) == (
        PORTFOLIO_VERSION, "x-l0-224-avg", 0.9)
    assert (row["cv_folds"], row["n_images"], row["dataset_id"]) == (5, 120, 3)
    assert row["curve"] == [{"epoch": 1, "val_accuracy": 0.9, "val_loss": 0.3,
                             "accuracy": 1.0, "seconds": 1.235}]
    assert row["source"] == "run:r1/t000" and row["config"] == portfolio()[0].config
    pruned = TrialResult("t000", TrialState.PRUNED, score=0.5)
    other = TrialSpec("t001", 1, dict(config, weight_decay=0.1), "tpe", seed=0)
    refit = TrialSpec("t002", 2, config, "refit", seed=0, refit_epochs=1)
    assert trial_portfolio_row(spec, pruned, **where) is None
    assert trial_portfolio_row(spec, None, **where) is None
    assert trial_portfolio_row(other, done, **where) is None
    assert trial_portfolio_row(refit, done, **where) is None


def test_the_recorder_adds_a_portfolio_trial_without_replacing_the_build_s_row(tmp_path,
                                                                                monkeypatch):
    from types import SimpleNamespace

    from knowledge_base import KnowledgeBase
    from transfer_automl.run import RunFiles
    from transfer_automl.search import EventKind, SearchEvent
    from transfer_automl.study import Study, TrialRecord
    from transfer_automl.tracking.recorder import RunRecorder
    from transfer_automl.trial import TrialResult, TrialSpec, TrialState

    monkeypatch.setattr("transfer_automl.embedding.meta_features", lambda data: {})
    space = default_space()
    data = SimpleNamespace(fingerprint="split-fp", content_fingerprint="content-fp",
                           report=SimpleNamespace(source="/data/cats", to_dict=dict),
                           train=SimpleNamespace(labels=[0, 1, 1]),
                           val=SimpleNamespace(labels=[0]))
    kb = KnowledgeBase(tmp_path / "kb.sqlite")
    kb.add_portfolio_rows([{"portfolio_version": PORTFOLIO_VERSION, "config_id": "x-l0-224-max",
                            "dataset": "cats", "fingerprint": "content-fp", "score": 0.5}])
    files = RunFiles(tmp_path / "run-1")
    files.run_dir.mkdir()
    study = Study(space)
    recorder = RunRecorder(kb, data, [1.0, 0.0], files, study)
    configs = [space.complete({}), space.complete({"pooling": "max", "weight_decay": 1e-3}),
               space.complete({"weight_decay": 0.005})]
    for n, config in enumerate(configs):
        record = TrialRecord(TrialSpec(f"t{n:03d}", n, config, "test", seed=0))
        recorder.on_event(SearchEvent(EventKind.STARTED, record, study, float(n)))
        record.result = TrialResult(record.spec.trial_id, TrialState.COMPLETE, score=0.9,
                                    best_epoch=1, fidelity="features")
        record.state = TrialState.COMPLETE
        recorder.on_event(SearchEvent(EventKind.FINISHED, record, study, n + 0.5))
    recorder.close("complete")
    with KnowledgeBase(tmp_path / "kb.sqlite") as again:
        [dataset] = again.datasets()
        rows = {r.config_id: r for r in again.portfolio_rows(PORTFOLIO_VERSION)}
    assert set(rows) == {"x-l0-224-avg", "x-l0-224-max"}  # t002 is no portfolio configuration
    assert rows["x-l0-224-max"].score == 0.5  # the build's row stays
    new = rows["x-l0-224-avg"]
    assert (new.source, new.dataset_id, new.fingerprint, new.n_images) == (
        "run:run-1/t000", dataset.id, "content-fp", 4)
