"""Trial specs, results and states: the small, picklable records that cross process borders."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: beside a trial's checkpoint: the rows it held out and the probabilities it predicted for
#: them at its best epoch (what ensembles are chosen from)
HELDOUT_FILE = "heldout.npz"


class TrialState(str, enum.Enum):
    """Lifecycle of one trial."""

    PENDING = "pending"
    RUNNING = "running"
    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAILED)


@dataclass(frozen=True)
class TrialSpec:
    """What an executor needs to run one trial: no live TensorFlow objects.

    Attributes:
        trial_id: unique id within the run (``"t003"``).
        number: 0-based position in the order trials were asked for.
        config: a complete configuration of the search space.
        origin: where the configuration came from (``"default"``, ``"tpe"``, ``"random"``,
            ``"enqueued"``).
        seed: the seed the trial trains with.
        refit_epochs: when set, train on the training and validation images together for
            exactly this many epochs and keep the last epoch (the final refit of the best
            configuration); validation metrics are then not a held-out estimate.
        parent: the trial this one descends from: the promoted trial a fine-tuning trial
            keeps the head of, or the trial a retune continues from.
        init_weights: a checkpoint (``weights.npz`` of ``parent``) to start training from
            instead of fresh head weights and the pretrained blocks.
    """

    trial_id: str
    number: int
    config: Mapping[str, Any]
    origin: str
    seed: int
    refit_epochs: int | None = None
    parent: str | None = None
    init_weights: str | None = None


@dataclass(frozen=True)
class EpochMetrics:
    """Metrics of one finished epoch, sent to the driver while the trial runs.

    ``tuned``: the live changes (see :mod:`transfer_automl.tuning`) applied at the start of
    this epoch, if any.
    """

    trial_id: str
    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float
    tuned: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TrialResult:
    """The outcome of one trial.

    Attributes:
        trial_id: the trial's id.
        state: COMPLETE, PRUNED or FAILED.
        score: best validation accuracy over the epochs that ran (None if none did).
        best_epoch: 1-based epoch of ``score``.
        history: per-epoch metrics in order.
        reason: why the trial failed or was stopped ("" when it completed).
        seconds: wall-clock time of the trial in the worker.
        fidelity: how it ran (see :func:`transfer_automl.space.fidelity`).
        artifact: path of the saved trainable weights of the best epoch, if any.
        extra: small JSON-serialisable facts (timings of feature extraction, ...).
    """

    trial_id: str
    state: TrialState
    score: float | None = None
    best_epoch: int | None = None
    history: tuple[EpochMetrics, ...] = ()
    reason: str = ""
    seconds: float = 0.0
    fidelity: str = ""
    artifact: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Observation:
    """One evaluated (or running) configuration.

    ``score`` is higher-is-better; ``None`` means the trial is still running or failed.
    """

    config: Mapping[str, Any]
    score: float | None


@dataclass(frozen=True)
class TrialContext:
    """Where a trial finds its inputs and puts its outputs; identical for every trial of a run.

    Attributes:
        manifest: path of the dataset manifest (JSON written by ``Dataset.save_manifest``).
        run_dir: directory for per-trial artifacts.
        feature_cache: directory of the shared backbone feature cache ("" disables it).
        backbone_cache: directory of converted backbones.
        threads: TensorFlow intra-op threads per trial (0 = TensorFlow's choice).
        cv_folds: cross-validation folds for head trials on small datasets (< 2: never).
        cv_max_images: training + validation images up to which trials on cached
            activations (fine-tuning) are cross-validated; their folds train one after another.
        cv_max_feature_images: the same for trials on cached pooled features, whose fold
            heads train together in one step (or are solved exactly), so a 5-fold score
            costs little more than one split and is worth having on larger datasets too.
        fold_seed: seed of the cross-validation folds, shared by every trial of a run so
            that all are scored on the same folds (None: each trial's own seed).
    """

    manifest: str
    run_dir: str
    feature_cache: str
    backbone_cache: str
    threads: int = 0
    cv_folds: int = 5
    cv_max_images: int = 1500
    cv_max_feature_images: int = 10000
    fold_seed: int | None = None
