"""From a finished trial to a model: the one path that ``fit_auto``, ``restore`` and the
ablations take.

A trial leaves a configuration and a checkpoint (its best-epoch weights of the trainable
part); :func:`trial_model` rebuilds the Keras classifier from them, :func:`export_trial`
writes it as a self-contained SavedModel, and :func:`split_accuracy` scores either on a split.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transfer_automl.export import ExportedModel, save_classifier

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
    info = {"config": dict(config), "class_names": list(class_names), **metadata}
    return ExportedModel(save_classifier(model, config["resolution"], Path(out_dir),
                                         class_names, info))


def split_accuracy(model, split, resolution: int | None = None) -> float | None:
    """Accuracy of ``model`` on a dataset split (None for an empty split).

    ``model`` is an :class:`~transfer_automl.export.ExportedModel` (scored exactly as a user
    would call it, through its serving signature) or a Keras classifier from
    :func:`trial_model`, fed at ``resolution`` by the training input pipeline.
    """
    import numpy as np

    if not len(split):
        return None
    if isinstance(model, ExportedModel):
        predicted = model.predict_proba(list(split.paths)).argmax(axis=1)
        return float((predicted == np.asarray(split.labels)).mean())
    from transfer_automl.training import image_dataset

    if resolution is None:
        raise ValueError("split_accuracy: a Keras model needs the input resolution")
    hits = 0
    for images, labels in image_dataset(split.paths, split.labels, resolution, EVAL_BATCH):
        hits += int(np.sum(np.argmax(model(images, training=False), -1) == labels.numpy()))
    return hits / len(split)
