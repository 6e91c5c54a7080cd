"""The store on every backend: schema migrations, round trips, upserts and input errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect

from knowledge_base import KnowledgeBase, KnowledgeBaseError, default_kb_path, trial_record
from transfer_automl.errors import InputError
from transfer_automl.trial import EpochMetrics, TrialResult, TrialSpec, TrialState


def _url(kb: KnowledgeBase) -> str:
    return kb.url


def test_migrates_empty_database_to_head_and_rerun_is_a_no_op(kb_url):
    kb = KnowledgeBase(kb_url)
    assert kb.schema_version() is None
    head = KnowledgeBase.head_revision()
    assert kb.upgrade() == head
    assert kb.schema_version() == head
    assert kb.upgrade() == head  # idempotent
    tables = set(inspect(create_engine(kb.url)).get_table_names())
    assert {"datasets", "runs", "trials", "groups", "alembic_version"} <= tables
    kb.close()


def test_models_match_the_migrations(kb):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from knowledge_base.models import Base

    kb.upgrade()
    with create_engine(kb.url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_schema_is_created_on_first_use_unless_told_not_to(kb_url):
    with pytest.raises(KnowledgeBaseError, match="upgrade"):
        KnowledgeBase(kb_url, auto_upgrade=False).datasets()
    assert KnowledgeBase(kb_url).datasets() == []


def test_round_trip_of_datasets_runs_and_trials(kb):
    emb = np.linspace(-1, 1, 12).astype(np.float32)
    ds = kb.add_dataset("flowers", "fp-1", emb, {"n_classes": 5},
                        {"source": "/data/flowers", "n_images": 100, "mean_size": [32, 32]})
    assert kb.add_dataset("flowers again", "fp-1", emb * 2) == ds  # idempotent on fingerprint
    [entry] = kb.datasets()
    assert (entry.id, entry.name, entry.fingerprint) == (ds, "flowers", "fp-1")
    np.testing.assert_array_equal(entry.embedding, emb)
    assert entry.meta == {"n_classes": 5} and entry.report["mean_size"] == [32, 32]
    assert entry.created.tzinfo is not None

    kb.start_run("r1", ds, {"max_trials": 3, "seed": np.int64(0)})
    kb.start_run("r1", ds)  # a resume is a no-op
    kb.record_trial("r1", {"trial_id": "t000", "number": 0, "config": {"lr": 0.01},
                           "origin": "kb:cats/r0/t004", "prior": "kb:cats/r0/t004"})
    [running] = kb.trials()
    assert running.status == "running" and running.score is None
    metrics = [{"epoch": 1, "val_accuracy": 0.5, "loss": float("nan")}]
    kb.record_trial("r1", {"trial_id": "t000", "status": "complete", "score": np.float32(0.75),
                           "best_epoch": 1, "metrics": metrics, "cost": 3.5,
                           "fidelity": "features"})
    [t] = kb.trials(dataset_id=ds)
    assert (t.status, t.score, t.best_epoch, t.cost, t.fidelity) == ("complete", 0.75, 1, 3.5,
                                                                     "features")
    assert t.config == {"lr": 0.01} and t.prior == "kb:cats/r0/t004"  # kept from the insert
    assert t.metrics == [{"epoch": 1, "val_accuracy": 0.5, "loss": None}]  # NaN stored as null
    assert kb.trials(status="failed") == [] and len(kb.trials(run_id="r1")) == 1

    [run] = kb.runs()
    assert (run.status, run.finished, run.settings) == ("running", None,
                                                        {"max_trials": 3, "seed": 0})
    kb.finish_run("r1", "complete", "t000")
    [run] = kb.runs(dataset_id=ds, status="complete")
    assert run.best_trial_id == "t000" and run.finished >= run.started


def test_trial_record_from_spec_and_result(kb):
    ds = kb.add_dataset("d", "fp", [1.0, 0.0])
    kb.start_run("r", ds)
    spec = TrialSpec("t001", 1, {"lr": 0.1}, "kb:cats/r0/t002", seed=3)
    kb.record_trial("r", trial_record(spec))
    result = TrialResult("t001", TrialState.PRUNED, score=0.4, best_epoch=2,
                         history=(EpochMetrics("t001", 1, 1.0, 0.3, 1.1, 0.35, 2.0),
                                  EpochMetrics("t001", 2, 0.9, 0.4, 1.0, 0.4, 2.0)),
                         reason="median rule", seconds=4.0, fidelity="features")
    kb.record_trial("r", trial_record(spec, result))
    [t] = kb.trials()
    assert (t.status, t.score, t.reason, t.prior, t.origin) == (
        "pruned", 0.4, "median rule", "kb:cats/r0/t002", "kb:cats/r0/t002")
    assert [m["val_accuracy"] for m in t.metrics] == [0.35, 0.4]


def test_bad_input_says_what_is_wrong(kb):
    with pytest.raises(KnowledgeBaseError, match="add_dataset"):
        kb.start_run("r", 99)
    ds = kb.add_dataset("d", "fp", [1.0])
    with pytest.raises(KnowledgeBaseError, match="start_run"):
        kb.record_trial("nope", {"trial_id": "t0"})
    kb.start_run("r", ds)
    with pytest.raises(InputError, match="unknown keys"):
        kb.record_trial("r", {"trial_id": "t0", "scroe": 1})
    with pytest.raises(InputError, match="status"):
        kb.record_trial("r", {"trial_id": "t0", "status": "done"})
    with pytest.raises(InputError, match="status"):
        kb.finish_run("r", "running")
    with pytest.raises(KnowledgeBaseError, match="no run"):
        kb.finish_run("nope")
    with pytest.raises(ValueError, match="embedding"):
        kb.add_dataset("x", "fp-x", [float("nan")])


def test_paths_urls_and_the_default(tmp_path):
    assert default_kb_path() == Path.home() / ".cache" / "transfer-automl" / "kb.sqlite"
    assert default_kb_path(tmp_path) == tmp_path / "kb.sqlite"
    nested = tmp_path / "a" / "b" / "kb.sqlite"
    kb = KnowledgeBase(nested)
    assert kb.url == f"sqlite:///{nested}" and kb.datasets() == []
    kb.close()
    with sqlite3.connect(nested) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert KnowledgeBase(f"sqlite:///{nested}").datasets() == []
    with pytest.raises(InputError, match="folder"):
        KnowledgeBase(tmp_path)


def test_import_is_light():
    code = ("import sys, knowledge_base; "
            "heavy = [m for m in ('tensorflow', 'faiss', 'sklearn', 'pyspark') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
