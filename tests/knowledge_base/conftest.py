"""Knowledge-base fixtures: every store test runs on SQLite and, when a server is given, on
PostgreSQL (a fresh database per test).

PostgreSQL: set ``TRANSFER_AUTOML_TEST_PG_URL`` to a server URL, e.g. the one printed by
``tests/knowledge_base/start_postgres.sh``; without it the PostgreSQL cases are skipped.
"""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

PG_ENV = "TRANSFER_AUTOML_TEST_PG_URL"


def _pg_database(base_url: str):
    """Create a throw-away database on the server; returns (url, drop)."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = f"kbtest_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    url = make_url(base_url).set(database=name).render_as_string(hide_password=False)
    return url, drop


@pytest.fixture(params=["sqlite", "postgresql"])
def kb_url(request, tmp_path):
    """A URL (or path) of an empty KB on each backend."""
    if request.param == "sqlite":
        yield str(tmp_path / "kb.sqlite")
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL case: set {PG_ENV} to a server URL "
                    "(tests/knowledge_base/start_postgres.sh starts one on 127.0.0.1:55432)")
    url, drop = _pg_database(base)
    yield url
    drop()


@pytest.fixture
def kb(kb_url):
    from knowledge_base import KnowledgeBase

    with KnowledgeBase(kb_url) as store:
        yield store


@pytest.fixture
def sqlite_kb(tmp_path):
    from knowledge_base import KnowledgeBase

    with KnowledgeBase(tmp_path / "kb.sqlite") as store:
        yield store


def blobs(n_blobs: int, per_blob: int = 6, dim: int = 16, spread: float = 0.3, seed: int = 0):
    """Well-separated Gaussian blobs: returns (centres, list of (blob, vector))."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_blobs, dim)) * 3.0
    points = [(b, centres[b] + rng.normal(size=dim) * spread)
              for b in range(n_blobs) for _ in range(per_blob)]
    return centres, points
