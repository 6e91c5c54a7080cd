"""JSON export of the whole KB and idempotent, merging import (across backends)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from knowledge_base import KnowledgeBase, KnowledgeBaseError
from knowledge_base.grouping import regroup


def _populate(kb):
    ds = [kb.add_dataset(f"d{i}", f"fp{i}", np.eye(4)[i % 4] + i * 0.01,
                         {"n_classes": i + 2}, {"source": f"/x/{i}", "n_images": 10 * i})
          for i in range(5)]
    kb.start_run("r-done", ds[0], {"seed": 0})
    kb.record_trial("r-done", {"trial_id": "t000", "number": 0, "config": {"lr": 0.1},
                               "status": "complete", "score": 0.8, "best_epoch": 2,
                               "metrics": [{"epoch": 1, "val_accuracy": 0.7}], "cost": 1.5,
                               "fidelity": "features", "origin": "kb:d1/r/t", "prior": "kb:d1/r/t"})
    kb.finish_run("r-done", "complete", "t000")
    kb.start_run("r-live", ds[1])
    kb.record_trial("r-live", {"trial_id": "t000", "number": 0, "config": {"lr": 0.2}})
    regroup(kb)
    kb.add_portfolio_rows([
        {"portfolio_version": 1, "config_id": c, "config": {"lr": 0.1}, "dataset": "d0",
         "fingerprint": "content-0", "dataset_id": ds[0], "embedding": [0.5, 0.25],
         "score": 0.7 + i / 10, "curve": [{"epoch": 1, "val_accuracy": 0.7}], "wall_s": 3.0,
         "finished": "2026-12-01T10:00:00Z"} for i, c in enumerate(("a", "b"))]
        + [{"portfolio_version": 1, "config_id": "a", "dataset": "elsewhere",
            "fingerprint": "content-9", "state": "failed", "reason": "no memory"}])
    return ds


def _snapshot(kb):
    fp = {d.id: d.fingerprint for d in kb.datasets()}  # ids differ between KBs
    return {
        "datasets": sorted((d.fingerprint, d.name, tuple(d.embedding.tolist()),
                            json.dumps(d.meta, sort_keys=True), json.dumps(d.report, sort_keys=True))
                           for d in kb.datasets()),
        "runs": sorted((r.id, r.status, r.best_trial_id, r.finished is None) for r in kb.runs()),
        "trials": sorted((t.run_id, t.trial_id, t.status, t.score, json.dumps(t.config),
                          json.dumps(t.metrics), t.prior, t.cost) for t in kb.trials()),
        "groups": sorted((g.version, g.label, len(g.members)) for g in kb.groups()),
        "portfolio": sorted((r.portfolio_version, r.config_id, r.fingerprint, r.dataset, r.score,
                             r.state, r.reason, json.dumps(r.curve), json.dumps(r.config),
                             r.wall_s, r.finished, fp.get(r.dataset_id))
                            for r in kb.portfolio_rows()),
        "portfolio_datasets": sorted((d.fingerprint, d.name, None if d.embedding is None else
                                      tuple(d.embedding.tolist()))
                                     for d in kb.portfolio_datasets()),
    }


def test_export_import_round_trip_and_idempotence(kb_url, tmp_path):
    with KnowledgeBase(tmp_path / "source.sqlite") as source:
        _populate(source)
        counts = source.export_json(tmp_path / "kb.json")
        expected = _snapshot(source)
    assert counts == {"datasets": 5, "runs": 2, "trials": 2, "groups": len(expected["groups"]),
                      "portfolio_datasets": 2, "portfolio": 3}

    with KnowledgeBase(kb_url) as target:
        assert target.import_json(tmp_path / "kb.json") == counts
        assert _snapshot(target) == expected
        assert target.import_json(tmp_path / "kb.json") == dict.fromkeys(counts, 0)
        assert _snapshot(target) == expected
        # A second export of the imported KB carries the same content.
        target.export_json(tmp_path / "again.json")
    first, again = (json.loads((tmp_path / f).read_text()) for f in ("kb.json", "again.json"))
    for key in ("datasets", "runs", "trials", "groups", "portfolio_datasets", "portfolio"):
        assert first[key] == again[key]


def test_import_merges_and_finished_beats_running(tmp_path):
    with KnowledgeBase(tmp_path / "a.sqlite") as a, KnowledgeBase(tmp_path / "b.sqlite") as b:
        _populate(a)
        a.export_json(tmp_path / "early.json")
        b.import_json(tmp_path / "early.json")
        a.record_trial("r-live", {"trial_id": "t000", "status": "complete", "score": 0.5})
        a.finish_run("r-live", "complete", "t000")
        b.add_dataset("only-in-b", "fp-b", [0.0, 0.0, 0.0, 1.0])
        a.export_json(tmp_path / "late.json")
        counts = b.import_json(tmp_path / "late.json")
        assert (counts["runs"], counts["trials"], counts["datasets"]) == (1, 1, 0)
        assert {r.id: r.status for r in b.runs()} == {"r-done": "complete", "r-live": "complete"}
        assert len(b.datasets()) == 6


def test_import_rejects_foreign_files(tmp_path, sqlite_kb):
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(KnowledgeBaseError, match="not a transfer-automl KB export"):
        sqlite_kb.import_json(bad)
    with pytest.raises(KnowledgeBaseError, match="cannot read"):
        sqlite_kb.import_json(tmp_path / "missing.json")
