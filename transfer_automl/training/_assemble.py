"""Put a backbone and a head together the same way for training, caching and export."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf
import tf_keras as keras

from transfer_automl.space import fused_backbones
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
                    boundary_shape: tuple[int, ...] | None,
                    width: int | None = None) -> tuple[keras.Model, list]:
    """The part of the model a trial trains, and the variables of the unfrozen blocks.

    With no unfrozen blocks it is the head alone (input: pooled features, ``width`` of them
    when they are not ``backbone``'s alone, e.g. fused features). Otherwise it maps
    activations at the freeze boundary (``boundary_shape``, without batch) through the top
    blocks, pooling and head.
    """
    k = config["unfrozen_blocks"]
    head = build_head(config, width or pooled_width(backbone, config["pooling"]), n_classes)
    if k == 0:
        return head, []
    _, top = backbone.split(k)
    inputs = keras.Input(boundary_shape, name="boundary")
    x = top(inputs)
    if not backbone.pooled_output:
        x = pooling_layer(config["pooling"])(x)
    model = keras.Model(inputs, head(x), name="trainable")
    return model, list(top.trainable_variables)


def frozen_part(backbone, config: Mapping[str, Any], name: str = "frozen") -> keras.Model:
    """Scaled-to-[0, 255] images -> what the trainable part takes (pooled for k == 0)."""
    k = config["unfrozen_blocks"]
    bottom, _ = backbone.split(k)
    res = config["resolution"]
    inputs = keras.Input((res, res, 3), name="images")
    x = bottom(keras.layers.Lambda(backbone.preprocess, name="preprocess")(inputs))
    if k == 0 and not backbone.pooled_output:
        x = _AvgMax(name="pool_cache")(x)
    return keras.Model(inputs, x, name=name)


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

    if fused_backbones(config):
        return fused_classifier(config, n_classes, weights_path, backbones, cache_dir)
    name = config["backbone"]
    if config["unfrozen_blocks"]:
        backbone = load_backbone(name, cache_dir=cache_dir)
    else:
        if name not in backbones:
            backbones[name] = load_backbone(name, cache_dir=cache_dir)
        backbone = backbones[name]
    return build_classifier(backbone, config, n_classes, weights_path)


def fused_classifier(config: Mapping[str, Any], n_classes: int, weights_path: str,
                     backbones: dict, cache_dir) -> keras.Model:
    """The model of a trial on fused features: each backbone's frozen, pooled features at the
    trial's resolution, side by side, then the trained head."""
    import numpy as np
    from pretrained import load_backbone

    res = config["resolution"]
    inputs = keras.Input((res, res, 3), name="images")
    features = []
    for i, name in enumerate(fused_backbones(config)):
        if name not in backbones:
            backbones[name] = load_backbone(name, cache_dir=cache_dir)
        backbone = backbones[name]
        x = frozen_part(backbone, config, name=f"frozen_{i}")(inputs)
        if not backbone.pooled_output:
            x = keras.layers.Lambda(lambda f, b=backbone: select_pooled(f, b, config["pooling"]),
                                    name=f"select_pooling_{i}")(x)
        features.append(x)
    x = keras.layers.Concatenate(name="fuse")(features)
    head = build_head(config, int(x.shape[-1]), n_classes)
    with np.load(weights_path) as saved:
        head.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
    return keras.Model(inputs, head(x), name="classifier")


class WeightedPart(tf.Module):
    """Members of an ensemble that share one backbone forward pass.

    Images in [0, 255] at ``resolution`` -> the weighted sum of the members' class
    probabilities. ``trunk`` runs once per image; each head then reads its pooling of the
    trunk's output. A member that fine-tuned blocks is a part of its own (its trunk is its
    whole classifier and its head the identity).
    """

    def __init__(self, resolution: int, trunk, heads: list, poolings: list, weights: list,
                 backbone=None) -> None:
        super().__init__()
        self.resolution = resolution
        self.trunk, self.heads = trunk, heads
        self._poolings, self._weights, self._backbone = list(poolings), list(weights), backbone

    def __call__(self, images):
        x = self.trunk(images, training=False)
        outs = []
        for head, pooling, weight in zip(self.heads, self._poolings, self._weights):
            features = x if pooling is None else select_pooled(x, self._backbone, pooling)
            logits = features if head is None else head(features, training=False)
            outs.append(tf.nn.softmax(logits, axis=-1) * weight)
        return tf.add_n(outs)


def ensemble_parts(members: list[tuple[Mapping[str, Any], str, float]], n_classes: int,
                   backbones: dict, cache_dir) -> list[WeightedPart]:
    """The parts of an ensemble of ``(config, weights_path, weight)`` members: one per frozen
    backbone and resolution (its members' heads share the forward pass), one per member
    that fine-tuned blocks."""
    import numpy as np
    from pretrained import load_backbone

    groups: dict[tuple, list] = {}
    for i, (config, path, weight) in enumerate(members):
        key = ((config["backbone"], config["resolution"])
               if config["unfrozen_blocks"] == 0 and not fused_backbones(config)
               else ("own", i))
        groups.setdefault(key, []).append((config, path, weight))
    parts = []
    for key, group in groups.items():
        config = group[0][0]
        if key[0] == "own":  # fine-tuned blocks or fused features: a classifier of its own
            model = trial_classifier(config, n_classes, group[0][1], backbones, cache_dir)
            parts.append(WeightedPart(config["resolution"], model, [None], [None],
                                      [group[0][2]]))
            continue
        name = config["backbone"]
        if name not in backbones:
            backbones[name] = load_backbone(name, cache_dir=cache_dir)
        backbone = backbones[name]
        heads = []
        for member_config, path, _ in group:
            head, _ = build_trainable(backbone, member_config, n_classes, None)
            with np.load(path) as saved:
                head.set_weights([saved[f"arr_{i}"] for i in range(len(saved.files))])
            heads.append(head)
        parts.append(WeightedPart(
            config["resolution"], frozen_part(backbone, config), heads,
            [None if backbone.pooled_output else c["pooling"] for c, _, _ in group],
            [w for _, _, w in group], backbone))
    return parts
