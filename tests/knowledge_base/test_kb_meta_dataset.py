"""The portfolio meta-dataset in the KB: its migration from the previous head, idempotent
upserts, reading rows back, the conversion of the build's JSON lines, and the seed KB."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from sqlalchemy import create_engine, inspect

from knowledge_base import KnowledgeBase, rows_from_jsonl
from knowledge_base.meta_dataset import BUILD_SOURCE
from knowledge_base.store import MIGRATIONS_DIR
from transfer_automl.errors import InputError

PREVIOUS_HEAD = "0003"


def _migrate(url: str, revision: str, down: bool = False) -> None:
    """``alembic upgrade|downgrade REVISION`` on the KB at ``url``, as the store runs it."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    engine = create_engine(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
    engine.dispose()


def _row(config_id="x-l0-224-avg", dataset="flowers", fingerprint="content-1", **extra):
    return {"portfolio_version": 1, "config_id": config_id, "config": {"optimizer": "lbfgs"},
            "dataset": dataset, "fingerprint": fingerprint, "fidelity": "features",
            "state": "complete", "score": 0.9, "best_epoch": 1, "cv_folds": 5, "n_images": 300,
            "curve": [{"epoch": 1, "val_accuracy": 0.9, "val_loss": 0.3}], "wall_s": 2.5,
            "cpu_s": 2.0, "features_s": 0.01, "commit": "abc1234",
            "finished": "2026-12-01T22:33:36Z", **extra}


def test_a_kb_at_the_previous_head_upgrades_keeping_its_data(kb_url):
    with KnowledgeBase(kb_url) as kb:
        url = kb.url
    _migrate(url, PREVIOUS_HEAD)
    assert KnowledgeBase(url).schema_version() == PREVIOUS_HEAD
    assert "portfolio_evaluations" not in inspect(create_engine(url)).get_table_names()
    # Write at 0003 (the datasets table is as it was then) without the store, which upgrades.
    from sqlalchemy import insert

    from knowledge_base.models import DatasetRow

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(insert(DatasetRow).values(
            name="old", fingerprint="fp-old", dim=2,
            embedding=np.array([1, 2], "<f4").tobytes(), meta={}, report={},
            created=dt.datetime.now(dt.timezone.utc)))
    engine.dispose()

    with KnowledgeBase(url) as kb:  # opening upgrades
        [old] = kb.datasets()
        assert kb.schema_version() == KnowledgeBase.head_revision() != PREVIOUS_HEAD
        np.testing.assert_array_equal(old.embedding, [1.0, 2.0])
        assert kb.add_portfolio_rows([_row(dataset_id=old.id)])["added"] == 1
        [row] = kb.portfolio_rows(dataset_id=old.id)
        assert (row.config_id, row.dataset, row.score) == ("x-l0-224-avg", "flowers", 0.9)
    # and back down: the new tables go, the old data stays
    _migrate(url, PREVIOUS_HEAD, down=True)
    assert "portfolio_evaluations" not in inspect(create_engine(url)).get_table_names()
    with KnowledgeBase(url) as kb:
        assert [d.name for d in kb.datasets()] == ["old"] and kb.portfolio_rows() == []


def test_rows_are_upserted_idempotently_and_read_back(kb):
    ds = kb.add_dataset("flowers", "split-fp", np.ones(4))
    rows = [_row(), _row("g-l0-224-avg-adam", score=0.8, dataset_id=ds, embedding=[0.0, 1.0]),
            _row(dataset="cats", fingerprint="content-2", state="failed", score=None,
                 reason="out of memory")]
    assert kb.add_portfolio_rows(rows) == {"added": 3, "updated": 0, "kept": 0}
    assert kb.add_portfolio_rows(rows) == {"added": 0, "updated": 0, "kept": 3}
    assert kb.add_portfolio_rows([_row(score=0.95)], replace=False)["kept"] == 1
    assert kb.add_portfolio_rows([_row(score=0.95)]) == {"added": 0, "updated": 1, "kept": 0}

    every = kb.portfolio_rows(1)
    assert [(r.dataset, r.config_id) for r in every] == [
        ("cats", "x-l0-224-avg"), ("flowers", "g-l0-224-avg-adam"), ("flowers", "x-l0-224-avg")]
    assert kb.portfolio_rows(2) == []
    cats, adam, default = every
    assert (cats.state, cats.score, cats.reason) == ("failed", None, "out of memory")
    assert default.score == 0.95 and default.source == BUILD_SOURCE
    assert default.finished == dt.datetime(2026, 12, 1, 22, 33, 36, tzinfo=dt.timezone.utc)
    assert (adam.dataset_id, adam.cv_folds, adam.curve) == (ds, 5, rows[0]["curve"])
    assert [r.config_id for r in kb.portfolio_rows(dataset_id=ds)] == ["g-l0-224-avg-adam"]
    assert len(kb.portfolio_rows(fingerprint="content-1")) == 2
    assert [r.fingerprint for r in kb.portfolio_rows(name="cats")] == ["content-2"]
    datasets = {d.name: d for d in kb.portfolio_datasets()}
    assert datasets["cats"].embedding is None
    np.testing.assert_array_equal(datasets["flowers"].embedding, [0.0, 1.0])


def test_bad_rows_say_what_is_wrong(kb):
    with pytest.raises(InputError, match="unknown keys"):
        kb.add_portfolio_rows([_row(colour="red")])
    with pytest.raises(InputError, match="fingerprint"):
        kb.add_portfolio_rows([_row(fingerprint="")])
    assert kb.portfolio_rows() == []  # one transaction: nothing of a bad batch is kept


def test_rows_from_the_build_s_json_lines(tmp_path):
    line = {"dataset": "bccd_wbc3", "portfolio_version": 1, "config_id": "x-l0-224-avg",
            "fidelity": "features", "state": "complete", "reason": "", "score": 0.824,
            "best_epoch": 1, "n_images": 279, "cv_folds": 5.0,
            "curve": [{"epoch": 1, "val_accuracy": 0.8242857, "val_loss": 0.62496632,
                       "accuracy": 1.0, "seconds": 1.212}],
            "wall_s": 3.519, "cpu_s": 1.58, "features_s": 0.004, "commit": "9d4c3a2",
            "load": 2.79, "finished": "2026-12-01T22:33:36Z"}
    path = tmp_path / "portfolio_v1.jsonl"
    path.write_text(json.dumps(line) + "\n" + json.dumps(dict(line, dataset="cats")) + "\n\n")
    configs = {"x-l0-224-avg": {"optimizer": "lbfgs"}}
    rows = rows_from_jsonl(path, configs, {"bccd_wbc3": "content-b"}, {"cats": [1.0, 2.0]},
                           digits=4)
    assert [r["fingerprint"] for r in rows] == ["content-b", "name:cats"]
    assert rows[0]["curve"] == [{"epoch": 1, "val_accuracy": 0.8243, "val_loss": 0.625,
                                 "accuracy": 1.0, "seconds": 1.212}]
    assert rows[0]["config"] == configs["x-l0-224-avg"] and "embedding" not in rows[0]
    assert "load" not in rows[0] and rows[1]["embedding"] == [1.0, 2.0]
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:
        assert kb.add_portfolio_rows(rows)["added"] == 2
        [row] = kb.portfolio_rows(name="bccd_wbc3")
        assert (row.cv_folds, row.n_images, row.commit) == (5, 279, "9d4c3a2")
    with pytest.raises(InputError, match="not in the portfolio"):
        rows_from_jsonl([json.dumps(dict(line, config_id="nope"))], configs)



def test_a_fresh_default_kb_holds_the_seed_s_portfolio_rows(tmp_path):
    from transfer_automl.planning import open_kb
    from transfer_automl.portfolio import match, portfolio

    configs = {e.config_id: e.config for e in portfolio()}
    store = open_kb(None, tmp_path)
    try:
        rows = store.portfolio_rows(1)
        datasets = store.portfolio_datasets()
        assert len(rows) >= 17 * 36 and store.trials()  # the searches are still there
    finally:
        store.close()
    assert {r.config_id for r in rows} == set(configs)
    # each stored configuration is its id's (a parameter added to the space since reads as
    # its default)
    assert all(match(r.config).config_id == r.config_id for r in rows)
    assert all(r.source == BUILD_SOURCE and r.fingerprint and r.curve for r in rows
               if r.state == "complete")
    # every dataset a row ran on has the embedding it is matched by
    assert {r.fingerprint for r in rows} == {d.fingerprint for d in datasets}
    dims = {d.embedding.size for d in datasets if d.embedding is not None}
    assert len(datasets) >= 17 and dims == {2565}
    assert all(d.embedding is not None for d in datasets)


def test_an_export_writes_each_configuration_once(tmp_path):
    with KnowledgeBase(tmp_path / "a.sqlite") as a:
        a.add_portfolio_rows([_row(), _row(dataset="cats", fingerprint="content-2"),
                              _row(dataset="dogs", fingerprint="content-3",
                                   config={"optimizer": "adam"})])
        a.export_json(tmp_path / "kb.json")
        expected = [(r.dataset, r.config) for r in a.portfolio_rows()]
    doc = json.loads((tmp_path / "kb.json").read_text())
    assert doc["portfolio_configs"] == [{"portfolio_version": 1, "config_id": "x-l0-224-avg",
                                         "config": {"optimizer": "lbfgs"}}]
    assert [("config" in r) for r in doc["portfolio"]] == [False, False, True]
    with KnowledgeBase(tmp_path / "b.sqlite") as b:
        b.import_json(tmp_path / "kb.json")
        assert [(r.dataset, r.config) for r in b.portfolio_rows()] == expected
