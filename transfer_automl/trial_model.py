"""From a finished trial to a model: the one path that ``fit_auto``, ``restore`` and the
ablations take.

A trial leaves a configuration and a checkpoint (its best-epoch weights of the trainable
part); :func:`trial_model` rebuilds the Keras classifier from them, :func:`export_trial`
writes it as a self-contained SavedModel, :func:`split_accuracy` scores the classifier on a
split and :func:`split_report` the exported model (accuracy with its interval, per class,
confusion matrix), as a user would call it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transfer_automl.export import ExportedModel, save_classifier, save_ensemble
from transfer_automl.space import active_settings

EVAL_BATCH = 64


def trial_model(config: Mapping[str, Any], weights: str | os.PathLike, n_classes: int, *,
                backbone_cache: str | os.PathLike, backbones: dict | None = None):
    """The Keras classifier of a trial: its frozen backbone part and its trained weights.

    Args:
        config: the trial's configuration.
        weights: its checkpoint (``trials/<id>/weights.npz``).
        n_classes: classes of the dataset it was trained on.
        backbone_cache: directory of converted backbones.
        backbones: pristine backbones by name, shared by the frozen-backbone models built in
            one process (a model that fine-tunes blocks always gets its own).
    """
    from transfer_automl.training import trial_classifier

    return trial_classifier(dict(config), n_classes, str(weights),
                            {} if backbones is None else backbones, backbone_cache)


def export_trial(config: Mapping[str, Any], weights: str | os.PathLike,
                 class_names: Sequence[str], out_dir: str | os.PathLike, *,
                 backbone_cache: str | os.PathLike,
                 metadata: Mapping[str, Any]) -> ExportedModel:
    """Write a trial's model to ``out_dir`` (SavedModel + labels + metadata) and load it back.

    ``metadata`` is stored with the model; the configuration and class names are added.
    """
    model = trial_model(config, weights, len(class_names), backbone_cache=backbone_cache)
    info = {"config": active_settings(config), "class_names": list(class_names), **metadata}
    return ExportedModel(save_classifier(model, config["resolution"], Path(out_dir),
                                         class_names, info))


def export_ensemble(members: Sequence[tuple[Mapping[str, Any], str, float]],
                    class_names: Sequence[str], out_dir: str | os.PathLike, *,
                    backbone_cache: str | os.PathLike,
                    metadata: Mapping[str, Any]) -> ExportedModel:
    """Write an ensemble of ``(config, weights, weight)`` members as one SavedModel (members
    on one frozen backbone at one resolution share its forward pass) and load it back."""
    from transfer_automl.training import ensemble_parts

    parts = ensemble_parts(list(members), len(class_names), {}, backbone_cache)
    info = {"configs": [active_settings(c) for c, _, _ in members], "weights": [w for _, _, w in members],
            "class_names": list(class_names), **metadata}
    return ExportedModel(save_ensemble(parts, Path(out_dir), class_names, info))


def split_accuracy(model, split, resolution: int) -> float | None:
    """Accuracy of a Keras classifier from :func:`trial_model` on a dataset split, fed at
    ``resolution`` by the training input pipeline (None for an empty split). For an exported
    model, :func:`split_report` scores it through its serving signature."""
    import numpy as np

    from transfer_automl.training import image_dataset

    if not len(split):
        return None
    hits = 0
    for images, labels in image_dataset(split.paths, split.labels, resolution, EVAL_BATCH):
        hits += int(np.sum(np.argmax(model(images, training=False), -1) == labels.numpy()))
    return hits / len(split)


@dataclass(frozen=True)
class SplitReport:
    """How an exported model did on a split (the held-out test split, for a result).

    Attributes:
        accuracy: share of test images classified right.
        n: test images.
        interval: 95% Wilson interval of the accuracy (small test splits are imprecise).
        per_class: accuracy and count of each class, by class name.
        confusion: ``confusion[i][j]`` test images of class ``i`` predicted as class ``j``.
    """

    accuracy: float
    n: int
    interval: tuple[float, float]
    per_class: dict[str, tuple[float, int]]
    confusion: list[list[int]]

    #: below this many test images the accuracy is a rough figure, and says so
    FEW_IMAGES = 30

    def summary(self) -> str:
        low, high = self.interval
        text = (f"test accuracy {self.accuracy:.4f} on {self.n} images (95% interval "
                f"{low:.3f}-{high:.3f})")
        if self.n < self.FEW_IMAGES:
            text += f"; fewer than {self.FEW_IMAGES} test images: a rough figure"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "n": self.n, "interval": list(self.interval),
                "per_class": {k: {"accuracy": a, "n": n} for k, (a, n) in self.per_class.items()},
                "confusion": self.confusion}


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``hits / n``."""
    if n == 0:
        return (0.0, 1.0)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # at p = 0 or 1 one end is exactly p (rounding would put it just inside)
    return (0.0 if hits == 0 else max(0.0, centre - half),
            1.0 if hits == n else min(1.0, centre + half))


def split_report(model: ExportedModel, split, class_names: Sequence[str]) -> "SplitReport | None":
    """Accuracy with its interval, per-class accuracy and the confusion matrix of an exported
    model on ``split`` (None for an empty split), predicted as a user would predict."""
    import numpy as np

    if not len(split):
        return None
    truth = np.asarray(split.labels)
    predicted = model.predict_proba(list(split.paths)).argmax(axis=1)
    k = len(class_names)
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (truth, predicted), 1)
    hits = int(np.trace(confusion))
    per_class = {name: (float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum()
                        else float("nan"), int(confusion[i].sum()))
                 for i, name in enumerate(class_names)}
    return SplitReport(hits / len(truth), len(truth), wilson_interval(hits, len(truth)),
                      per_class, confusion.tolist())
