"""Plain, frozen records the store hands out (no live ORM objects leave the store)."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DatasetEntry", "RunEntry", "TrialEntry", "GroupEntry", "PortfolioDatasetEntry",
           "PortfolioEvaluationEntry", "RunStatus", "trial_record", "to_blob", "from_blob",
           "clean_json"]


class RunStatus:
    """Run states. A run stays ``running`` until :meth:`KnowledgeBase.finish_run`, so a run whose
    process died is never mistaken for a finished one."""

    RUNNING = "running"
    COMPLETE = "complete"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    ALL = (RUNNING, COMPLETE, FAILED, INTERRUPTED)


@dataclass(frozen=True)
class DatasetEntry:
    id: int
    name: str
    fingerprint: str
    embedding: np.ndarray
    meta: Mapping[str, Any]
    report: Mapping[str, Any]
    created: dt.datetime


@dataclass(frozen=True)
class RunEntry:
    id: str
    dataset_id: int
    started: dt.datetime
    finished: dt.datetime | None
    status: str
    settings: Mapping[str, Any]
    best_trial_id: str | None


@dataclass(frozen=True)
class TrialEntry:
    """One stored trial. ``metrics`` is the per-epoch learning curve (a list of dicts)."""

    run_id: str
    trial_id: str
    dataset_id: int
    number: int
    config: Mapping[str, Any]
    status: str
    score: float | None
    best_epoch: int | None
    metrics: Sequence[Mapping[str, Any]]
    reason: str
    cost: float
    fidelity: str
    origin: str
    prior: str | None
    created: dt.datetime
    parent: str | None = None  # the trial of the same run it descends from (lineage)
    extra: Mapping[str, Any] = field(default_factory=dict)  # resource use, cache hits...


@dataclass(frozen=True)
class GroupEntry:
    id: int
    version: int
    label: int
    centroid: np.ndarray
    members: tuple[int, ...]
    created: dt.datetime = field(compare=False)


@dataclass(frozen=True)
class PortfolioDatasetEntry:
    """A dataset of the meta-dataset: its content fingerprint, name and embedding (None when
    not known)."""

    id: int
    name: str
    fingerprint: str
    embedding: np.ndarray | None = field(compare=False)


@dataclass(frozen=True)
class PortfolioEvaluationEntry:
    """One stored portfolio evaluation: configuration ``config_id`` of portfolio
    ``portfolio_version`` on the dataset ``fingerprint`` (its content fingerprint) named
    ``dataset``. ``curve`` is the per-epoch validation curve (a list of dicts); ``dataset_id``
    the KB's record of the split it ran on, when the KB has one; ``source`` where the row
    came from (``"meta-dataset"`` for the portfolio build, ``"run:<run>/<trial>"`` for a
    search's trial)."""

    portfolio_version: int
    config_id: str
    config: Mapping[str, Any]
    dataset: str
    fingerprint: str
    dataset_id: int | None
    fidelity: str
    state: str
    reason: str
    score: float | None
    best_epoch: int | None
    cv_folds: int
    n_images: int
    curve: Sequence[Mapping[str, Any]]
    wall_s: float
    cpu_s: float | None
    features_s: float | None
    commit: str
    source: str
    finished: dt.datetime | None


def to_blob(vector: Any) -> tuple[bytes, int]:
    """A 1-D float vector as little-endian float32 bytes, plus its length."""
    arr = np.asarray(vector, dtype="<f4")
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"embedding: expected a non-empty 1-D vector, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("embedding: contains NaN or infinite values")
    return arr.tobytes(), int(arr.size)


def from_blob(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def clean_json(value: Any) -> Any:
    """``value`` made safe for every backend's JSON type: plain Python types, NaN/inf as None."""
    if isinstance(value, Mapping):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return clean_json(value.tolist())
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if hasattr(value, "value") and isinstance(getattr(value, "value"), str):  # enums
        return value.value
    return value


def trial_record(spec: Any, result: Any = None, prior: str | None = None) -> dict[str, Any]:
    """The dict :meth:`KnowledgeBase.record_trial` takes, built from a ``TrialSpec`` and an
    optional ``TrialResult`` (running trials have none yet).

    Args:
        spec: a :class:`transfer_automl.trial.TrialSpec`.
        result: its :class:`transfer_automl.trial.TrialResult`, or None while it runs.
        prior: the KB source the configuration came from (``"kb:<dataset>/<run>/<trial>"``);
            by default taken from ``spec.origin`` when that starts with ``"kb:"``.
    """
    record: dict[str, Any] = {
        "trial_id": spec.trial_id, "number": spec.number, "config": dict(spec.config),
        "origin": spec.origin, "status": "running",
        "prior": prior if prior is not None else (
            spec.origin if str(spec.origin).startswith("kb:") else None),
        "parent": getattr(spec, "parent", None),
    }
    if result is not None:
        record.update(
            status=getattr(result.state, "value", result.state), score=result.score,
            best_epoch=result.best_epoch, reason=result.reason, cost=result.seconds,
            fidelity=result.fidelity, extra=dict(getattr(result, "extra", {}) or {}),
            metrics=[{k: getattr(e, k) for k in ("epoch", "loss", "accuracy", "val_loss",
                                                 "val_accuracy", "seconds")}
                     for e in result.history])
    return record
