"""Put a backbone and a head together the same way for training, caching and export."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf
import tf_keras as keras

from transfer_automl.training._model import build_head, pooling_layer


def pooled_width(backbone, pooling: str) -> int:
    """Width of the pooled feature vector the head receives."""
    channels = backbone.spec.feature_size
    return channels * 2 if pooling == "avgmax" and not backbone.pooled_output else channels


def select_pooled(features: "np.ndarray", backbone, pooling: str):  # noqa: F821
    """Pick the pooling the config asks for from cached ``[avg | max]`` features."""
    if backbone.pooled_output:
        return features
    channels = backbone.spec.feature_size
    if pooling == "avg":
        return features[:, :channels]
    if pooling == "max":
        return features[:, channels:]
    return features


def build_trainable(backbone, config: Mapping[str, Any], n_classes: int,
                    boundary_shape: tuple[int, ...] | None) -> tuple[keras.Model, list]:
    """The part of the model a trial trains, and the variables of the unfrozen blocks.

    With no unfrozen blocks it is the head alone (input: pooled features). Otherwise it maps
    activations at the freeze boundary (``boundary_shape``, without batch) through the top
    blocks, pooling and head.
    """
    k = config["unfrozen_blocks"]
    head = build_head(config, pooled_width(backbone, config["pooling"]), n_classes)
    if k == 0:
        return head, []
    _, top = backbone.split(k)
    inputs = keras.Input(boundary_shape, name="boundary")
    x = top(inputs)
    if not backbone.pooled_output:
        x = pooling_layer(config["pooling"])(x)
    model = keras.Model(inputs, head(x), name="trainable")
    return model, list(top.trainable_variables)


def frozen_part(backbone, config: Mapping[str, Any]) -> keras.Model:
    """Scaled-to-[0, 255] images -> what the trainable part takes (pooled for k == 0)."""
    k = config["unfrozen_blocks"]
    bottom, _ = backbone.split(k)
    res = config["resolution"]
    inputs = keras.Input((res, res, 3), name="images")
    x = bottom(keras.layers.Lambda(backbone.preprocess, name="preprocess")(inputs))
    if k == 0 and not backbone.pooled_output:
        x = _AvgMax(name="pool_cache")(x)
    return keras.Model(inputs, x, name="frozen")


class _AvgMax(keras.layers.Layer):
    """[avg | max] pooling, so one cached array serves every pooling choice."""

    def call(self, x):
        return tf.concat([tf.reduce_mean(x, axis=(1, 2)), tf.reduce_max(x, axis=(1, 2))], axis=-1)


def assemble(backbone, config: Mapping[str, Any], frozen: keras.Model,
             trainable: keras.Model) -> keras.Model:
    """Images in [0, 255] -> logits: the frozen part, then the trained part."""
    res = config["resolution"]
    inputs = keras.Input((res, res, 3), name="images")
    x = frozen(inputs)
    if config["unfrozen_blocks"] == 0 and not backbone.pooled_output:
        x = keras.layers.Lambda(lambda f: select_pooled(f, backbone, config["pooling"]),
                                name="select_pooling")(x)
    return keras.Model(inputs, trainable(x), name="classifier")


def build_classifier(backbone, config: Mapping[str, Any], n_classes: int,
                     weights_path: str) -> keras.Model:
    """The full model of a finished trial: its frozen part and its saved trained weights.

    A trial that unfroze blocks writes their trained weights into ``backbone``'s own
    variables: that backbone then belongs to this model. To build several models in one
    process, use :func:`trial_classifier`.
    """
    import numpy as np

    frozen = frozen_part(backbone, config)
    boundary = tuple(frozen.output_shape[1:]) if config["unfrozen_blocks"] else None
    trainable, _ = build_trainable(backbone, config, n_classes, boundary)
    with np.load(weights_path) as saved:
        trainable.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
    return assemble(backbone, config, frozen, trainable)


def trial_classifier(config: Mapping[str, Any], n_classes: int, weights_path: str,
                     backbones: dict, cache_dir) -> keras.Model:
    """:func:`build_classifier` for one of many trials scored in one process.

    Models with a frozen backbone share the pristine backbone kept in ``backbones`` (by
    name); a model that unfreezes blocks gets a backbone of its own, since its trained blocks
    overwrite the loaded ones (sharing it once made every later model in the process run on
    another trial's fine-tuned blocks).
    """
    from pretrained import load_backbone

    name = config["backbone"]
    if config["unfrozen_blocks"]:
        backbone = load_backbone(name, cache_dir=cache_dir)
    else:
        if name not in backbones:
            backbones[name] = load_backbone(name, cache_dir=cache_dir)
        backbone = backbones[name]
    return build_classifier(backbone, config, n_classes, weights_path)
