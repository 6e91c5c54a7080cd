"""The executor interface: run trial specs somewhere, stream their events back."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from transfer_automl.trial import EpochMetrics, TrialResult, TrialSpec

Event = EpochMetrics | TrialResult


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


class Executor(abc.ABC):
    """Runs trials asynchronously; the driver polls for their events.

    Implementations never import samplers or pruners: they only move specs out and
    events back, and honour stop and kill requests.
    """

    @property
    @abc.abstractmethod
    def n_slots(self) -> int:
        """How many trials can run at once."""

    @abc.abstractmethod
    def start(self, context: TrialContext) -> None:
        """Prepare workers for a run (may start processes)."""

    @abc.abstractmethod
    def submit(self, spec: TrialSpec) -> None:
        """Start ``spec`` on a free slot; the caller never submits more than ``n_slots``."""

    @abc.abstractmethod
    def poll(self, timeout: float) -> list[Event]:
        """Return the events that arrived, waiting at most ``timeout`` seconds for the first."""

    @abc.abstractmethod
    def stop(self, trial_id: str, reason: str) -> None:
        """Ask a running trial to stop after its current epoch (it reports a PRUNED result)."""

    @abc.abstractmethod
    def kill(self, trial_id: str, reason: str) -> None:
        """End a running trial now; a FAILED result with ``reason`` is reported."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release workers. Idempotent."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
