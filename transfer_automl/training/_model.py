"""Model parts built from a configuration: pooling, head, optimizers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tf_keras as keras

from transfer_automl.space import is_active


def pooling_layer(pooling: str) -> keras.layers.Layer:
    """Global pooling of a feature map; ``avgmax`` concatenates [avg, max] in that order."""
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="pool_avg")
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="pool_max")
    if pooling == "avgmax":
        return _AvgMaxPooling(name="pool_avgmax")
    raise ValueError(f"pooling: expected avg, max or avgmax, got {pooling!r}")


class _AvgMaxPooling(keras.layers.Layer):
    def call(self, x):
        import tensorflow as tf

        return tf.concat([tf.reduce_mean(x, axis=(1, 2)), tf.reduce_max(x, axis=(1, 2))], axis=-1)


def build_head(config: Mapping[str, Any], n_features: int, n_classes: int) -> keras.Model:
    """The last stage: 0-2 dense blocks (dense, batch-norm, activation, dropout), then logits.

    With ``optimizer == "adam"`` weight decay is applied as an L2 penalty on kernels (coupled);
    ``adamw`` and ``sgd`` use decoupled decay in the optimizer instead.
    """
    l2 = keras.regularizers.L2(config["weight_decay"]) if config["optimizer"] == "adam" else None
    inputs = keras.Input((n_features,), name="features")
    x = inputs
    for i in (1, 2):
        if not is_active(f"units_{i}", config):
            continue
        x = keras.layers.Dense(config[f"units_{i}"], kernel_regularizer=l2, name=f"dense_{i}")(x)
        if config[f"batchnorm_{i}"]:
            x = keras.layers.BatchNormalization(name=f"bn_{i}")(x)
        x = keras.layers.Activation(config[f"activation_{i}"], name=f"act_{i}")(x)
        if config[f"dropout_{i}"] > 0:
            x = keras.layers.Dropout(config[f"dropout_{i}"], name=f"dropout_{i}")(x)
    if config["head_dropout"] > 0:
        x = keras.layers.Dropout(config["head_dropout"], name="head_dropout")(x)
    logits = keras.layers.Dense(n_classes, kernel_regularizer=l2, name="logits")(x)
    return keras.Model(inputs, logits, name="head")


def build_optimizer(config: Mapping[str, Any], lr_scale: float = 1.0,
                    decay_steps: int | None = None) -> keras.optimizers.Optimizer:
    """The optimizer for the head (``lr_scale=1``) or the unfrozen blocks (the multiplier);
    with ``decay_steps`` its learning rate follows a cosine from its value to 0 over them."""
    lr = config["learning_rate"] * lr_scale
    if decay_steps:
        lr = keras.optimizers.schedules.CosineDecay(lr, decay_steps)
    decay = config["weight_decay"]
    name = config["optimizer"]
    if name == "adam":
        return keras.optimizers.Adam(lr)
    if name == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=decay)
    if name == "sgd":
        return keras.optimizers.SGD(lr, momentum=config["momentum"], nesterov=True,
                                    weight_decay=decay)
    raise ValueError(f"optimizer: expected adam, adamw or sgd, got {name!r}")
