"""``fit_auto``: a dataset in, the best fine-tuned model out."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transfer_automl.errors import InputError, TransferAutoMLError
from transfer_automl.executors import Executor, LocalExecutor, TrialContext
from transfer_automl.pruners import Pruner, default_pruner
from transfer_automl.result import FitResult
from transfer_automl.run import RunFiles, find_run, new_run_id
from transfer_automl.schedule import FidelitySchedule
from transfer_automl import warmstart
from transfer_automl.embedding import BackboneStatsEmbedder
from transfer_automl.search import Budget, Callback, SearchEvent, run_search
from transfer_automl.space import SearchSpace, default_space
from transfer_automl.study import Study

log = logging.getLogger(__name__)

EXECUTORS = ("local", "spark")


class SearchFailed(TransferAutoMLError):
    """No trial produced a model; the message lists why the trials failed."""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/transfer-automl`` or ``~/.cache/transfer-automl``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "transfer-automl"


def fit_auto(dataset: Any = None, *, max_trials: int = 20, time_budget_s: float = 900,
             executor: str | Executor = "local", spark_master: str | None = None,
             kb: Any = None, warm_start: str = "auto", n_parallel: int = 1, seed: int = 0,
             backbones: Sequence[str] | None = None, space: SearchSpace | None = None,
             trial_timeout_s: float | None = None, cache_dir: str | os.PathLike | None = None,
             runs_dir: str | os.PathLike | None = None, on_event: Callback | None = None,
             val_fraction: float = 0.15, test_fraction: float = 0.15,
             multi_fidelity: bool = True, feature_cache: bool = True,
             early_stopping: bool = True, pruner: Pruner | None = None,
             resume: str | None = None, refit: bool = True, cv_folds: int = 5,
             keep_checkpoints: int | None = 20, mlflow_uri: str | None = None,
             mlflow_experiment: str = "transfer-automl") -> FitResult:
    """Search head architectures and fine-tuning settings for ``dataset``; return the best model.

    Args:
        dataset: a folder (class sub-folders, or ``train/ val/ test/``), a ``.zip`` of one,
            or a tuple ``(x, y)`` of NumPy arrays.
        max_trials: trials to run at most.
        time_budget_s: wall-clock budget of the search in seconds (the final export comes
            on top).
        executor: ``"local"`` (worker processes on this machine), ``"spark"`` (Spark tasks;
            ``local[*]`` unless ``spark_master`` is given) or an ``Executor``.
        spark_master: Spark master URL for ``executor="spark"``.
        kb: knowledge base: None for the default one (``cache_dir/kb.sqlite``, created from the
            shipped seed), a path or SQLAlchemy URL, or False to use none.
        warm_start: ``"auto"`` (prior points and prior trials unless the dataset is far from
            everything known), ``"none"``, ``"points"`` or ``"history"``.
        n_parallel: concurrent trials of the local executor.
        seed: seed of the data split, the sampler and every trial.
        backbones: catalogue names the search may choose from (default: all installed ones,
            EfficientNet-Lite0 first).
        space: a custom search space (default: :func:`default_space` over ``backbones``).
        trial_timeout_s: kill a single trial after this many seconds.
        cache_dir: root of the backbone, feature and dataset caches (default:
            :func:`default_cache_dir`).
        runs_dir: where runs are written (default: ``cache_dir/runs``).
        on_event: called with every :class:`~transfer_automl.search.SearchEvent`.
        val_fraction: share of images for validation when the dataset has no given split.
        test_fraction: share of images held out for the test score.
        multi_fidelity: spend the first trials on cached features only, then fine-tune the
            best heads (see :class:`~transfer_automl.schedule.FidelitySchedule`); False
            samples the whole space from the first trial.
        feature_cache: reuse backbone outputs across trials; False makes every trial run its
            own forward passes (for comparisons).
        early_stopping: stop unpromising trials from their learning curves (diverging or
            stalled curves, and the median rule); False lets every trial run its epochs.
        pruner: a custom :class:`~transfer_automl.pruners.Pruner` (overrides the default).
        refit: retrain the best configuration on training + validation images for its best
            epoch count before export (trials on cached features or activations only).
        cv_folds: trials on cached features (up to 10,000 training + validation images) and
            on cached activations (up to 1,500) are scored by stratified k-fold
            cross-validation over training + validation images (one small validation split
            ranks configurations poorly); 0 or 1 always uses the validation split.
        keep_checkpoints: retention of trial checkpoints: after the search, the weights of
            the best this many scored trials are kept (and of every trial another descends
            from), the rest deleted; None keeps all. Journals and KB records stay complete.
        mlflow_uri: an MLflow tracking URI: mirror the search (a run with one nested run per
            trial: parameters, per-epoch metrics, state, reason) into MLflow. Needs
            ``mlflow`` or ``mlflow-skinny`` installed.
        mlflow_experiment: the MLflow experiment's name.
        resume: id of an interrupted run to continue (``dataset`` may then be None): its
            finished trials are read back, never re-run, and the search continues with the
            run's own settings and the time left of its budget.

    Returns:
        A :class:`FitResult` with the exported best model.
    """
    from transfer_automl.data import load_dataset

    _check_budget(max_trials, time_budget_s, trial_timeout_s)
    if keep_checkpoints is not None and (not isinstance(keep_checkpoints, int)
                                         or keep_checkpoints < 1):
        raise InputError(f"keep_checkpoints: expected an integer >= 1 or None, "
                         f"got {keep_checkpoints!r}")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    runs_root = Path(runs_dir) if runs_dir is not None else cache / "runs"
    ex = _executor(executor, n_parallel, spark_master)
    if resume is not None:
        store = warmstart.open_kb(kb, cache)
        plan = _resume_plan(runs_root, resume, store)
    else:
        settings = {"max_trials": max_trials, "time_budget_s": time_budget_s, "seed": seed,
                    "trial_timeout_s": trial_timeout_s, "multi_fidelity": multi_fidelity,
                    "feature_cache": feature_cache, "warm_start": warm_start, "refit": refit,
                    "cv_folds": cv_folds}
        space = space or default_space(_backbones(backbones))
        data = load_dataset(dataset, val_fraction=val_fraction, test_fraction=test_fraction,
                            seed=seed, workdir=cache / "datasets")
        # after the data (bad input fails first), before any backbone loads: an unusable KB
        # fails here in one line
        store = warmstart.open_kb(kb, cache)
        plan = _new_plan(data, settings, space, store, cache, runs_root)
    if pruner is None and early_stopping:
        pruner = default_pruner()
    tracking = {"keep_checkpoints": keep_checkpoints, "mlflow_uri": mlflow_uri,
                "mlflow_experiment": mlflow_experiment}
    return _execute(plan, ex, store, cache, on_event, pruner, tracking)


@dataclass
class _Plan:
    """Everything a search needs, for a new run or a resumed one."""

    files: RunFiles
    data: Any
    space: SearchSpace
    settings: dict[str, Any]
    warm: warmstart.WarmStart
    priors: Any = None
    embedding: Any = None
    journal: list = field(default_factory=list)
    elapsed: float = 0.0


def _new_plan(data, settings, space, store, cache, runs_root) -> _Plan:
    embedding, warm, p = None, warmstart.WarmStart("none"), None
    if store is not None:
        embedding = BackboneStatsEmbedder(cache_dir=cache / "backbones",
                                          seed=settings["seed"]).embed(data)
        space, p, warm = warmstart.plan(store, embedding, space, settings["warm_start"])
    files = RunFiles(runs_root / new_run_id())
    files.run_dir.mkdir(parents=True)
    data.save_manifest(files.manifest)
    files.save_settings({**settings, "warm": warmstart.to_dict(warm, p)}, space)
    return _Plan(files, data, space, settings, warm, p, embedding)


def _resume_plan(runs_root: Path, run_id: str, store) -> _Plan:
    from transfer_automl.data import load_manifest

    files = find_run(runs_root, run_id)
    settings, space = files.load_settings()
    warm, p = warmstart.from_dict(settings.pop("warm"))
    journal, elapsed = files.journal()
    data = load_manifest(files.manifest)
    log.info("resuming run %s: %d finished trials, %.0f s spent", run_id, len(journal), elapsed)
    return _Plan(files, data, space, settings, warm, p, None, journal, elapsed)


def _execute(plan: _Plan, ex: Executor, store, cache: Path, on_event, pruner,
             tracking: dict[str, Any]) -> FitResult:
    s, files, data = plan.settings, plan.files, plan.data
    context = TrialContext(str(files.manifest), str(files.run_dir),
                           str(cache / "features") if s["feature_cache"] else "",
                           str(cache / "backbones"), cv_folds=s.get("cv_folds", 5),
                           fold_seed=s["seed"])
    schedule = FidelitySchedule(s["max_trials"]) if s["multi_fidelity"] else None
    study = Study(plan.space, seed=s["seed"], schedule=schedule)
    for spec, result in plan.journal:
        study.restore(spec, result)
    warmstart.apply(study, plan.priors, plan.warm)
    study.enqueue(plan.space.default, origin="default")
    log.info("run %s: %d classes, %d/%d/%d images (train/val/test); %s", files.run_id,
             len(data.class_names), len(data.train), len(data.val), len(data.test),
             plan.warm.describe())
    mirror = None
    if tracking.get("mlflow_uri"):
        from transfer_automl.mlflow_log import MlflowLogger

        mirror = MlflowLogger(tracking["mlflow_uri"], tracking["mlflow_experiment"],
                              files.run_id, {k: v for k, v in s.items() if v is not None})
    forward = on_event if mirror is None else _chain(mirror, on_event)
    recorder = warmstart.Recorder(store, data, plan.embedding, files, study, forward,
                                  plan.elapsed)
    recorder(SearchEvent("planned", None, study, 0.0, plan.warm.describe()))
    budget = Budget(s["max_trials"], max(1.0, s["time_budget_s"] - plan.elapsed),
                    s["trial_timeout_s"])
    try:
        run_search(study, ex, context, budget, recorder, pruner=pruner)
        artifact = _refit(study, context) if s.get("refit", True) else None
        result = _finish(study, data, files.run_id, files.run_dir, cache, plan.warm, artifact)
    except BaseException as exc:
        status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        recorder.close(status)
        if mirror is not None:
            mirror.close(status)
        raise
    recorder.close("complete", result)
    if mirror is not None:
        mirror.close("complete", result)
    if tracking.get("keep_checkpoints"):
        retain_checkpoints(study, tracking["keep_checkpoints"])
    return result


def _chain(*callbacks):
    """One callback that calls each non-None callback in turn."""
    live = [c for c in callbacks if c is not None]

    def call(event) -> None:
        for callback in live:
            callback(event)
    return call


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


def _check_budget(max_trials, time_budget_s, trial_timeout_s) -> None:
    if not isinstance(max_trials, int) or max_trials < 1:
        raise InputError(f"max_trials: expected an integer >= 1, got {max_trials!r}")
    if not isinstance(time_budget_s, (int, float)) or time_budget_s <= 0:
        raise InputError(f"time_budget_s: expected a number of seconds > 0, got {time_budget_s!r}")
    if trial_timeout_s is not None and trial_timeout_s <= 0:
        raise InputError(f"trial_timeout_s: expected seconds > 0 or None, got {trial_timeout_s!r}")


def _backbones(names: Sequence[str] | None) -> list[str]:
    from pretrained import available_backbones

    available = list(available_backbones())
    if names is None:
        return available
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise InputError(f"backbones: expected names from {available}, got {list(names)}")
    return list(names)


def _executor(executor: str | Executor, n_parallel: int, spark_master: str | None) -> Executor:
    if isinstance(executor, Executor):
        return executor
    if executor == "local":
        return LocalExecutor(n_parallel=n_parallel)
    if executor == "spark":
        from transfer_automl.executors import SparkExecutor

        return SparkExecutor(spark_master=spark_master or "local[*]")
    raise InputError(f"executor: expected one of {list(EXECUTORS)} or an Executor, got {executor!r}")


def _refit(study: Study, context: TrialContext) -> str | None:
    """Retrain the best configuration on training + validation images for its best epoch
    count; only for trials on cached features or activations (a refit there costs seconds).

    Returns the refit weights, or None to keep the search trial's own weights.
    """
    from dataclasses import replace

    from transfer_automl.space import fidelity
    from transfer_automl.training import TrialRunner
    from transfer_automl.trial import TrialState

    best = study.best()
    if best is None or fidelity(best.spec.config) == "images" or not best.result.best_epoch:
        return None
    spec = replace(best.spec, trial_id=f"{best.spec.trial_id}-refit", origin="refit",
                   refit_epochs=best.result.best_epoch)
    result = TrialRunner(context).run(spec, lambda metrics: None)
    if result.state != TrialState.COMPLETE:
        log.warning("refit of %s failed (%s); exporting the trial's own weights",
                    best.spec.trial_id, result.reason)
        return None
    return result.artifact


def _finish(study: Study, data, run_id: str, run_dir: Path, cache: Path,
            warm: warmstart.WarmStart, refit_artifact: str | None = None) -> FitResult:
    """Export the best trial's model, score it on the test split, explain the run."""
    from transfer_automl.export import ExportedModel, save_classifier

    best = study.best()
    if best is None:
        reasons = sorted({r.result.reason for r in study.finished if r.result and r.result.reason})
        raise SearchFailed(f"no trial produced a model ({len(study.trials)} tried); "
                           f"reasons: {'; '.join(reasons) or 'none recorded'}")
    config = dict(best.spec.config)
    from pretrained import load_backbone

    from transfer_automl.training import build_classifier

    backbone = load_backbone(config["backbone"], cache_dir=cache / "backbones")
    model = build_classifier(backbone, config, len(data.class_names),
                             refit_artifact or best.result.artifact)
    metadata = {"run_id": run_id, "backbone": backbone.spec.name, "config": config,
                "best_trial": best.spec.trial_id, "val_score": best.result.score,
                "class_names": list(data.class_names), "data_report": data.report.to_dict(),
                "refit_on_train_and_val": refit_artifact is not None}
    exported = ExportedModel(save_classifier(model, config["resolution"], run_dir / "model",
                                             data.class_names, metadata))
    test_score = None
    if len(data.test):
        predicted = exported.predict_proba(list(data.test.paths)).argmax(axis=1)
        test_score = float((predicted == data.test.labels).mean())
    return FitResult(run_id=run_id, best_config=config, best_score=float(best.result.score),
                     test_score=test_score, leaderboard=study.leaderboard(),
                     group=warm.group, data_report=data.report.to_dict(),
                     explanation=warm.describe() + ". " + _explain(study, best) + (
                         _refit_note(best) if refit_artifact else ""),
                     model=exported)


def _refit_note(best) -> str:
    if best.spec.config["optimizer"] == "lbfgs":
        return " Solved again on training + validation images before export."
    return (f" Refit on training + validation images for {best.result.best_epoch}"
            " epochs before export.")


def _explain(study: Study, best) -> str:
    states = [r.state.value for r in study.trials.values()]
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
    cfg = best.spec.config
    head = "a linear head" if cfg["n_dense"] == 0 else f"a {cfg['n_dense']}-layer MLP head"
    if cfg["optimizer"] == "lbfgs":
        head += " solved exactly (L-BFGS)"
    tuning = ("the backbone frozen" if cfg["unfrozen_blocks"] == 0
              else f"the top {cfg['unfrozen_blocks']} backbone blocks fine-tuned")
    return (f"{len(states)} trials ({counts}). Best: trial {best.spec.trial_id} "
            f"(from {best.spec.origin}), {head} on {cfg['backbone']} at "
            f"{cfg['resolution']} px with {tuning}, validation accuracy "
            f"{best.result.score:.4f}" + (
                "." if cfg["optimizer"] == "lbfgs" else f" at epoch {best.result.best_epoch}."))
