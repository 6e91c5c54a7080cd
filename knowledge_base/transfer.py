"""Export the whole KB to one JSON file and merge such a file into a KB.

The file is self-contained and backend-neutral: datasets are keyed by fingerprint (ids differ
between databases), runs by run id, trials by (run id, trial id). Importing merges:

- datasets, runs and trials missing here are added;
- a run or trial present in both is updated only when the file has it finished and this KB
  still has it running (the file knows more); otherwise the local copy stays;
- group versions whose number this KB lacks are added with members mapped by fingerprint;
- portfolio datasets (by content fingerprint) and portfolio evaluations (by portfolio
  version, configuration id and dataset) missing here are added; a row present in both keeps
  the local copy (:mod:`knowledge_base.meta_dataset`).

So importing the same file twice changes nothing the second time. This is how the seed KB is
shipped inside the package.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from knowledge_base.meta_dataset import export_tables, import_tables
from knowledge_base.models import DatasetRow, GroupRow, RunRow, TrialRow
from knowledge_base.records import from_blob, to_blob

__all__ = ["export_json", "import_json", "FORMAT"]

FORMAT = "transfer-automl-kb"
_FORMAT_VERSION = 1
_COUNTED = ("datasets", "runs", "trials", "groups", "portfolio_datasets", "portfolio")
_TRIAL_COLUMNS = ("trial_id", "number", "config", "status", "score", "best_epoch", "metrics",
                  "reason", "cost", "fidelity", "origin", "prior", "parent",
                  "extra")


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat()


def _parse(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def _vector(blob: bytes) -> list[float]:
    return [float(x) for x in from_blob(blob)]


def export_json(kb, path: str | Path) -> dict[str, int]:
    """Write every dataset, run, trial, group version and portfolio evaluation of ``kb`` to
    ``path`` (atomically).

    Returns:
        How many of each were written.
    """
    with kb._session() as s:
        datasets = list(s.scalars(select(DatasetRow).order_by(DatasetRow.id)))
        fp = {d.id: d.fingerprint for d in datasets}
        doc: dict[str, Any] = {
            "format": FORMAT, "format_version": _FORMAT_VERSION, "schema": kb.head_revision(),
            "exported": _iso(dt.datetime.now(dt.timezone.utc)),
            "datasets": [{"fingerprint": d.fingerprint, "name": d.name,
                          "embedding": _vector(d.embedding), "meta": d.meta,
                          "report": d.report, "created": _iso(d.created)} for d in datasets],
            "runs": [{"id": r.id, "dataset": fp[r.dataset_id], "started": _iso(r.started),
                      "finished": _iso(r.finished), "status": r.status, "settings": r.settings,
                      "best_trial_id": r.best_trial_id}
                     for r in s.scalars(select(RunRow).order_by(RunRow.started, RunRow.id))],
            "trials": [{"run_id": t.run_id, **{c: getattr(t, c) for c in _TRIAL_COLUMNS},
                        "created": _iso(t.created), "updated": _iso(t.updated)}
                       for t in s.scalars(select(TrialRow).order_by(TrialRow.id))],
            "groups": [{"version": g.version, "label": g.label, "centroid": _vector(g.centroid),
                        "members": [fp[i] for i in g.members if i in fp],
                        "created": _iso(g.created)}
                       for g in s.scalars(select(GroupRow).order_by(GroupRow.version,
                                                                    GroupRow.label))],
            **export_tables(s, fp, _iso),
        }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1, allow_nan=False), encoding="utf-8")
    os.replace(tmp, path)
    return {k: len(doc[k]) for k in _COUNTED}


def _load(path: str | Path) -> dict[str, Any]:
    from transfer_automl.errors import KnowledgeBaseError

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KnowledgeBaseError(f"cannot read KB export {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KnowledgeBaseError(f"{path} is not a transfer-automl KB export "
                                 f"(expected format {FORMAT!r})")
    if doc.get("format_version", 0) > _FORMAT_VERSION:
        raise KnowledgeBaseError(f"{path} was written by a newer transfer-automl "
                                 f"(format {doc['format_version']}); upgrade to import it")
    return doc


def import_json(kb, path: str | Path) -> dict[str, int]:
    """Merge the export at ``path`` into ``kb`` in one transaction (see the module docstring).

    Returns:
        How many datasets, runs, trials, groups, portfolio datasets and portfolio rows were
        added or updated.
    """
    doc = _load(path)
    counts = dict.fromkeys(_COUNTED, 0)
    with kb._session(write=True) as s:
        ids = _import_datasets(s, doc["datasets"], counts)
        _import_runs(s, doc["runs"], ids, counts)
        _import_trials(s, doc["trials"], counts)
        _import_groups(s, doc.get("groups", []), ids, counts)
        import_tables(s, doc, ids, _parse, counts)
    return counts


def _import_datasets(s, items, counts) -> dict[str, int]:
    ids = dict(s.execute(select(DatasetRow.fingerprint, DatasetRow.id)).all())
    for d in items:
        if d["fingerprint"] in ids:
            continue
        blob, dim = to_blob(np.asarray(d["embedding"], dtype=np.float32))
        row = DatasetRow(name=d["name"], fingerprint=d["fingerprint"], dim=dim, embedding=blob,
                         meta=d.get("meta") or {}, report=d.get("report") or {},
                         created=_parse(d["created"]))
        s.add(row)
        s.flush()
        ids[row.fingerprint] = row.id
        counts["datasets"] += 1
    return ids


def _import_runs(s, items, ids, counts) -> None:
    for r in items:
        row = s.get(RunRow, r["id"])
        if row is None:
            s.add(RunRow(id=r["id"], dataset_id=ids[r["dataset"]], started=_parse(r["started"]),
                         finished=_parse(r["finished"]), status=r["status"],
                         settings=r.get("settings") or {}, best_trial_id=r.get("best_trial_id")))
        elif row.status == "running" and r["status"] != "running":
            row.status, row.finished = r["status"], _parse(r["finished"])
            row.best_trial_id = r.get("best_trial_id")
        else:
            continue
        counts["runs"] += 1
    s.flush()


def _import_trials(s, items, counts) -> None:
    existing = {(t.run_id, t.trial_id): t for t in s.scalars(select(TrialRow))}
    for t in items:
        row = existing.get((t["run_id"], t["trial_id"]))
        values = {c: t.get(c) for c in _TRIAL_COLUMNS}
        if row is None:
            row = TrialRow(run_id=t["run_id"], **values, created=_parse(t["created"]),
                           updated=_parse(t["updated"]))
            s.add(row)
            existing[(t["run_id"], t["trial_id"])] = row
        elif row.status in ("running", "pending") and t["status"] not in ("running", "pending"):
            for key, value in values.items():
                setattr(row, key, value)
            row.updated = _parse(t["updated"])
        else:
            continue
        counts["trials"] += 1


def _import_groups(s, items, ids, counts) -> None:
    have = set(s.scalars(select(GroupRow.version).distinct()))
    for g in items:
        if g["version"] in have:
            continue
        blob, dim = to_blob(np.asarray(g["centroid"], dtype=np.float32))
        s.add(GroupRow(version=g["version"], label=g["label"], dim=dim, centroid=blob,
                       members=sorted(ids[f] for f in g["members"] if f in ids),
                       created=_parse(g["created"])))
        counts["groups"] += 1

