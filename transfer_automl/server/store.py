"""The server's state in the knowledge base: API tokens, uploaded datasets and jobs.

The tables are part of the KB schema (Alembic revision 0002), so the KB's migrations create
them and the job state survives a restart of the server. Rows go out as plain dicts ready for
JSON; every write is one short transaction, safe next to the worker processes that write
progress into the same database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from knowledge_base import KnowledgeBase
from knowledge_base.engine import make_engine, now, utc
from knowledge_base.models import JobRow, RunRow, TokenRow, TrialRow, UploadRow

TERMINAL = ("complete", "failed", "cancelled")
ACTIVE = ("queued", "running")
STATUSES = ACTIVE + TERMINAL


def hash_token(token: str) -> str:
    """The SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _iso(value: dt.datetime | None) -> str | None:
    value = utc(value)
    return value.isoformat() if value is not None else None


class ServerStore:
    """Tokens, datasets and jobs of the upload server in one knowledge-base database.

    Args:
        kb: SQLite path or SQLAlchemy URL of the knowledge base; its schema is brought to the
            newest migration on open.
    """

    def __init__(self, kb: str) -> None:
        base = KnowledgeBase(kb)
        base.upgrade()
        self.url = base.url
        base.close()
        self._engine = make_engine(self.url)
        self._write_engine = self._engine.execution_options(kb_write=True)

    def close(self) -> None:
        """Release the pooled connections."""
        self._engine.dispose()

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        with Session(self._write_engine if write else self._engine) as s, s.begin():
            yield s

    # -- tokens -----------------------------------------------------------------------------
    def create_token(self, user: str) -> str:
        """Create a token for ``user`` and return it; only its hash is stored."""
        token = secrets.token_urlsafe(32)
        with self._session(write=True) as s:
            s.add(TokenRow(user=user, token_hash=hash_token(token), created=now()))
        return token

    def user_for_token(self, token: str) -> str | None:
        """The user a token belongs to, or None for an unknown token."""
        with self._session() as s:
            return s.scalar(select(TokenRow.user).where(TokenRow.token_hash == hash_token(token)))

    def tokens(self) -> list[dict[str, Any]]:
        """Every token's id, user and creation time (never the token)."""
        with self._session() as s:
            rows = s.scalars(select(TokenRow).order_by(TokenRow.id))
            return [{"id": r.id, "user": r.user, "created": _iso(r.created)} for r in rows]

    def revoke_tokens(self, user: str) -> int:
        """Delete every token of ``user``; returns how many there were."""
        with self._session(write=True) as s:
            return s.execute(delete(TokenRow).where(TokenRow.user == user)).rowcount

    # -- datasets ---------------------------------------------------------------------------
    def add_dataset(self, dataset_id: str, owner: str, name: str, kind: str, path: str,
                    report: dict[str, Any]) -> dict[str, Any]:
        """Record a validated upload; ``path`` is relative to the data directory."""
        row = UploadRow(id=dataset_id, owner=owner, name=name, kind=kind, path=path,
                        report=report, created=now())
        with self._session(write=True) as s:
            s.add(row)
            s.flush()
            return _dataset_dict(row)

    def dataset(self, dataset_id: str, owner: str | None = None) -> dict[str, Any] | None:
        """One dataset; None if it does not exist, was deleted or belongs to someone else."""
        with self._session() as s:
            row = s.get(UploadRow, dataset_id)
            if row is None or row.path == _DELETED or (owner is not None and row.owner != owner):
                return None
            return _dataset_dict(row)

    def datasets(self, owner: str) -> list[dict[str, Any]]:
        """The datasets of ``owner``, newest first."""
        with self._session() as s:
            rows = s.scalars(select(UploadRow).where(UploadRow.owner == owner,
                                                     UploadRow.path != _DELETED)
                             .order_by(UploadRow.created.desc()))
            return [_dataset_dict(r) for r in rows]

    def delete_dataset(self, dataset_id: str) -> None:
        """Forget a dataset. While finished jobs still refer to it, its row stays behind as
        a hidden marker (no path) so their records keep their dataset id; the last of them
        to be deleted takes it along."""
        with self._session(write=True) as s:
            if _jobs_of(s, dataset_id):
                s.execute(update(UploadRow).where(UploadRow.id == dataset_id)
                          .values(path=_DELETED))
            else:
                s.execute(delete(UploadRow).where(UploadRow.id == dataset_id))

    # -- jobs -------------------------------------------------------------------------------
    def add_job(self, job_id: str, owner: str, dataset_id: str,
                params: dict[str, Any]) -> dict[str, Any]:
        """Queue a new job."""
        row = JobRow(id=job_id, owner=owner, dataset_id=dataset_id, params=params,
                     status="queued", run_id=None, attempts=0, pid=None, error="",
                     progress={}, result=None, created=now(), started=None, finished=None)
        with self._session(write=True) as s:
            s.add(row)
            s.flush()
            return _job_dict(row)

    def job(self, job_id: str, owner: str | None = None) -> dict[str, Any] | None:
        """One job; None if it does not exist or belongs to someone else."""
        with self._session() as s:
            row = s.get(JobRow, job_id)
            if row is None or (owner is not None and row.owner != owner):
                return None
            return _job_dict(row)

    def jobs(self, owner: str | None = None,
             status: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Jobs, oldest first, optionally of one owner or in some states."""
        query = select(JobRow).order_by(JobRow.created, JobRow.id)
        if owner is not None:
            query = query.where(JobRow.owner == owner)
        if status is not None:
            query = query.where(JobRow.status.in_(list(status)))
        with self._session() as s:
            return [_job_dict(r) for r in s.scalars(query)]

    def delete_job(self, job_id: str) -> None:
        """Forget a job (and its dataset's marker, if the dataset was deleted before)."""
        with self._session(write=True) as s:
            row = s.get(JobRow, job_id)
            if row is None:
                return
            dataset_id = row.dataset_id
            s.delete(row)
            s.flush()
            if not _jobs_of(s, dataset_id):
                s.execute(delete(UploadRow).where(UploadRow.id == dataset_id,
                                                  UploadRow.path == _DELETED))

    def update_job(self, job_id: str, *, only_if_status: Sequence[str] | None = None,
                   **values: Any) -> bool:
        """Change some columns of a job; with ``only_if_status`` only while the job is in one
        of those states (so a late worker cannot overwrite a cancel). Returns whether a row
        changed."""
        unknown = set(values) - set(JobRow.__table__.columns.keys())
        if unknown:
            raise ValueError(f"update_job: unknown columns {sorted(unknown)}")
        query = update(JobRow).where(JobRow.id == job_id)
        if only_if_status is not None:
            query = query.where(JobRow.status.in_(list(only_if_status)))
        with self._session(write=True) as s:
            return s.execute(query.values(**values)).rowcount > 0

    def interrupt_run(self, run_id: str, reason: str) -> bool:
        """Close a search run whose worker was ended (a cancelled job): the run becomes
        ``interrupted`` and its unfinished trials ``failed`` with ``reason``, so the KB never
        shows them running. A run already finished is left alone. Returns whether it was
        open."""
        with self._session(write=True) as s:
            closed = s.execute(update(RunRow).where(RunRow.id == run_id,
                                                    RunRow.status == "running")
                               .values(status="interrupted", finished=now())).rowcount
            if closed:
                s.execute(update(TrialRow).where(TrialRow.run_id == run_id,
                                                 TrialRow.status.in_(["running", "pending"]))
                          .values(status="failed", reason=reason, updated=now()))
        return closed > 0


_DELETED = ""  # the path of a deleted dataset's marker row


def _jobs_of(s: Session, dataset_id: str) -> int:
    return s.scalar(select(func.count()).select_from(JobRow)
                    .where(JobRow.dataset_id == dataset_id)) or 0


def _dataset_dict(r: UploadRow) -> dict[str, Any]:
    return {"id": r.id, "owner": r.owner, "name": r.name, "kind": r.kind, "path": r.path,
            "report": r.report, "created": _iso(r.created)}


def _job_dict(r: JobRow) -> dict[str, Any]:
    return {"id": r.id, "owner": r.owner, "dataset_id": r.dataset_id, "params": r.params,
            "status": r.status, "run_id": r.run_id, "attempts": r.attempts, "pid": r.pid,
            "error": r.error, "progress": r.progress, "result": r.result,
            "created": _iso(r.created), "started": _iso(r.started),
            "finished": _iso(r.finished)}
