"""A knowledge base that cannot be used says why in one line, before any expensive step."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from knowledge_base import KnowledgeBase, KnowledgeBaseError
from tests.knowledge_base.conftest import PG_ENV
from transfer_automl.errors import InputError


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "transfer_automl.cli", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def test_a_file_that_is_not_sqlite_is_one_line(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    with pytest.raises((KnowledgeBaseError, InputError), match="file is not a database"):
        KnowledgeBase(text).check()
    out = _cli("kb", "show", "--kb", str(text))
    assert out.returncode != 0
    lines = [line for line in (out.stderr + out.stdout).splitlines() if line.strip()]
    assert lines == [f"error: kb: cannot open sqlite:///{text}: file is not a database"], lines


def test_unreachable_postgresql_is_one_line():
    # port 9 (discard) on loopback: nothing listens, the connection is refused at once
    with pytest.raises(KnowledgeBaseError, match="cannot open postgresql.*refused"):
        KnowledgeBase("postgresql://nobody@127.0.0.1:9/kb").check()


def test_read_only_commands_never_create_a_kb(tmp_path):
    missing = tmp_path / "no" / "such" / "kb.sqlite"
    out = _cli("kb", "show", "--kb", str(missing))
    assert out.returncode != 0 and "no knowledge base at" in out.stderr + out.stdout
    assert not missing.parent.exists()
    with pytest.raises(InputError, match="no knowledge base"):
        KnowledgeBase(missing, create=False)


def test_postgresql_url_without_a_driver_uses_the_installed_one():
    from knowledge_base.engine import resolve_url

    assert resolve_url("postgresql://u@h:1/db").startswith("postgresql+psycopg2://") or \
        resolve_url("postgresql://u@h:1/db").startswith("postgresql+psycopg://")
    assert resolve_url("postgresql+psycopg2://u@h:1/db") == "postgresql+psycopg2://u@h:1/db"


def test_kb_show_with_a_plain_postgresql_url_works_on_a_real_server(tmp_path):
    from sqlalchemy.engine import make_url

    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"set {PG_ENV} to a PostgreSQL server URL")
    plain = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
    out = _cli("kb", "show", "--kb", plain, "--cache-dir", str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]


def test_fit_checks_the_kb_before_embedding(colour_folder, tmp_path, monkeypatch):
    from transfer_automl import fit_auto
    from transfer_automl.embedding import BackboneStatsEmbedder

    def never(*args, **kwargs):
        raise AssertionError("the dataset was embedded before the KB was checked")

    monkeypatch.setattr(BackboneStatsEmbedder, "embed", never)
    text = tmp_path / "kb.txt"
    text.write_text("x")  # shorter than SQLite's header: SQLite would take it for empty
    with pytest.raises(InputError, match="file is not a database"):
        fit_auto(colour_folder, max_trials=1, kb=str(text), cache_dir=tmp_path / "cache")
    assert text.read_text() == "x"
    text.write_text("a text file longer than the header of a SQLite database\n")
    with pytest.raises(InputError, match="file is not a database"):
        fit_auto(colour_folder, max_trials=1, kb=str(text), cache_dir=tmp_path / "cache")
