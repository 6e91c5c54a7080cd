"""Go back to any trial of a run: reload its checkpoint, export it, or continue training it.

Every finished trial keeps its best-epoch weights (``trials/<id>/weights.npz`` in the run
directory) and its spec in the run's journal. :func:`restore` turns that back into a model;
:func:`retune` continues training from it with changed optimizer settings, as a child trial
that is journalled in the same run (and recorded in the knowledge base) with its parent.
:func:`tune` changes a trial while its search runs (see :mod:`transfer_automl.tuning`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from transfer_automl.errors import InputError
from transfer_automl.run import RunFiles, find_run
from transfer_automl.trial import EpochMetrics, TrialResult, TrialSpec, TrialState

log = logging.getLogger(__name__)

#: What a retune may change: optimizer settings and how much of the backbone trains.
RETUNABLE = ("optimizer", "learning_rate", "momentum", "weight_decay", "backbone_lr_mult",
             "unfrozen_blocks", "epochs", "label_smoothing")


@dataclass
class RestoredTrial:
    """One trial of a run, back from its journal entry and checkpoint.

    Attributes:
        run_id: the run the trial belongs to.
        spec: what the trial ran (configuration, origin, parent).
        result: how it ended (state, score, per-epoch history, checkpoint path).
    """

    run_id: str
    spec: TrialSpec
    result: TrialResult
    files: RunFiles
    cache_dir: Path

    @property
    def checkpoint(self) -> Path:
        if self.result.artifact and not Path(self.result.artifact).is_file():
            raise InputError(f"the checkpoint of trial {self.spec.trial_id} of run "
                             f"{self.run_id} was removed by the retention policy "
                             f"(fit_auto keep_checkpoints keeps the best trials' weights)")
        if not self.result.artifact:
            raise InputError(f"trial {self.spec.trial_id} of run {self.run_id} has no checkpoint "
                             f"(state {self.result.state.value}: "
                             f"{self.result.reason or 'no weights were saved'})")
        return Path(self.result.artifact)

    def export(self, out_dir: str | os.PathLike):
        """Write this trial's model like ``FitResult.export`` (SavedModel + labels + metadata)
        and return it loaded (:class:`~transfer_automl.export.ExportedModel`)."""
        from transfer_automl.data import load_manifest
        from transfer_automl.trial_model import export_trial

        data = load_manifest(self.files.manifest)
        metadata = {"run_id": self.run_id, "backbone": self.spec.config["backbone"],
                    "trial": self.spec.trial_id, "parent": self.spec.parent,
                    "val_score": self.result.score, "data_report": data.report.to_dict(),
                    "restored": True}
        return export_trial(self.spec.config, self.checkpoint, data.class_names, out_dir,
                            backbone_cache=self.cache_dir / "backbones", metadata=metadata)


def restore(run_id: str, trial_id: str, *, runs_dir: str | os.PathLike | None = None,
            cache_dir: str | os.PathLike | None = None,
            before_tuning: int | None = None) -> RestoredTrial:
    """The trial ``trial_id`` of run ``run_id``, with its checkpoint.

    ``before_tuning=n`` goes back to the trial's state just before its n-th live change (see
    :func:`tune`): the weights at that epoch boundary, the configuration before the change.

    Raises:
        InputError: the run, the trial or the change does not exist.
    """
    from transfer_automl.paths import cache_dir as resolve_cache

    cache = resolve_cache(cache_dir)
    files = find_run(Path(runs_dir) if runs_dir is not None else cache / "runs", run_id,
                     "restore")
    entries, _ = files.journal()
    for spec, result in entries:
        if spec.trial_id == trial_id:
            trial = RestoredTrial(run_id, spec, result, files, cache)
            return trial if before_tuning is None else _before(trial, before_tuning)
    known = ", ".join(spec.trial_id for spec, _ in entries) or "none finished"
    raise InputError(f"run {run_id} has no finished trial {trial_id!r} (trials: {known})")


def _before(trial: RestoredTrial, number: int) -> RestoredTrial:
    """``trial`` as it was just before its ``number``-th live change."""
    from transfer_automl.history import tunings

    changes = tunings(trial.result)
    if not isinstance(number, int) or not 1 <= number <= len(changes):
        raise InputError(f"before_tuning: trial {trial.spec.trial_id} of run {trial.run_id} "
                         f"had {len(changes)} live changes; expected 1 to {len(changes)}, "
                         f"got {number!r}")
    config = dict(trial.spec.config)
    for earlier in changes[:number - 1]:  # the configuration in force just before
        config.update({k: v for k, v in earlier["changes"].items() if k != "epochs_left"})
    epoch = int(changes[number - 1]["epoch"]) - 1
    history = tuple(m for m in trial.result.history if m.epoch <= epoch)
    best = max(history, key=lambda m: m.val_accuracy, default=None)
    result = replace(trial.result, artifact=changes[number - 1]["checkpoint"], history=history,
                     score=history[-1].val_accuracy if history else None,
                     best_epoch=history[-1].epoch if history else None,
                     extra={**trial.result.extra, "before_tuning": number,
                            "best_before": best.val_accuracy if best else None})
    return replace(trial, spec=replace(trial.spec, config=config), result=result)


def tune(run_id: str, trial_id: str, *, learning_rate: float | None = None,
         momentum: float | None = None, weight_decay: float | None = None,
         epochs_left: int | None = None, stop: bool = False,
         runs_dir: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
         wait_s: float = 60.0) -> dict[str, Any]:
    """Change a trial of a search that is running now, from its next epoch boundary on.

    The search (``fit_auto`` or ``resume`` in any process, a server job) takes the request
    between polls of its executor and hands it to the trial, which saves its weights (see
    ``restore(..., before_tuning=n)``), rebuilds its optimizers with the new settings (their
    moment estimates restart; a cosine schedule restarts from the new learning rate over the
    epochs left) and goes on; the change is recorded with the trial and shown as a branch of
    its lineage (``transfer-automl history``). ``stop=True`` asks the trial to stop after its
    current epoch instead, keeping its best epoch.

    Args:
        learning_rate, momentum, weight_decay: new optimizer settings (those the trial's
            optimizer does not use are ignored, and the answer says so).
        epochs_left: epochs to run from the change on.
        wait_s: how long to wait for the trial to apply it.

    Returns:
        The search's answer: ``status`` ("applied", with ``epoch``, the first epoch under the
        change; "sent" if it was still waiting for an epoch boundary after ``wait_s``;
        "stopping"; "rejected" or "not applied", with the reason in ``detail``) and
        ``request_id``.
    """
    from transfer_automl import tuning
    from transfer_automl.paths import cache_dir as resolve_cache

    runs = Path(runs_dir) if runs_dir is not None else resolve_cache(cache_dir) / "runs"
    files = find_run(runs, run_id, "tune")
    if (files.state() or {}).get("status") == "complete":
        raise InputError(f"run {run_id} has finished: live changes go to trials of a running "
                         f"search; 'transfer-automl restore RUN TRIAL --lr ...' retunes a "
                         f"finished trial")
    changes = {"learning_rate": learning_rate, "momentum": momentum,
               "weight_decay": weight_decay, "epochs_left": epochs_left}
    request_id = tuning.send(files.run_dir, trial_id, changes,
                             stop="stopped by the user" if stop else None)
    answer = tuning.wait_for_answer(files.run_dir, request_id, wait_s)
    return answer or {"request_id": request_id, "status": "waiting",
                      "detail": f"the search has not taken the request in {wait_s:g} s "
                                f"(is run {run_id} still running?)", "epoch": None}


def retune(run_id: str, trial_id: str, *, runs_dir: str | os.PathLike | None = None,
           cache_dir: str | os.PathLike | None = None, kb: Any = None,
           on_epoch: Callable[[EpochMetrics], None] | None = None,
           **changes: Any) -> RestoredTrial:
    """Continue training trial ``trial_id`` from its checkpoint with ``changes`` applied.

    The child starts from the parent's best-epoch weights (all of them when the unfrozen
    blocks stay the same; the head only when ``unfrozen_blocks`` changes, the newly
    trained blocks then starting from the pretrained weights) and is scored on the run's
    validation split. It is journalled in the same run with ``parent=trial_id`` and recorded
    in the knowledge base (``kb`` as in :func:`~transfer_automl.fit_auto`; False for none).

    Args:
        changes: new values for any of :data:`RETUNABLE`, e.g. ``learning_rate=1e-4``.

    Returns:
        The child trial, restorable like any other.
    """
    from transfer_automl.planning import open_kb
    from transfer_automl.tracking.recorder import record_child
    from transfer_automl.trial import TrialContext
    from transfer_automl.space import Fidelity, exact_solvable, fidelity
    from transfer_automl.training import TrialRunner

    parent = restore(run_id, trial_id, runs_dir=runs_dir, cache_dir=cache_dir)
    unknown = sorted(set(changes) - set(RETUNABLE))
    if unknown:
        raise InputError(f"retune: cannot change {unknown}; retunable: {list(RETUNABLE)}")
    settings, space = parent.files.load_settings()
    config = {**parent.spec.config, **changes}
    if config["optimizer"] == "lbfgs" and not exact_solvable(config):
        raise InputError("retune: optimizer lbfgs solves linear heads on cached features only; "
                         "pass optimizer='adam' (or adamw, sgd) to fine-tune")
    config.update(_validate_changes(space, changes))
    entries, elapsed = parent.files.journal()
    number = 1 + max(spec.number for spec, _ in entries)
    spec = TrialSpec(f"t{number:03d}", number, config, f"retune/{trial_id}",
                     seed=parent.spec.seed, parent=trial_id,
                     init_weights=str(parent.checkpoint))
    # The child validates on the split its starting weights were trained against: the
    # parent's first cross-validation fold (same fold count and seed), or the holdout split.
    parent_folds = int(parent.result.extra.get("cv_folds", 0))
    if parent_folds and fidelity(config) is Fidelity.IMAGES:
        raise InputError(f"retune: {trial_id} was cross-validated, so its weights have seen "
                         "the validation images; an augmented retune (scored on them) would "
                         "overstate itself. Retune without augmentation.")
    context = TrialContext(str(parent.files.manifest), str(parent.files.run_dir),
                           str(parent.cache_dir / "features")
                           if settings.get("search", settings).get("feature_cache", True)
                           else "",
                           str(parent.cache_dir / "backbones"), cv_folds=parent_folds,
                           cv_max_images=10**9, cv_max_feature_images=10**9,
                           fold_seed=int(parent.result.extra.get("cv_seed", parent.spec.seed)))
    log.info("retuning %s of run %s as %s with %s", trial_id, run_id, spec.trial_id, changes)
    result = TrialRunner(context).run(spec, on_epoch or (lambda metrics: None))
    parent.files.append(spec, result, elapsed)
    store = open_kb(kb, parent.cache_dir)
    if store is not None:
        record_child(store, run_id, spec, result)
    if result.state == TrialState.FAILED:
        log.warning("retune %s failed: %s", spec.trial_id, result.reason)
    return replace(parent, spec=spec, result=result)


def _validate_changes(space, changes: dict) -> dict:
    """Check changed values against the full space, not the run's: a run restricted to
    frozen trials or fixed epochs can still be retuned beyond them. Numbers may leave the
    search ranges (a retune that lowers the learning rate below anything searched is the
    point of retuning) but must be finite, non-negative and, for the learning rate, > 0."""
    import math

    from transfer_automl.space import Choice, default_space

    full = default_space(space.param("backbone").options)
    out = {}
    for name, value in changes.items():
        param = full.param(name)
        if name == "epochs":  # any number of further epochs
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"epochs: expected an integer >= 1, got {value!r}")
            out[name] = value
            continue
        if isinstance(param, Choice):
            out[name] = param.validate(value)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InputError(f"{name}: expected a number, got {value!r}") from None
        if not math.isfinite(number) or number < 0 or (name == "learning_rate" and number == 0):
            raise InputError(f"{name}: expected a finite number >= 0 (> 0 for the learning "
                             f"rate), got {value!r}")
        out[name] = number
    return out
