"""A run on disk: its settings, dataset manifest, search space and a journal of finished trials.

The journal is appended as each trial ends, so a driver killed mid-search can be resumed with
``fit_auto(resume=RUN_ID)``: finished trials are read back, not re-run.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from transfer_automl.errors import InputError
from transfer_automl.space import Choice, Float, SearchSpace
from transfer_automl.trial import EpochMetrics, TrialResult, TrialSpec, TrialState

SETTINGS = "run.json"
JOURNAL = "trials.jsonl"
MANIFEST = "dataset.json"


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


def _result_dict(result: TrialResult) -> dict[str, Any]:
    data = asdict(result)
    data["state"] = result.state.value
    return data


def _result_from(data: dict[str, Any]) -> TrialResult:
    data = dict(data)
    data["state"] = TrialState(data["state"])
    data["history"] = tuple(EpochMetrics(**e) for e in data.get("history", ()))
    return TrialResult(**data)
