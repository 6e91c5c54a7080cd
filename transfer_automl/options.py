"""The options of a search, grouped by what they are about.

``fit_auto`` takes the handful of arguments nearly every call sets (dataset, budgets, executor,
knowledge base, seed, cache) and three frozen option objects for the rest. The saved part of
the options is what a run writes to its ``run.json`` and what :func:`~transfer_automl.resume`
reads back, so a resumed run continues with exactly the options it began with.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from transfer_automl.errors import InputError
from transfer_automl.space import SearchSpace


class WarmStartMode(str, enum.Enum):
    """How the knowledge base warm-starts a search.

    ``AUTO`` resolves, once the dataset is matched, to ``POINTS_HISTORY`` (prior points and
    the neighbours' trials) or, for a dataset far from everything known, to ``POINTS``.
    """

    AUTO = "auto"
    NONE = "none"
    POINTS = "points"
    HISTORY = "history"
    POINTS_HISTORY = "points+history"

    @classmethod
    def parse(cls, value: "str | WarmStartMode") -> "WarmStartMode":
        try:
            return cls(value)
        except ValueError:
            choices = [m.value for m in cls if m is not cls.POINTS_HISTORY]
            raise InputError(f"warm_start: expected one of {choices}, got {value!r}") from None

    @property
    def uses_points(self) -> bool:
        return self in (WarmStartMode.POINTS, WarmStartMode.POINTS_HISTORY)

    @property
    def uses_history(self) -> bool:
        return self in (WarmStartMode.HISTORY, WarmStartMode.POINTS_HISTORY)


@dataclass(frozen=True)
class DataOptions:
    """How a dataset without its own split is divided.

    Attributes:
        val_fraction: share of images for validation when the dataset has no given split.
        test_fraction: share of images held out for the test score.

    Both are checked where the dataset is loaded, with the dataset's own constraints.
    """

    val_fraction: float = 0.15
    test_fraction: float = 0.15


@dataclass(frozen=True)
class SearchOptions:
    """What the search tries and how it scores and stops trials.

    Attributes:
        warm_start: a :class:`WarmStartMode` or its value: ``"auto"`` (prior points and prior
            trials unless the dataset is far from everything known), ``"none"``,
            ``"points"`` or ``"history"``.
        backbones: catalogue names the search may choose from (default: all installed ones,
            EfficientNet-Lite0 first).
        space: a custom search space (default: ``default_space`` over ``backbones``).
        n_parallel: concurrent trials of the local executor.
        trial_timeout_s: kill a single trial after this many seconds.
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
            cross-validation over training + validation images; 0 or 1 always uses the
            validation split.
        ensemble_size: after the search, average up to this many picks (with repeats) of
            the best trials, chosen greedily on their held-out predictions, and export the
            average when it beats the best single trial there; 0 or 1 exports the best
            trial alone (``FitResult.export(dir, model="best")`` writes it in any case).
        max_passes: backbone forward passes per image the exported model may run: it
            bounds the ensemble (members on one frozen backbone at one resolution share a
            pass; a member that fine-tuned blocks needs its own) and the fused-feature
            choices of the space (a head on fused features needs one per backbone), so the
            exported model's latency is about this many times a single model's at most.
    """

    warm_start: WarmStartMode | str = WarmStartMode.AUTO
    backbones: Sequence[str] | None = None
    space: SearchSpace | None = None
    n_parallel: int = 1
    trial_timeout_s: float | None = None
    multi_fidelity: bool = True
    feature_cache: bool = True
    early_stopping: bool = True
    pruner: Any = None
    refit: bool = True
    cv_folds: int = 5
    ensemble_size: int = 25
    max_passes: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "warm_start", WarmStartMode.parse(self.warm_start))
        if self.backbones is not None:
            object.__setattr__(self, "backbones", tuple(self.backbones))
        if not isinstance(self.n_parallel, int) or self.n_parallel < 1:
            raise InputError(f"n_parallel: expected an integer >= 1, got {self.n_parallel!r}")
        if self.trial_timeout_s is not None and not self.trial_timeout_s > 0:
            raise InputError(f"trial_timeout_s: expected seconds > 0 or None, "
                             f"got {self.trial_timeout_s!r}")
        if not isinstance(self.cv_folds, int) or self.cv_folds < 0:
            raise InputError(f"cv_folds: expected an integer >= 0, got {self.cv_folds!r}")
        for name, least in (("ensemble_size", 0), ("max_passes", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise InputError(f"{name}: expected an integer >= {least}, got {value!r}")


@dataclass(frozen=True)
class TrackingOptions:
    """Where a search is written and who follows it.

    Attributes:
        runs_dir: where runs are written (default: ``cache_dir/runs``).
        keep_checkpoints: after the search, the weights of the best this many scored trials
            are kept (and of every trial another descends from), the rest deleted; None keeps
            all. Journals and knowledge-base records stay complete.
        mlflow_uri: an MLflow tracking URI: mirror the search (one run, a nested run per
            trial) into MLflow. Needs ``mlflow`` or ``mlflow-skinny`` installed.
        mlflow_experiment: the MLflow experiment's name.
        trackers: objects implementing :class:`~transfer_automl.tracking.Tracker`, or plain
            callables given each :class:`~transfer_automl.search.SearchEvent`.
    """

    runs_dir: str | os.PathLike | None = None
    keep_checkpoints: int | None = 20
    mlflow_uri: str | None = None
    mlflow_experiment: str = "transfer-automl"
    trackers: Sequence[Any] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        keep = self.keep_checkpoints
        if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool) or keep < 1):
            raise InputError(f"keep_checkpoints: expected an integer >= 1 or None, got {keep!r}")
        object.__setattr__(self, "trackers", tuple(self.trackers))
        for tracker in self.trackers:
            if not callable(tracker) and not hasattr(tracker, "on_event"):
                raise InputError(f"trackers: expected Tracker objects or callables, "
                                 f"got {tracker!r}")


#: Options fields that are objects, not settings: a run does not save them.
_UNSAVED = {"space", "pruner"}


def saved(options: DataOptions | SearchOptions) -> dict[str, Any]:
    """The JSON-serialisable fields of ``options``, as a run saves them."""
    out = {}
    for f in fields(options):
        if f.name in _UNSAVED:
            continue
        value = getattr(options, f.name)
        out[f.name] = value.value if isinstance(value, enum.Enum) else (
            list(value) if isinstance(value, tuple) else value)
    return out


def load(kind: type, data: Mapping[str, Any], **objects: Any):
    """Options of class ``kind`` from what :func:`saved` wrote (unknown keys ignored)."""
    names = {f.name for f in fields(kind)}
    return kind(**{k: v for k, v in data.items() if k in names}, **objects)
