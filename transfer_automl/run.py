"""A run on disk: its settings, dataset manifest, search space and a journal of finished trials.

The journal is appended as each trial ends, so a driver killed mid-search can be resumed with
``fit_auto(resume=RUN_ID)``: finished trials are read back, not re-run.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from transfer_automl.errors import InputError
from transfer_automl.space import Choice, Float, SearchSpace
from transfer_automl.trial import EpochMetrics, TrialResult, TrialSpec, TrialState

log = logging.getLogger(__name__)

SETTINGS = "run.json"
JOURNAL = "trials.jsonl"
MANIFEST = "dataset.json"
STATE = "state.json"
#: The states a run's last session can end in (as the knowledge base's ``RunStatus``).
END_STATES = ("complete", "failed", "interrupted")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def space_to_dict(space: SearchSpace) -> dict[str, Any]:
    params = [{"kind": type(p).__name__, **asdict(p)} for p in space.params]
    return {"params": params, "default": dict(space.default)}


def space_from_dict(data: dict[str, Any]) -> SearchSpace:
    params = []
    for p in data["params"]:
        p = dict(p)
        kind = p.pop("kind")
        if kind == "Choice":
            weights = tuple(p["weights"]) if p.get("weights") else None
            params.append(Choice(p["name"], tuple(p["options"]), weights))
        else:
            params.append(Float(**p))
    return SearchSpace(tuple(params), data["default"])


@dataclass
class RunFiles:
    """The files of one run under ``runs_dir/<run_id>``."""

    run_dir: Path

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def manifest(self) -> Path:
        return self.run_dir / MANIFEST

    def save_settings(self, settings: dict[str, Any], space: SearchSpace) -> None:
        data = {**settings, "space": space_to_dict(space)}
        tmp = self.run_dir / (SETTINGS + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        os.replace(tmp, self.run_dir / SETTINGS)

    def load_settings(self) -> tuple[dict[str, Any], SearchSpace]:
        data = json.loads((self.run_dir / SETTINGS).read_text())
        return data, space_from_dict(data.pop("space"))

    def append(self, spec: TrialSpec, result: TrialResult, elapsed: float) -> None:
        """Journal one finished trial (one JSON line, flushed to disk)."""
        line = json.dumps({"spec": asdict(spec), "result": _result_dict(result),
                           "elapsed": elapsed}, default=str)
        with open(self.run_dir / JOURNAL, "a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def save_state(self, status: str, **details: Any) -> None:
        """Record how the run's last session ended (one of :data:`END_STATES`), with small
        facts about it (best trial and score, test accuracy); a resume writes it again."""
        if status not in END_STATES:
            raise InputError(f"status: expected one of {END_STATES}, got {status!r}")
        data = {"status": status, "ended": time.strftime("%Y-%m-%dT%H:%M:%S"), **details}
        tmp = self.run_dir / (STATE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, default=str))
        os.replace(tmp, self.run_dir / STATE)

    def state(self) -> dict[str, Any] | None:
        """What :meth:`save_state` wrote, or None: the run is still going, was killed before
        it could say so, or predates the file."""
        try:
            data = json.loads((self.run_dir / STATE).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def journal(self) -> tuple[list[tuple[TrialSpec, TrialResult]], float]:
        """Finished trials in order, and the search time spent when the last one ended."""
        timed = self.timed_journal()
        return [(spec, result) for spec, result, _ in timed], \
            max((elapsed for _, _, elapsed in timed), default=0.0)

    def timed_journal(self) -> list[tuple[TrialSpec, TrialResult, float]]:
        """Finished trials in order, each with the search time at which it ended."""
        path = self.run_dir / JOURNAL
        entries = []
        if not path.exists():
            return entries
        for line in path.read_text().splitlines():
            try:
                data = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a kill
                continue
            entries.append((TrialSpec(**data["spec"]), _result_from(data["result"]),
                            float(data.get("elapsed", 0.0))))
        return entries


def find_run(runs_dir: Path, run_id: str, purpose: str = "resume") -> RunFiles:
    """The files of ``run_id``; a clear error, naming ``purpose`` (what the run was wanted
    for: resume, history, restore, ablate), if it does not exist or cannot be read."""
    run_dir = runs_dir / run_id
    if not (run_dir / SETTINGS).is_file() or not (run_dir / MANIFEST).is_file():
        known = sorted(p.name for p in runs_dir.iterdir() if (p / SETTINGS).exists()) \
            if runs_dir.is_dir() else []
        hint = f"; known runs: {', '.join(known[-5:])}" if known else ""
        what = "resumable run" if purpose == "resume" else "run"
        raise InputError(f"{purpose}: no {what} {run_id!r} in {runs_dir}{hint}")
    return RunFiles(run_dir)


@dataclass(frozen=True)
class RunSummary:
    """One line of ``transfer-automl runs list``: a run as its directory describes it.

    Attributes:
        run_id: the run's id (its directory name).
        dataset: the dataset's name (its folder's name).
        fingerprint: the dataset's content fingerprint (the same for every split of it).
        split_fingerprint: the fingerprint that also covers the split (the one the knowledge
            base knows the dataset by).
        started: when the run was created, ``YYYY-MM-DDTHH:MM:SS`` local time.
        state: complete, failed or interrupted; None when unknown (still running, killed,
            or written before runs recorded it).
        trials: finished search trials (the final refit not counted).
        best_score: best validation accuracy of a trial (None before any scored).
        test_accuracy: test accuracy of the exported model (None if not exported or no
            test split).
    """

    run_id: str
    dataset: str
    fingerprint: str
    split_fingerprint: str
    started: str
    state: str | None
    trials: int
    best_score: float | None
    test_accuracy: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_runs(runs_dir: Path) -> list[RunSummary]:
    """Every run under ``runs_dir``, newest first (an absent folder holds none)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    found = [summarise(RunFiles(p)) for p in runs_dir.iterdir() if (p / SETTINGS).is_file()]
    log.debug("%d runs in %s", len(found), runs_dir)
    return sorted(found, key=lambda r: (r.started, r.run_id), reverse=True)


def summarise(files: RunFiles) -> RunSummary:
    """The :class:`RunSummary` of one run; parts it cannot read are left unknown."""
    manifest = _read_json(files.manifest)
    report = manifest.get("report") or {}
    source = str(report.get("source") or manifest.get("root") or "")
    split = str(manifest.get("fingerprint") or "")
    fingerprint = str(manifest.get("content_fingerprint") or split)
    trials, scores = 0, []
    path = files.run_dir / JOURNAL
    lines = path.read_text().splitlines() if path.is_file() else []
    for line in lines:
        try:
            entry = json.loads(line)
            origin, score = entry["spec"].get("origin"), entry["result"].get("score")
        except (json.JSONDecodeError, KeyError, AttributeError, TypeError):
            continue  # a line cut short by a kill
        if origin == "refit":
            continue
        trials += 1
        if score is not None:
            scores.append(float(score))
    state = files.state() or {}
    metadata = _read_json(files.run_dir / "model" / "metadata.json")  # the exported model
    status = state.get("status") or ("complete" if metadata else None)
    test = state.get("test_accuracy")
    if test is None:
        test = (metadata.get("test") or {}).get("accuracy")
    best = state.get("best_score")
    if best is None:
        best = max(scores, default=None)
    return RunSummary(files.run_id, Path(source).name or "-", fingerprint, split,
                      _started(files), status, trials, best, test)


def _started(files: RunFiles) -> str:
    """The creation time in the run id (``YYYYmmdd-HHMMSS-...``), else of its settings file."""
    try:
        stamp = time.strptime(files.run_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        stamp = time.localtime((files.run_dir / SETTINGS).stat().st_mtime)
    return time.strftime("%Y-%m-%dT%H:%M:%S", stamp)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _result_dict(result: TrialResult) -> dict[str, Any]:
    data = asdict(result)
    data["state"] = result.state.value
    return data


def _result_from(data: dict[str, Any]) -> TrialResult:
    data = dict(data)
    data["state"] = TrialState(data["state"])
    data["history"] = tuple(EpochMetrics(**e) for e in data.get("history", ()))
    return TrialResult(**data)
