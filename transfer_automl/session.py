"""One run on disk and in memory: its files, dataset manifest, trial context and study.

``fit_auto``, ``resume`` and ``ablate`` all set up their runs here, so a run directory always
holds the same files and every trial of a run finds its inputs the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transfer_automl.run import RunFiles, new_run_id
from transfer_automl.schedule import FidelitySchedule
from transfer_automl.space import SearchSpace
from transfer_automl.study import Study
from transfer_automl.trial import TrialContext


@dataclass
class RunSession:
    """Everything a search over one run needs.

    Attributes:
        files: the run's directory (settings, manifest, journal, trial checkpoints).
        data: the loaded dataset.
        study: the trials asked and told so far.
        context: what every trial of the run is given (manifest, caches, folds).
        cache: the cache root.
    """

    files: RunFiles
    data: Any
    study: Study
    context: TrialContext
    cache: Path

    @property
    def run_id(self) -> str:
        return self.files.run_id


def create_run(runs_root: Path, data, space: SearchSpace, settings: dict[str, Any]) -> RunFiles:
    """A new run directory holding the dataset manifest and the run's settings."""
    files = RunFiles(Path(runs_root) / new_run_id())
    files.run_dir.mkdir(parents=True)
    data.save_manifest(files.manifest)
    files.save_settings(settings, space)
    return files


def open_session(files: RunFiles, data, space: SearchSpace, cache: Path, *, seed: int = 0,
                 feature_cache: bool = True, cv_folds: int = 5,
                 schedule: FidelitySchedule | None = None) -> RunSession:
    """The study and trial context of the run in ``files`` (new or resumed).

    Args:
        feature_cache: share backbone outputs across trials through ``cache/features``.
        cv_folds: cross-validation folds of trials on cached inputs (< 2: the validation
            split); the folds are drawn with ``seed``, the same for every trial of the run.
        schedule: the fidelity schedule of the study (None: the whole space from the start).
    """
    context = TrialContext(str(files.manifest), str(files.run_dir),
                           str(cache / "features") if feature_cache else "",
                           str(cache / "backbones"), cv_folds=cv_folds, fold_seed=seed)
    study = Study(space, seed=seed, schedule=schedule, run_id=files.run_id)
    return RunSession(files, data, study, context, cache)
