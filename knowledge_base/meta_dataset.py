"""The meta-dataset in the KB: portfolio configurations evaluated on datasets.

A portfolio is a fixed, versioned list of configurations (``transfer_automl.portfolio``), run
on every dataset on the same split and folds; each (portfolio version, configuration id,
dataset) is one row of ``portfolio_evaluations``. Datasets are keyed by their content
fingerprint, because the meta-dataset covers datasets no search of this KB ran on; each holds
its name and, when known, its embedding (``portfolio_datasets``). A row also names the KB's
dataset record (``dataset_id``) of the split it ran on when the KB has one.

Rows get in three ways: :func:`add_portfolio_rows` (what :func:`rows_from_jsonl` makes of the
build's JSON lines, or a search's trial whose configuration is a portfolio one), and an import
of an export that holds them (the seed KB ships them).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from knowledge_base.engine import now, utc
from knowledge_base.models import PortfolioDatasetRow, PortfolioEvaluationRow
from knowledge_base.records import (PortfolioDatasetEntry, PortfolioEvaluationEntry, clean_json,
                                    from_blob, to_blob)
from transfer_automl.errors import InputError

__all__ = ["BUILD_SOURCE", "PortfolioTables", "add_portfolio_dataset", "add_portfolio_rows", "portfolio_rows",
           "portfolio_datasets", "rows_from_jsonl"]

BUILD_SOURCE = "meta-dataset"  # the ``source`` of rows from benchmarks/build_meta_dataset.py
_REQUIRED = ("portfolio_version", "config_id", "dataset", "fingerprint")
# Stored columns with their defaults (the key columns and the dataset's come separately).
_COLUMNS = {"config": {}, "dataset_id": None, "fidelity": "", "state": "complete", "reason": "",
            "score": None, "best_epoch": None, "cv_folds": 0, "n_images": 0, "curve": [],
            "wall_s": 0.0, "cpu_s": None, "features_s": None, "commit": "",
            "source": BUILD_SOURCE, "finished": None}
_KNOWN = {*_REQUIRED, *_COLUMNS, "embedding"}


def add_portfolio_dataset(kb, name: str, fingerprint: str,
                          embedding: Sequence[float] | None = None) -> int:
    """Store a dataset of the meta-dataset once (keyed by its content fingerprint); returns
    its id. An embedding given for a dataset stored without one is added; an existing
    embedding is replaced only by :func:`add_portfolio_rows` with ``replace=True``."""
    with kb._session(write=True) as s:
        return _dataset_id(s, str(name), str(fingerprint), embedding, replace=False)


def _dataset_id(s, name: str, fingerprint: str, embedding, replace: bool) -> int:
    if not fingerprint:
        raise InputError("portfolio row: 'fingerprint' must be a non-empty string")
    blob, dim = to_blob(embedding) if embedding is not None else (None, None)
    row = s.scalar(select(PortfolioDatasetRow).where(PortfolioDatasetRow.fingerprint == fingerprint))
    if row is None:
        try:
            with s.begin_nested():
                row = PortfolioDatasetRow(name=name, fingerprint=fingerprint, dim=dim,
                                          embedding=blob, created=now())
                s.add(row)
                s.flush()
        except IntegrityError:  # another process added it since our read (PostgreSQL)
            row = s.scalar(select(PortfolioDatasetRow)
                           .where(PortfolioDatasetRow.fingerprint == fingerprint))
    if blob is not None and (row.embedding is None or (replace and row.embedding != blob)):
        row.embedding, row.dim = blob, dim
    return row.id


def _values(record: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(record) - _KNOWN)
    if unknown:
        raise InputError(f"portfolio row: unknown keys {unknown}; known: {sorted(_KNOWN)}")
    missing = [k for k in _REQUIRED if record.get(k) in (None, "")]
    if missing:
        raise InputError(f"portfolio row: {missing} required")
    values = {**_COLUMNS, **clean_json({k: v for k, v in record.items()
                                        if k in _COLUMNS and k != "finished"})}
    for key in ("fidelity", "state", "reason", "commit", "source"):
        values[key] = "" if values[key] is None else str(values[key])
    values["portfolio_version"] = int(record["portfolio_version"])
    values["config_id"] = str(record["config_id"])
    values["cv_folds"] = int(values["cv_folds"] or 0)
    values["n_images"] = int(values["n_images"] or 0)
    values["wall_s"] = float(values["wall_s"] or 0.0)
    finished = record.get("finished")
    if isinstance(finished, str):
        finished = dt.datetime.fromisoformat(finished)
    values["finished"] = utc(finished)
    return values


def add_portfolio_rows(kb, rows: Iterable[Mapping[str, Any]],
                       replace: bool = True) -> dict[str, int]:
    """Insert or update portfolio evaluations, all in one transaction; idempotent.

    Each row holds portfolio_version, config_id, dataset (its name) and fingerprint (its
    content fingerprint), required; and some of config, embedding (the dataset's), dataset_id
    (the KB's record of the split it ran on), fidelity, state, reason, score, best_epoch,
    cv_folds, n_images, curve, wall_s, cpu_s, features_s, commit, source, finished (a
    datetime or ISO string). A row already stored under the same (portfolio version,
    configuration id, dataset) is replaced when ``replace`` (and it differs), else kept.

    Returns:
        How many rows were added, updated and kept as they were.
    """
    counts = dict.fromkeys(("added", "updated", "kept"), 0)
    rows = list(rows)
    with kb._session(write=True) as s:
        for record in rows:
            values = _values(record)
            values["portfolio_dataset_id"] = _dataset_id(
                s, str(record["dataset"]), str(record["fingerprint"]), record.get("embedding"),
                replace)
            key = (PortfolioEvaluationRow.portfolio_version == values["portfolio_version"],
                   PortfolioEvaluationRow.config_id == values["config_id"],
                   PortfolioEvaluationRow.portfolio_dataset_id == values["portfolio_dataset_id"])
            row = s.scalar(select(PortfolioEvaluationRow).where(*key))
            if row is None:
                s.add(PortfolioEvaluationRow(**values, updated=now()))
                s.flush()
                counts["added"] += 1
            elif replace and any(_stored(getattr(row, k)) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(row, k, v)
                row.updated = now()
                counts["updated"] += 1
            else:
                counts["kept"] += 1
    return counts


def _stored(value: Any) -> Any:
    return utc(value) if isinstance(value, dt.datetime) else value


def portfolio_rows(kb, portfolio_version: int | None = None, *, fingerprint: str | None = None,
                   name: str | None = None,
                   dataset_id: int | None = None) -> list[PortfolioEvaluationEntry]:
    """Stored portfolio evaluations by dataset name, then configuration id, optionally of one
    portfolio version, and of one dataset: by content fingerprint, by name, or by the KB's
    dataset record of the split they ran on."""
    query = (select(PortfolioEvaluationRow, PortfolioDatasetRow)
             .join(PortfolioDatasetRow,
                   PortfolioEvaluationRow.portfolio_dataset_id == PortfolioDatasetRow.id)
             .order_by(PortfolioEvaluationRow.portfolio_version, PortfolioDatasetRow.name,
                       PortfolioDatasetRow.id, PortfolioEvaluationRow.config_id))
    if portfolio_version is not None:
        query = query.where(PortfolioEvaluationRow.portfolio_version == int(portfolio_version))
    if fingerprint is not None:
        query = query.where(PortfolioDatasetRow.fingerprint == fingerprint)
    if name is not None:
        query = query.where(PortfolioDatasetRow.name == name)
    if dataset_id is not None:
        query = query.where(PortfolioEvaluationRow.dataset_id == dataset_id)
    with kb._session() as s:
        return [_entry(r, d) for r, d in s.execute(query)]


def portfolio_datasets(kb) -> list[PortfolioDatasetEntry]:
    """Every dataset of the meta-dataset, by name."""
    with kb._session() as s:
        return [PortfolioDatasetEntry(d.id, d.name, d.fingerprint,
                                      None if d.embedding is None else from_blob(d.embedding))
                for d in s.scalars(select(PortfolioDatasetRow)
                                   .order_by(PortfolioDatasetRow.name, PortfolioDatasetRow.id))]


def _entry(r: PortfolioEvaluationRow, d: PortfolioDatasetRow) -> PortfolioEvaluationEntry:
    return PortfolioEvaluationEntry(
        r.portfolio_version, r.config_id, r.config, d.name, d.fingerprint, r.dataset_id,
        r.fidelity, r.state, r.reason, r.score, r.best_epoch, r.cv_folds, r.n_images, r.curve,
        r.wall_s, r.cpu_s, r.features_s, r.commit, r.source, utc(r.finished))


def rows_from_jsonl(source: str | Path | Iterable[str], configs: Mapping[str, Mapping[str, Any]],
                    fingerprints: Mapping[str, str] | None = None,
                    embeddings: Mapping[str, Sequence[float]] | None = None,
                    digits: int | None = None) -> list[dict[str, Any]]:
    """Rows for :func:`add_portfolio_rows` from the JSON lines of
    ``benchmarks/build_meta_dataset.py`` (a path, or the lines themselves).

    Args:
        configs: configuration id -> configuration (``transfer_automl.portfolio``), for the
            version the lines were built with; a line of another id is an error.
        fingerprints: dataset name -> content fingerprint. The lines name datasets only; a
            name missing here is keyed ``"name:<name>"``.
        embeddings: dataset name -> embedding, stored with the dataset when given.
        digits: round the curve's figures to this many decimals (None: keep them).
    """
    lines = Path(source).read_text().splitlines() if isinstance(source, (str, Path)) else source
    fingerprints, embeddings = fingerprints or {}, embeddings or {}
    out = []
    for line in lines:
        if not line.strip():
            continue
        r = json.loads(line)
        if r["config_id"] not in configs:
            raise InputError(f"portfolio row: configuration {r['config_id']!r} is not in the "
                             f"portfolio given (version {r.get('portfolio_version')})")
        name = r["dataset"]
        curve = [{k: _round(v, digits) for k, v in point.items()} for point in r.get("curve", [])]
        row = {"portfolio_version": r["portfolio_version"], "config_id": r["config_id"],
               "config": dict(configs[r["config_id"]]), "dataset": name,
               "fingerprint": fingerprints.get(name, f"name:{name}"), "curve": curve,
               "source": BUILD_SOURCE,
               **{k: r.get(k) for k in ("fidelity", "state", "reason", "score", "best_epoch",
                                        "cv_folds", "n_images", "wall_s", "cpu_s",
                                        "features_s", "commit", "finished")}}
        if name in embeddings:
            row["embedding"] = embeddings[name]
        out.append(row)
    return out


def _round(value: Any, digits: int | None) -> Any:
    if digits is None or not isinstance(value, float):
        return value
    return round(value, digits)


class PortfolioTables:
    """The meta-dataset's methods of :class:`knowledge_base.KnowledgeBase` (each is the
    function of this module of the same name)."""

    def add_portfolio_dataset(self, name: str, fingerprint: str,
                              embedding: Sequence[float] | None = None) -> int:
        """See :func:`add_portfolio_dataset`."""
        return add_portfolio_dataset(self, name, fingerprint, embedding)

    def add_portfolio_rows(self, rows: Iterable[Mapping[str, Any]],
                           replace: bool = True) -> dict[str, int]:
        """See :func:`add_portfolio_rows`."""
        return add_portfolio_rows(self, rows, replace)

    def portfolio_rows(self, portfolio_version: int | None = None, *,
                       fingerprint: str | None = None, name: str | None = None,
                       dataset_id: int | None = None) -> list[PortfolioEvaluationEntry]:
        """See :func:`portfolio_rows`."""
        return portfolio_rows(self, portfolio_version, fingerprint=fingerprint, name=name,
                              dataset_id=dataset_id)

    def portfolio_datasets(self) -> list[PortfolioDatasetEntry]:
        """See :func:`portfolio_datasets`."""
        return portfolio_datasets(self)


# -- export and import (used by knowledge_base.transfer) ---------------------------------------
_EXPORTED = tuple(k for k in _COLUMNS if k not in ("dataset_id", "finished"))


def export_tables(s, fingerprint_of: Mapping[int, str], iso) -> dict[str, list]:
    """The two tables as export records: datasets by content fingerprint, rows naming their
    dataset by it and their KB dataset record by that record's fingerprint. Each
    configuration is written once (``portfolio_configs``); a row whose configuration differs
    from its id's first one carries its own."""
    datasets = list(s.scalars(select(PortfolioDatasetRow).order_by(PortfolioDatasetRow.id)))
    fp = {d.id: d.fingerprint for d in datasets}
    configs: dict[tuple[int, str], Any] = {}
    rows = []
    for r in s.scalars(select(PortfolioEvaluationRow).order_by(
            PortfolioEvaluationRow.portfolio_version, PortfolioEvaluationRow.id)):
        known = configs.setdefault((r.portfolio_version, r.config_id), r.config)
        rows.append({"portfolio_version": r.portfolio_version, "config_id": r.config_id,
                     "dataset": fp[r.portfolio_dataset_id],
                     "dataset_record": fingerprint_of.get(r.dataset_id),
                     **{k: getattr(r, k) for k in _EXPORTED
                        if k != "config" or r.config != known},
                     "finished": iso(r.finished), "updated": iso(r.updated)})
    return {
        "portfolio_datasets": [
            {"fingerprint": d.fingerprint, "name": d.name, "created": iso(d.created),
             "embedding": None if d.embedding is None else [float(x) for x in
                                                            from_blob(d.embedding)]}
            for d in datasets],
        "portfolio_configs": [{"portfolio_version": v, "config_id": c, "config": config}
                              for (v, c), config in sorted(configs.items())],
        "portfolio": rows,
    }


def import_tables(s, doc: Mapping[str, Any], dataset_ids: Mapping[str, int], parse,
                  counts: dict[str, int]) -> None:
    """Merge an export's portfolio datasets and rows: missing ones are added, an embedding
    this KB lacks is filled in; a row present in both keeps the local copy."""
    ids = dict(s.execute(select(PortfolioDatasetRow.fingerprint, PortfolioDatasetRow.id)).all())
    counts.setdefault("portfolio_datasets", 0)
    counts.setdefault("portfolio", 0)
    for d in doc.get("portfolio_datasets", []):
        if d["fingerprint"] in ids:
            row = s.get(PortfolioDatasetRow, ids[d["fingerprint"]])
            if row.embedding is not None or d.get("embedding") is None:
                continue
            row.embedding, row.dim = to_blob(d["embedding"])
        else:
            blob, dim = to_blob(d["embedding"]) if d.get("embedding") is not None else (None,
                                                                                        None)
            row = PortfolioDatasetRow(name=d["name"], fingerprint=d["fingerprint"], dim=dim,
                                      embedding=blob, created=parse(d["created"]))
            s.add(row)
            s.flush()
            ids[row.fingerprint] = row.id
        counts["portfolio_datasets"] += 1
    configs = {(c["portfolio_version"], c["config_id"]): c["config"]
               for c in doc.get("portfolio_configs", [])}
    have = set(s.execute(select(PortfolioEvaluationRow.portfolio_version,
                                PortfolioEvaluationRow.config_id,
                                PortfolioEvaluationRow.portfolio_dataset_id)).all())
    for r in doc.get("portfolio", []):
        key = (r["portfolio_version"], r["config_id"], ids[r["dataset"]])
        if key in have:
            continue
        s.add(PortfolioEvaluationRow(
            portfolio_version=key[0], config_id=key[1], portfolio_dataset_id=key[2],
            dataset_id=dataset_ids.get(r.get("dataset_record")),
            **{k: r.get(k, _COLUMNS[k]) for k in _EXPORTED if k != "config"},
            config=r["config"] if "config" in r else configs[key[:2]],
            finished=parse(r.get("finished")), updated=parse(r["updated"])))
        have.add(key)
        counts["portfolio"] += 1
