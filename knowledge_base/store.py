"""The knowledge-base store: datasets, runs, trials, groups and the portfolio meta-dataset
(:mod:`knowledge_base.meta_dataset`) in any SQLAlchemy database.

The embedded default is one SQLite file (:func:`default_kb_path`); a shared KB is any
SQLAlchemy URL (PostgreSQL is tested). Every write is one short transaction, so several
``fit_auto`` processes can write to one KB at once and a killed process leaves the KB
consistent: its run stays ``running`` and every trial it recorded is there, whole.

On SQLite the file runs in WAL mode (readers never block the writer), waits on locks instead
of failing (``busy_timeout``) and takes the write lock at the start of a write transaction
(``BEGIN IMMEDIATE``), so two writers queue instead of deadlocking on a lock upgrade.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from knowledge_base.meta_dataset import PortfolioTables
from knowledge_base.models import DatasetRow, GroupRow, RunRow, TrialRow
from knowledge_base.engine import default_kb_path, make_engine, now, resolve_url, utc
from knowledge_base.records import (DatasetEntry, GroupEntry, RunEntry, RunStatus, TrialEntry,
                                     clean_json, from_blob, to_blob)
from transfer_automl.errors import InputError, KnowledgeBaseError

__all__ = ["KnowledgeBase", "KnowledgeBaseError", "default_kb_path", "MIGRATIONS_DIR"]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_LOCK = 7_283_190  # advisory-lock key serialising schema upgrades and regrouping on PostgreSQL
_UPSERT = {"sqlite": sqlite_insert, "postgresql": pg_insert}
_TRIAL_STATES = ("pending", "running", "complete", "pruned", "failed")
_TRIAL_FIELDS = {"trial_id": None, "number": 0, "config": {}, "status": "running", "score": None,
                 "best_epoch": None, "metrics": [], "reason": "", "cost": 0.0, "fidelity": "",
                 "origin": "", "prior": None, "parent": None, "extra": None}


class KnowledgeBase(PortfolioTables):
    """A connection to one knowledge base.

    Args:
        url_or_path: None for :func:`default_kb_path`, a file path for a SQLite KB, or any
            SQLAlchemy URL (``postgresql+psycopg2://user@host/db``) for a shared one.
        auto_upgrade: bring the schema to the newest migration on first use; with False an
            out-of-date schema raises :class:`KnowledgeBaseError` instead.

    Use as a context manager, or call :meth:`close`, to release the connections.
    """

    def __init__(self, url_or_path: str | Path | None = None, *, auto_upgrade: bool = True,
                 create: bool = True) -> None:
        self.url = resolve_url(url_or_path, create=create)
        self.auto_upgrade = auto_upgrade
        self._engine = make_engine(self.url)
        self._write_engine = self._engine.execution_options(kb_write=True)
        self._ready = False

    def __repr__(self) -> str:
        return f"KnowledgeBase({make_url(self.url).render_as_string(hide_password=True)!r})"

    def __enter__(self) -> KnowledgeBase:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()

    # -- schema ---------------------------------------------------------------------------
    @staticmethod
    def head_revision() -> str:
        """The newest migration shipped with this package."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()

    def schema_version(self) -> str | None:
        """The migration the database is at (None for an empty database)."""
        from alembic.runtime.migration import MigrationContext

        with self._engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def upgrade(self) -> str:
        """Run every pending migration (``alembic upgrade head``); safe to repeat and to run
        from several processes at once. Returns the revision now in place."""
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("path_separator", "os")
        with self._write_engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        self._ready = True
        return self.head_revision()

    def check(self) -> KnowledgeBase:
        """Connect and bring the schema up to date now, so an unusable KB fails before any
        expensive work; raises :class:`KnowledgeBaseError` with a one-line reason."""
        self._ensure_schema()
        return self

    def _ensure_schema(self) -> None:
        if self._ready:
            return
        try:
            self._open_schema()
        except (SQLAlchemyError, sqlite3.Error) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            where = make_url(self.url).render_as_string(hide_password=True)
            raise KnowledgeBaseError(f"kb: cannot open {where}: "
                                     f"{reason[0] if reason else type(exc).__name__}") from None

    def _open_schema(self) -> None:
        current, head = self.schema_version(), self.head_revision()
        if current != head:
            if not self.auto_upgrade:
                raise KnowledgeBaseError(
                    f"the KB schema is at {current or 'nothing'}, this version needs {head}; "
                    "call KnowledgeBase.upgrade() (or `transfer-automl kb upgrade`)")
            log.info("upgrading KB schema from %s to %s", current, head)
            self.upgrade()
        self._ready = True

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        """One short transaction; commits on success, rolls back on any error."""
        self._ensure_schema()
        with Session(self._write_engine if write else self._engine) as session, session.begin():
            yield session

    # -- datasets -------------------------------------------------------------------------
    def add_dataset(self, name: str, fingerprint: str, embedding: Sequence[float],
                    meta: Mapping[str, Any] | None = None,
                    report: Mapping[str, Any] | None = None) -> int:
        """Store a dataset once; adding the same fingerprint again returns the existing id.

        Args:
            name: a human-readable name (the folder name).
            fingerprint: a content hash identifying the dataset.
            embedding: its vector from the embedder.
            meta: meta-features (classes, images per class, ...).
            report: :meth:`transfer_automl.data.DataReport.to_dict` of its ingestion.
        """
        if not fingerprint:
            raise InputError("fingerprint: expected a non-empty string, got an empty one")
        blob, dim = to_blob(embedding)
        values = dict(name=str(name), fingerprint=str(fingerprint), dim=dim, embedding=blob,
                      meta=clean_json(dict(meta or {})), report=clean_json(dict(report or {})),
                      created=now())
        with self._session(write=True) as s:
            existing = s.scalar(select(DatasetRow.id).where(DatasetRow.fingerprint == fingerprint))
            if existing is not None:
                return existing
            try:
                with s.begin_nested():
                    return s.execute(insert(DatasetRow).values(**values)
                                     .returning(DatasetRow.id)).scalar_one()
            except IntegrityError:  # another process added it since our read (PostgreSQL)
                return s.scalar(select(DatasetRow.id).where(DatasetRow.fingerprint == fingerprint))

    def dataset(self, dataset_id: int) -> DatasetEntry:
        """One dataset by id."""
        with self._session() as s:
            row = s.get(DatasetRow, dataset_id)
            if row is None:
                raise KnowledgeBaseError(f"no dataset with id {dataset_id} in the KB")
            return _dataset_entry(row)

    def datasets(self) -> list[DatasetEntry]:
        """Every dataset, oldest first."""
        with self._session() as s:
            return [_dataset_entry(r) for r in s.scalars(select(DatasetRow).order_by(DatasetRow.id))]

    # -- runs -----------------------------------------------------------------------------
    def start_run(self, run_id: str, dataset_id: int,
                  settings: Mapping[str, Any] | None = None) -> None:
        """Record a run as ``running``. Starting the same run again (a resume) is a no-op."""
        with self._session(write=True) as s:
            row = s.get(RunRow, run_id)
            if row is not None:
                if row.dataset_id != dataset_id:
                    raise KnowledgeBaseError(f"run {run_id!r} exists for dataset {row.dataset_id}, "
                                             f"not {dataset_id}; use a new run id")
                return
            if s.get(DatasetRow, dataset_id) is None:
                raise KnowledgeBaseError(f"no dataset with id {dataset_id}; add_dataset() first")
            s.add(RunRow(id=run_id, dataset_id=dataset_id, started=now(), finished=None,
                         status=RunStatus.RUNNING, settings=clean_json(dict(settings or {})),
                         best_trial_id=None))

    def finish_run(self, run_id: str, status: str = RunStatus.COMPLETE,
                   best_trial_id: str | None = None) -> None:
        """Mark a run finished (``complete``, ``failed`` or ``interrupted``)."""
        if status not in RunStatus.ALL or status == RunStatus.RUNNING:
            raise InputError(f"status: expected one of complete, failed, interrupted; got {status!r}")
        with self._session(write=True) as s:
            done = s.execute(update(RunRow).where(RunRow.id == run_id).values(
                status=status, finished=now(), best_trial_id=best_trial_id))
            if done.rowcount == 0:
                raise KnowledgeBaseError(f"no run {run_id!r} in the KB; start_run() first")

    def runs(self, dataset_id: int | None = None, status: str | None = None) -> list[RunEntry]:
        """Runs, oldest first, optionally of one dataset or in one state."""
        query = select(RunRow).order_by(RunRow.started, RunRow.id)
        if dataset_id is not None:
            query = query.where(RunRow.dataset_id == dataset_id)
        if status is not None:
            query = query.where(RunRow.status == status)
        with self._session() as s:
            return [_run_entry(r) for r in s.scalars(query)]

    # -- trials ---------------------------------------------------------------------------
    def record_trial(self, run_id: str, record: Mapping[str, Any]) -> None:
        """Insert or update one trial of a run (keyed by ``record["trial_id"]``).

        ``record`` holds some of: trial_id (required), number, config, status, score,
        best_epoch, metrics (per-epoch dicts), reason, cost (seconds), fidelity, origin, prior,
        parent (the trial of the same run it descends from), extra (resource use and other
        figures the trial reported: cpu_s, peak_rss_mb, cache_hit, cv_folds...).
        On update only the given keys change. :func:`knowledge_base.trial_record` builds it
        from a ``TrialSpec`` and ``TrialResult``.
        """
        values = _trial_values(record)
        stamp = now()
        full = {**_TRIAL_FIELDS, **values, "run_id": run_id, "created": stamp, "updated": stamp}
        changed = [k for k in values if k != "trial_id"] + ["updated"]
        try:
            self._ensure_schema()
            with self._write_engine.begin() as conn:
                dialect = conn.dialect.name
                if dialect in _UPSERT:
                    # One statement: the write lock is held for as short a time as possible.
                    conn.execute(_upsert_statement(dialect, tuple(changed)), full)
                else:
                    with Session(bind=conn) as s:
                        _merge_trial(s, full, changed)
                        s.flush()
        except IntegrityError:
            raise KnowledgeBaseError(f"no run {run_id!r} in the KB; start_run() first") from None

    def trials(self, dataset_id: int | None = None, status: str | Sequence[str] | None = None,
               run_id: str | None = None) -> list[TrialEntry]:
        """Stored trials, in run then trial-number order, optionally filtered."""
        query = (select(TrialRow, RunRow.dataset_id).join(RunRow, TrialRow.run_id == RunRow.id)
                 .order_by(RunRow.started, TrialRow.run_id, TrialRow.number, TrialRow.id))
        if dataset_id is not None:
            query = query.where(RunRow.dataset_id == dataset_id)
        if run_id is not None:
            query = query.where(TrialRow.run_id == run_id)
        if status is not None:
            states = [status] if isinstance(status, str) else list(status)
            query = query.where(TrialRow.status.in_(states))
        with self._session() as s:
            return [_trial_entry(row, ds) for row, ds in s.execute(query)]

    # -- groups ---------------------------------------------------------------------------
    def save_groups(self, centroids: Sequence[Sequence[float]],
                    members: Sequence[Sequence[int]]) -> int:
        """Store a new grouping version (one row per group); returns the version number."""
        if len(centroids) != len(members):
            raise ValueError("save_groups: one member list per centroid expected")
        stamp = now()
        with self._session(write=True) as s:
            if s.bind.dialect.name == "postgresql":
                s.execute(select(func.pg_advisory_xact_lock(_PG_LOCK)))
            version = (s.scalar(select(func.max(GroupRow.version))) or 0) + 1
            for label, (centroid, ids) in enumerate(zip(centroids, members)):
                blob, dim = to_blob(centroid)
                s.add(GroupRow(version=version, label=label, dim=dim, centroid=blob,
                               members=sorted(int(i) for i in ids), created=stamp))
        return version

    def groups(self, version: int | None = None) -> list[GroupEntry]:
        """The groups of one grouping version (default: the newest); empty before any."""
        with self._session() as s:
            if version is None:
                version = s.scalar(select(func.max(GroupRow.version)))
                if version is None:
                    return []
            rows = s.scalars(select(GroupRow).where(GroupRow.version == version)
                             .order_by(GroupRow.label))
            return [_group_entry(r) for r in rows]

    # -- conveniences over the other modules ------------------------------------------------
    def regroup(self, **kwargs: Any) -> int:
        """Cluster the datasets into groups now; see :func:`knowledge_base.grouping.regroup`."""
        from knowledge_base.grouping import regroup

        return regroup(self, **kwargs)

    def match(self, embedding: Sequence[float], k_datasets: int = 5, **kwargs: Any):
        """Match an embedding to groups and datasets; see :func:`knowledge_base.matching.match`."""
        from knowledge_base.matching import match

        return match(self, embedding, k_datasets=k_datasets, **kwargs)

    def export_json(self, path: str | Path) -> dict[str, int]:
        """Write the whole KB to a JSON file; see :mod:`knowledge_base.transfer`."""
        from knowledge_base.transfer import export_json

        return export_json(self, path)

    def import_json(self, path: str | Path) -> dict[str, int]:
        """Merge a JSON export into this KB (idempotent); see :mod:`knowledge_base.transfer`."""
        from knowledge_base.transfer import import_json

        return import_json(self, path)


@functools.lru_cache(maxsize=64)
def _upsert_statement(dialect: str, changed: tuple[str, ...]):
    """INSERT ... ON CONFLICT (run_id, trial_id) DO UPDATE of the ``changed`` columns; built
    once per column set (building it is costlier than running it)."""
    stmt = _UPSERT[dialect](TrialRow)
    return stmt.on_conflict_do_update(index_elements=["run_id", "trial_id"],
                                      set_={k: getattr(stmt.excluded, k) for k in changed})


def _merge_trial(s: Session, full: dict[str, Any], changed: Sequence[str]) -> None:
    """Upsert for databases without ON CONFLICT (read, then insert or update)."""
    if s.get(RunRow, full["run_id"]) is None:
        raise IntegrityError("run", {}, Exception("unknown run"))
    row = s.scalar(select(TrialRow).where(TrialRow.run_id == full["run_id"],
                                          TrialRow.trial_id == full["trial_id"]))
    if row is None:
        s.add(TrialRow(**full))
    else:
        for key in changed:
            setattr(row, key, full[key])


def _trial_values(record: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(record) - set(_TRIAL_FIELDS))
    if unknown:
        raise InputError(f"trial record: unknown keys {unknown}; known: {sorted(_TRIAL_FIELDS)}")
    if not record.get("trial_id"):
        raise InputError("trial record: 'trial_id' is required")
    values = clean_json(dict(record))
    if values.get("status", "running") not in _TRIAL_STATES:
        raise InputError(f"trial record: status must be one of {_TRIAL_STATES}, "
                         f"got {values['status']!r}")
    for key in ("reason", "fidelity", "origin"):
        if key in values and values[key] is None:
            values[key] = ""
    if "cost" in values:
        values["cost"] = float(values["cost"] or 0.0)
    return values


def _dataset_entry(r: DatasetRow) -> DatasetEntry:
    return DatasetEntry(r.id, r.name, r.fingerprint, from_blob(r.embedding), r.meta, r.report,
                        utc(r.created))


def _run_entry(r: RunRow) -> RunEntry:
    return RunEntry(r.id, r.dataset_id, utc(r.started), utc(r.finished), r.status, r.settings,
                    r.best_trial_id)


def _trial_entry(r: TrialRow, dataset_id: int) -> TrialEntry:
    return TrialEntry(r.run_id, r.trial_id, dataset_id, r.number, r.config, r.status, r.score,
                      r.best_epoch, r.metrics, r.reason, r.cost, r.fidelity, r.origin, r.prior,
                      utc(r.created), r.parent, r.extra or {})


def _group_entry(r: GroupRow) -> GroupEntry:
    return GroupEntry(r.id, r.version, r.label, from_blob(r.centroid), tuple(r.members),
                      utc(r.created))
