"""Turning a path or URL into an engine, with the SQLite settings concurrent writers need."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

from transfer_automl import paths
from transfer_automl.errors import InputError

__all__ = ["default_kb_path", "resolve_url", "make_engine", "utc", "now"]


def default_kb_path(cache_dir: str | Path | None = None) -> Path:
    """Where the embedded KB lives unless told otherwise.

    Args:
        cache_dir: the cache root; default :func:`transfer_automl.paths.default_cache_dir`.

    Returns:
        ``<cache_dir>/kb.sqlite`` (not created here).
    """
    return paths.cache_dir(cache_dir) / "kb.sqlite"


def resolve_url(url_or_path: str | Path | None, create: bool = True) -> str:
    """A SQLAlchemy URL for a path or URL.

    A file path becomes a SQLite URL (its folder is created only when ``create``; without
    it, a file that does not exist is an error). ``postgresql://`` without a driver gets the
    PostgreSQL driver that is installed (psycopg 3, else psycopg2): SQLAlchemy's default is
    psycopg 3, which the project does not install.
    """
    if url_or_path is None:
        url_or_path = default_kb_path()
    text = str(url_or_path)
    if isinstance(url_or_path, Path) or "://" not in text:
        path = Path(text).expanduser().resolve()
        if path.is_dir():
            raise InputError(f"kb: {path} is a folder; give a file path such as {path / 'kb.sqlite'}"
                             " or a SQLAlchemy URL")
        if not create and not path.is_file():
            raise InputError(f"kb: no knowledge base at {path}")
        if path.is_file() and path.stat().st_size and not _is_sqlite(path):
            # SQLite itself takes a file shorter than its header for an empty database
            # and writes over it; refuse before anything opens it
            raise InputError(f"kb: cannot open sqlite:///{path}: file is not a database")
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    try:
        url = make_url(text)
    except Exception as exc:
        raise InputError(f"kb: {text!r} is neither a file path nor a SQLAlchemy URL ({exc})") from None
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername=f"postgresql+{_postgres_driver()}")
        return url.render_as_string(hide_password=False)
    return text


def _is_sqlite(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def _postgres_driver() -> str:
    import importlib.util

    for module, driver in (("psycopg", "psycopg"), ("psycopg2", "psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return driver
    raise InputError("kb: a PostgreSQL URL needs a driver: pip install psycopg2-binary")


_LOCK_WAIT_S = 60.0


def _use_wal(cur) -> None:
    """Put the database file in WAL mode, waiting out other connections' locks.

    WAL is a property of the file, so this only changes anything on the first connection to a
    new file. That change needs a lock no other connection holds, and SQLite reports
    "database is locked" at once rather than calling the busy handler, so two processes
    opening a new KB together would race; hence the retry.
    """
    if str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + _LOCK_WAIT_S
    pause = 0.01
    while True:
        try:
            cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.5)


def make_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": _LOCK_WAIT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised through every test
        dbapi_conn.isolation_level = None  # the "begin" hook below issues BEGIN itself
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(_LOCK_WAIT_S * 1000)}")
        _use_wal(cur)
        for pragma in ("synchronous = NORMAL", "foreign_keys = ON"):
            cur.execute(f"PRAGMA {pragma}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        write = conn.get_execution_options().get("kb_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(
        dt.timezone.utc)


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
