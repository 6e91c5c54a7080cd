"""Turning a path or URL into an engine, with the SQLite settings concurrent writers need."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

from transfer_automl.errors import InputError

__all__ = ["default_kb_path", "resolve_url", "make_engine", "utc", "now"]


def default_kb_path(cache_dir: str | Path | None = None) -> Path:
    """Where the embedded KB lives unless told otherwise.

    Args:
        cache_dir: the cache root; default ``~/.cache/transfer-automl``.

    Returns:
        ``<cache_dir>/kb.sqlite`` (not created here).
    """
    root = Path(cache_dir).expanduser() if cache_dir else Path.home() / ".cache" / "transfer-automl"
    return root / "kb.sqlite"


def resolve_url(url_or_path: str | Path | None) -> str:
    if url_or_path is None:
        url_or_path = default_kb_path()
    text = str(url_or_path)
    if isinstance(url_or_path, Path) or "://" not in text:
        path = Path(text).expanduser().resolve()
        if path.is_dir():
            raise InputError(f"kb: {path} is a folder; give a file path such as {path / 'kb.sqlite'}"
                             " or a SQLAlchemy URL")
        path.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{path}"
    try:
        make_url(text)
    except Exception as exc:
        raise InputError(f"kb: {text!r} is neither a file path nor a SQLAlchemy URL ({exc})") from None
    return text


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
