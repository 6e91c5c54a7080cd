"""The knowledge base's tables as SQLAlchemy 2.x ORM models.

The schema itself is created and changed by the Alembic migrations in ``migrations/``; these
models describe the head revision, and a test checks that the two agree.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (JSON, DateTime, Float, ForeignKey, Integer, LargeBinary, String, Text,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = ["Base", "DatasetRow", "RunRow", "TrialRow", "GroupRow", "PortfolioDatasetRow",
           "PortfolioEvaluationRow", "TokenRow", "UploadRow", "JobRow"]


class Base(DeclarativeBase):
    pass


class DatasetRow(Base):
    """One dataset seen by the KB, found again by the fingerprint of its content."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(128), unique=True)
    dim: Mapped[int] = mapped_column(Integer)
    # float32, little-endian: exact for what embedders produce and 4x smaller than JSON.
    embedding: Mapped[bytes] = mapped_column(LargeBinary)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class RunRow(Base):
    """One search (one ``fit_auto`` call) on one dataset."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    started: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)
    best_trial_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


class TrialRow(Base):
    """One trial of a run: its configuration, outcome, learning curve and provenance."""

    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("run_id", "trial_id", name="uq_trials_run_trial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    trial_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    metrics: Mapped[list[Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(Text)
    cost: Mapped[float] = mapped_column(Float)
    fidelity: Mapped[str] = mapped_column(String(32))
    origin: Mapped[str] = mapped_column(String(255))
    prior: Mapped[str | None] = mapped_column(String(512), nullable=True)
    parent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class GroupRow(Base):
    """One virtual dataset group of one grouping version (the newest version is current)."""

    __tablename__ = "groups"
    __table_args__ = (UniqueConstraint("version", "label", name="uq_groups_version_label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(Integer, index=True)
    label: Mapped[int] = mapped_column(Integer)
    dim: Mapped[int] = mapped_column(Integer)
    centroid: Mapped[bytes] = mapped_column(LargeBinary)
    members: Mapped[list[int]] = mapped_column(JSON)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PortfolioDatasetRow(Base):
    """A dataset of the meta-dataset, found again by its content fingerprint (the folder's
    files and labels, whatever its split); its embedding when known."""

    __tablename__ = "portfolio_datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(128), unique=True)
    dim: Mapped[int | None] = mapped_column(Integer, nullable=True)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class PortfolioEvaluationRow(Base):
    """One portfolio configuration evaluated on one dataset: a cell of the meta-dataset."""

    __tablename__ = "portfolio_evaluations"
    __table_args__ = (UniqueConstraint("portfolio_version", "config_id", "portfolio_dataset_id",
                                       name="uq_portfolio_version_config_dataset"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    portfolio_version: Mapped[int] = mapped_column(Integer)
    config_id: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    portfolio_dataset_id: Mapped[int] = mapped_column(ForeignKey("portfolio_datasets.id"),
                                                      index=True)
    # The KB's record of the very split the row ran on, when the KB has one.
    dataset_id: Mapped[int | None] = mapped_column(ForeignKey("datasets.id"), index=True,
                                                   nullable=True)
    fidelity: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    best_epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cv_folds: Mapped[int] = mapped_column(Integer)
    n_images: Mapped[int] = mapped_column(Integer)
    curve: Mapped[list[Any]] = mapped_column(JSON)
    wall_s: Mapped[float] = mapped_column(Float)
    cpu_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    features_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    commit: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(255))  # "meta-dataset" or "run:<run>/<trial>"
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class TokenRow(Base):
    """An API token of the upload server: only the SHA-256 of the token is kept."""

    __tablename__ = "server_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user: Mapped[str] = mapped_column(String(64), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class UploadRow(Base):
    """A dataset uploaded to the server by one user, validated, with its data report."""

    __tablename__ = "server_datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    # Relative to the server's data directory, so the directory can move.
    path: Mapped[str] = mapped_column(Text)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class JobRow(Base):
    """A search job of the server: its parameters, state, live progress and result."""

    __tablename__ = "server_jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("server_datasets.id"), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    started: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
