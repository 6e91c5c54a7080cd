"""Turning a path or URL into an engine, with the SQLite settings concurrent writers need."""

from __future__ import annotations

import datetime as dt
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


def make_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised through every test
        dbapi_conn.isolation_level = None  # the "begin" hook below issues BEGIN itself
        cur = dbapi_conn.cursor()
        for pragma in ("busy_timeout = 60000", "journal_mode = WAL", "synchronous = NORMAL",
                       "foreign_keys = ON"):
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
