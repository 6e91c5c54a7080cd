"""``fit_auto`` and ``resume``: a dataset in, the best fine-tuned model out."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from transfer_automl import planning, quiet, seeding
from transfer_automl.errors import InputError, SearchFailed
from transfer_automl.executors import Executor, make_executor
from transfer_automl.tuning import ControlInbox
from transfer_automl.options import DataOptions, SearchOptions, TrackingOptions, load, saved
from transfer_automl.paths import cache_dir as resolve_cache, default_cache_dir
from transfer_automl.pruners import default_pruner
from transfer_automl.result import FitResult
from transfer_automl.run import RunFiles, find_run
from transfer_automl.schedule import FidelitySchedule
from transfer_automl.search import Budget, EventKind, SearchEvent, run_search
from transfer_automl.session import RunSession, create_run, open_session
from transfer_automl.space import Fidelity, SearchSpace, default_space, fidelity
from transfer_automl.tracking import Trackers
from transfer_automl.tracking.mlflow_mirror import check_uri as check_mlflow_uri
from transfer_automl.tracking.recorder import RunRecorder
from transfer_automl.trial import TrialSpec, TrialState

__all__ = ["fit_auto", "resume", "default_cache_dir", "installed_backbones",
           "retain_checkpoints"]

log = logging.getLogger(__name__)

def fit_auto(dataset: Any, *, max_trials: int | None = None, time_budget_s: float = 900,
             executor: str | Executor = "local", spark_master: str | None = None,
             kb: Any = None, seed: int = 0, cache_dir: str | os.PathLike | None = None, search: SearchOptions | None = None,
             data: DataOptions | None = None,
             tracking: TrackingOptions | None = None, verbose: bool = False) -> FitResult:
    """Search head architectures and fine-tuning settings for ``dataset``; return the best model.

    Args:
        dataset: a folder (class sub-folders, or ``train/ val/ test/``), a ``.zip`` of one,
            or a tuple ``(x, y)`` of NumPy arrays.
        max_trials: trials to run at most; None (the default) runs trials until the time
            budget is spent.
        time_budget_s: wall-clock budget in seconds, from the call on: loading and embedding
            the dataset count against it, and the search gets what they leave (the refits,
            the export and the test score come on top).
        executor: ``"local"`` (worker processes on this machine), ``"spark"`` (Spark tasks on
            ``local[*]``), a Spark master URL (``spark://host:7077``, ``local[4]``), or an
            :class:`~transfer_automl.executors.Executor`.
        spark_master: run trials as Spark tasks on this master (``spark://host:7077``,
            ``local[4]``, ``yarn``...); the same as passing the URL as ``executor``.
        kb: knowledge base: None for the default one (``cache_dir/kb.sqlite``, created from the
            shipped seed), a path or SQLAlchemy URL, or False to use none.
        seed: seed of the data split, the sampler and every trial.
        cache_dir: root of the backbone, feature, dataset and run caches (default:
            :func:`~transfer_automl.paths.default_cache_dir`).
        search: what is searched and how trials are scored and stopped
            (:class:`~transfer_automl.options.SearchOptions`).
        data: how a dataset without its own split is divided
            (:class:`~transfer_automl.options.DataOptions`).
        tracking: where the run is written and who follows it
            (:class:`~transfer_automl.options.TrackingOptions`).
        verbose: print the search's progress to standard error (the plan, then one line per
            finished trial with the best so far, elapsed time, budget left and an ETA).
            The library logs through :mod:`logging` under ``transfer_automl`` and installs
            no handler: ``logging.basicConfig(level=logging.INFO)`` shows its log.

    Returns:
        A :class:`FitResult` with the exported best model.
    """
    from transfer_automl.data import load_dataset

    started = time.monotonic()
    search, data, tracking = search or SearchOptions(), data or DataOptions(), \
        _with_progress(tracking or TrackingOptions(), verbose, max_trials, time_budget_s)
    _check_budget(max_trials, time_budget_s)
    check_mlflow_uri(tracking.mlflow_uri)  # before anything is written: no run left behind
    cache = resolve_cache(cache_dir)
    ex = make_executor(executor, search.n_parallel, spark_master)
    space = _within_passes(search.space or default_space(installed_backbones(search.backbones)),
                           search.max_passes)
    loaded = load_dataset(dataset, val_fraction=data.val_fraction,
                          test_fraction=data.test_fraction, seed=seed, workdir=cache / "datasets")
    timings = {"load_s": time.monotonic() - started}
    # after the data (bad input fails first), before any backbone loads: an unusable KB
    # fails here in one line
    store = planning.open_kb(kb, cache)
    quiet.tensorflow()
    embedding, priors = None, None
    warm = planning.WarmStart(planning.WarmStartMode.NONE, kb=store is not None)
    if store is not None:
        from transfer_automl.embedding import BackboneStatsEmbedder

        embedding = BackboneStatsEmbedder(cache_dir=cache / "backbones", seed=seed).embed(loaded)
        space, priors, warm = planning.plan(store, embedding, space, search.warm_start)
    timings["plan_s"] = time.monotonic() - started - timings["load_s"]
    settings = {"max_trials": max_trials, "time_budget_s": time_budget_s, "seed": seed,
                "search": saved(search), "data": saved(data),
                "warm": seeding.to_dict(warm, priors),
                "embedding": None if embedding is None else [float(v) for v in embedding]}
    files = create_run(_runs_root(tracking, cache), loaded, space, settings)
    plan = _Plan(files, loaded, space, max_trials, time_budget_s, seed, search, warm, priors,
                 embedding, timings=timings)
    return _execute(plan, ex, store, cache, tracking)


def resume(run_id: str, *, executor: str | Executor = "local",
           spark_master: str | None = None, kb: Any = None,
           cache_dir: str | os.PathLike | None = None,
           tracking: TrackingOptions | None = None, verbose: bool = False) -> FitResult:
    """Continue the interrupted run ``run_id``: its finished trials are read back, never
    re-run, and the search goes on with the run's own options and the time left of its
    budget. ``executor``, ``spark_master``, ``kb``, ``tracking`` and ``verbose`` as in :func:`fit_auto` (they
    are not part of a run; ``tracking.runs_dir`` says where to find it)."""
    from transfer_automl.data import load_manifest

    tracking = tracking or TrackingOptions()
    quiet.tensorflow()
    cache = resolve_cache(cache_dir)
    files = find_run(_runs_root(tracking, cache), run_id)
    settings, space = files.load_settings()
    tracking = _with_progress(tracking, verbose, settings["max_trials"],
                              float(settings["time_budget_s"]))
    search = load(SearchOptions, settings.get("search", settings), space=space)
    warm, priors = seeding.from_dict(settings["warm"])
    journal, elapsed = files.journal()
    ex = make_executor(executor, search.n_parallel, spark_master)
    store = planning.open_kb(kb, cache)
    log.info("resuming run %s: %d finished trials, %.0f s spent", run_id, len(journal), elapsed)
    max_trials = settings["max_trials"]
    plan = _Plan(files, load_manifest(files.manifest), space,
                 None if max_trials is None else int(max_trials),
                 float(settings["time_budget_s"]), int(settings["seed"]), search, warm, priors,
                 settings.get("embedding"), journal, elapsed)
    return _execute(plan, ex, store, cache, tracking)


@dataclass
class _Plan:
    """Everything a search needs, for a new run or a resumed one."""

    files: RunFiles
    data: Any
    space: SearchSpace
    max_trials: int | None
    time_budget_s: float
    seed: int
    search: SearchOptions
    warm: planning.WarmStart
    priors: Any = None
    embedding: Any = None
    journal: list = field(default_factory=list)
    elapsed: float = 0.0
    timings: dict = field(default_factory=dict)  # seconds per phase before the search

    @property
    def spent(self) -> float:
        """Budget seconds already used: by earlier sessions of the run, and by loading and
        embedding the dataset in this one."""
        return self.elapsed + sum(self.timings.values())


def _with_progress(tracking: TrackingOptions, verbose: bool, max_trials, time_budget_s):
    """``tracking`` with a console progress tracker added when ``verbose``."""
    if not verbose:
        return tracking
    from transfer_automl.tracking.console import ConsoleProgress

    return replace(tracking, trackers=(*tracking.trackers,
                                       ConsoleProgress(max_trials, time_budget_s)))


def _runs_root(tracking: TrackingOptions, cache: Path) -> Path:
    return Path(tracking.runs_dir) if tracking.runs_dir is not None else cache / "runs"


def _execute(plan: _Plan, ex: Executor, store, cache: Path,
             tracking: TrackingOptions) -> FitResult:
    s = plan.search
    schedule = FidelitySchedule(plan.max_trials) if s.multi_fidelity else None
    session = open_session(plan.files, plan.data, plan.space, cache, seed=plan.seed,
                           feature_cache=s.feature_cache, cv_folds=s.cv_folds,
                           schedule=schedule)
    study, data = session.study, session.data
    for spec, result in plan.journal:
        study.restore(spec, result)
    seeding.seed_study(study, plan.priors, plan.warm)
    study.enqueue(plan.space.default, origin="default")
    log.info("run %s: %d classes, %d/%d/%d images (train/val/test); %s", session.run_id,
             len(data.class_names), len(data.train), len(data.val), len(data.test),
             plan.warm.describe())
    trackers = Trackers([RunRecorder(store, data, plan.embedding, plan.files, study,
                                     plan.elapsed),
                         _mlflow(tracking, session.run_id, plan), *tracking.trackers])
    trackers.on_event(SearchEvent(EventKind.PLANNED, None, study, 0.0, plan.warm.describe()))
    budget = Budget(plan.max_trials, max(1.0, plan.time_budget_s - plan.spent),
                    s.trial_timeout_s)
    pruner = s.pruner if s.pruner is not None else (default_pruner() if s.early_stopping
                                                    else None)
    finale = _Finale(s, data)
    timings = dict(plan.timings)
    try:
        t0 = time.monotonic()
        after = run_search(study, ex, session.context, budget, trackers, pruner=pruner,
                           finale=finale, controls=ControlInbox(plan.files.run_dir))
        timings["search_s"] = finale.started - t0
        timings["refit_s"] = time.monotonic() - finale.started
        result = _finish(session, plan.warm, finale.checkpoints(after), finale.ensemble,
                         timings)
    except BaseException as exc:
        trackers.close("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
        raise
    trackers.close("complete", result)
    if tracking.keep_checkpoints:
        retain_checkpoints(study, tracking.keep_checkpoints)
    return result


def _mlflow(tracking: TrackingOptions, run_id: str, plan: _Plan):
    if not tracking.mlflow_uri:
        return None
    from transfer_automl.tracking.mlflow_mirror import MlflowMirror

    params = {"max_trials": plan.max_trials, "time_budget_s": plan.time_budget_s,
              "seed": plan.seed, **saved(plan.search)}
    return MlflowMirror(tracking.mlflow_uri, tracking.mlflow_experiment, run_id,
                        {k: v for k, v in params.items() if v is not None})


def retain_checkpoints(study: Study, keep: int) -> list[str]:
    """Delete the checkpoints of all but the ``keep`` best scored trials, keeping every trial
    that another trial descends from; returns the ids whose weights were removed."""
    scored = sorted((r for r in study.finished if r.result and r.result.score is not None),
                    key=lambda r: (-r.result.score, r.spec.number))
    parents = {r.spec.parent for r in study.trials.values() if r.spec.parent}
    kept = {r.spec.trial_id for r in scored[:keep]} | parents
    removed = []
    for record in study.finished:
        artifact = record.result.artifact if record.result else None
        if artifact and record.spec.trial_id not in kept and Path(artifact).is_file():
            Path(artifact).unlink()
            removed.append(record.spec.trial_id)
    if removed:
        log.info("retention: removed the checkpoints of %d trials (keep_checkpoints=%d)",
                 len(removed), keep)
    return removed


def _within_passes(space: SearchSpace, max_passes: int) -> SearchSpace:
    """``space`` without the fused-feature choices that need more backbone passes per image
    than ``max_passes``."""
    if "fusion" not in space.names:
        return space
    allowed = [o for o in space.param("fusion").options
               if o == "none" or len(o.split("+")) <= max_passes]
    return space.restrict(fusion=allowed)


def _check_budget(max_trials, time_budget_s) -> None:
    if max_trials is not None and (not isinstance(max_trials, int)
                                   or isinstance(max_trials, bool) or max_trials < 1):
        raise InputError(f"max_trials: expected an integer >= 1 or None, got {max_trials!r}")
    if not isinstance(time_budget_s, (int, float)) or time_budget_s <= 0:
        raise InputError(f"time_budget_s: expected a number of seconds > 0, got {time_budget_s!r}")


def installed_backbones(names: Sequence[str] | None = None) -> list[str]:
    """``names`` checked against the installed backbones (None: all of them)."""
    from pretrained import available_backbones

    available = list(available_backbones())
    if names is None:
        return available
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise InputError(f"backbones: expected names from {available}, got {list(names)}")
    return list(names)


#: the best completed trials an ensemble is chosen from
ENSEMBLE_CANDIDATES = 16


class _Finale:
    """What runs after the search: choose the ensemble from the trials' held-out
    predictions, then refit the best trial and every ensemble member on training +
    validation images for their best epoch counts, on the executor like any trial (only
    trials on cached features or activations: a refit there costs seconds)."""

    def __init__(self, search: SearchOptions, data) -> None:
        self.search, self.data = search, data
        self.ensemble = None
        self.started = time.monotonic()

    def __call__(self, study) -> list[TrialSpec]:
        from transfer_automl import ensemble

        self.started = time.monotonic()
        if self.search.ensemble_size >= 2:
            labels = np.concatenate([self.data.train.labels, self.data.val.labels])
            candidates = ensemble.load_candidates(study.finished, ENSEMBLE_CANDIDATES)
            self.ensemble = ensemble.select(candidates, labels,
                                            rounds=self.search.ensemble_size,
                                            max_passes=self.search.max_passes)
            if self.ensemble is not None:
                log.info("%s", self.ensemble.describe())
        best = study.best()
        if not self.search.refit or best is None:
            return []
        ids = [best.spec.trial_id, *(self.ensemble.members if self.ensemble else [])]
        specs = [_refit_spec(study.trials[t]) for t in dict.fromkeys(ids)]
        return [spec for spec in specs if spec is not None]

    @staticmethod
    def checkpoints(results: dict) -> dict[str, str]:
        """Trial id -> its refit checkpoint, for the refits that completed."""
        out = {}
        for trial_id, result in results.items():
            if result.state == TrialState.COMPLETE and result.artifact:
                out[trial_id.removesuffix("-refit")] = result.artifact
            else:
                log.warning("refit %s failed (%s); exporting the trial's own weights",
                            trial_id, result.reason)
        return out


def _refit_spec(record) -> TrialSpec | None:
    if fidelity(record.spec.config) is Fidelity.IMAGES or not record.result.best_epoch:
        return None
    return replace(record.spec, trial_id=f"{record.spec.trial_id}-refit", origin="refit",
                   refit_epochs=record.result.best_epoch)


def _finish(session: RunSession, warm: planning.WarmStart, refits: dict[str, str],
            ensemble=None, timings: dict | None = None) -> FitResult:
    """Export the ensemble (or the best trial's model), score it on the test split, explain
    the run. ``refits`` maps trial ids to their refit checkpoints."""
    from transfer_automl.result import SingleModel, ensemble_row, explain
    from transfer_automl.trial_model import export_ensemble, export_trial, split_report

    study, data, run_id = session.study, session.data, session.run_id
    best = study.best()
    if best is None:
        reasons = sorted({r.result.reason for r in study.finished if r.result and r.result.reason})
        raise SearchFailed(f"no trial produced a model ({len(study.trials)} tried); "
                           f"reasons: {'; '.join(reasons) or 'none recorded'}")
    config, best_id = dict(best.spec.config), best.spec.trial_id
    metadata = {"run_id": run_id, "backbone": config["backbone"], "best_trial": best_id,
                "val_score": best.result.score, "data_report": data.report.to_dict(),
                "refit_on_train_and_val": best_id in refits}
    backbones = session.cache / "backbones"
    single = SingleModel(config, refits.get(best_id) or best.result.artifact, data.class_names,
                         backbones, metadata)
    out = session.files.run_dir / "model"
    t0 = time.monotonic()
    if ensemble is not None:
        members = [(study.trials[t].spec.config, refits.get(t) or study.trials[t].result.artifact,
                    w) for t, w in ensemble.weights.items()]
        exported = export_ensemble(members, data.class_names, out, backbone_cache=backbones,
                                   metadata={**metadata, "ensemble": ensemble.to_dict(),
                                             "refit_members": [t for t in ensemble.weights
                                                               if t in refits]})
    else:
        exported = export_trial(config, single.weights, data.class_names, out,
                                backbone_cache=backbones, metadata=metadata)
    report = split_report(exported, data.test, data.class_names)
    timings = {k: round(v, 1) for k, v in {**(timings or {}),
                                           "export_s": time.monotonic() - t0}.items()}
    exported.record_metadata(timings=timings)
    if report is not None:
        exported.record_metadata(test=report.to_dict())
        if report.n < report.FEW_IMAGES:
            log.warning("run %s: %s", run_id, report.summary())
    leaderboard = study.leaderboard()
    if ensemble is not None:
        leaderboard.insert(0, ensemble_row(ensemble))
    explanation = explain(study, best, warm.describe(), best_id in refits)
    if ensemble is not None:
        explanation += " Exported: an " + ensemble.describe() + "."
    return FitResult(run_id=run_id, best_config=config, best_score=float(best.result.score),
                     test_score=report.accuracy if report else None, test_report=report,
                     leaderboard=leaderboard, group=warm.group,
                     data_report=data.report.to_dict(), explanation=explanation,
                     model=exported, ensemble=ensemble, single=single, timings=timings)
