"""Wrap a split model into trackable objects in the hub reusable-SavedModel convention.

``hub.KerasLayer`` accepts any object with ``__call__`` plus the lists ``variables``,
``trainable_variables`` and ``regularization_losses``. ``tf.Module`` exposes ``variables``
as a read-only property (not saved), so the exported objects are plain checkpointable
containers whose attributes are saved with the model.
"""

from __future__ import annotations

import tensorflow as tf

from pretrained._efficientnet_lite import EfficientNetLite


def reusable(fn, variables: list[tf.Variable], input_channels: int) -> tf.train.Checkpoint:
    """Return a saveable object whose ``__call__`` runs ``fn`` on ``[B, H, W, C]`` float32.

    Args:
        fn: Python callable from an NHWC tensor to a tensor.
        variables: Every variable ``fn`` reads; all of them are trainable.
        input_channels: ``C`` of the input signature.
    """
    obj = tf.train.Checkpoint()
    signature = [tf.TensorSpec([None, None, None, input_channels], tf.float32, name="images")]
    obj.__call__ = tf.function(fn, input_signature=signature)
    obj.variables = list(variables)
    obj.trainable_variables = list(variables)
    obj.regularization_losses = []
    return obj


def export_root(model: EfficientNetLite) -> tf.train.Checkpoint:
    """Return the root object to pass to ``tf.saved_model.save``.

    The root maps scaled RGB to the feature map; ``root.parts[i]`` runs part ``i`` alone;
    ``root.classify`` maps a feature map to ImageNet logits.
    """
    parts = [
        reusable(part.__call__, list(part.trainable_variables), channels)
        for part, channels in zip(model.parts, model.part_channels)
    ]
    feature_vars = [v for part in model.parts for v in part.trainable_variables]
    root = reusable(model.__call__, feature_vars, 3)
    root.parts = parts
    feature_spec = [tf.TensorSpec([None, None, None, model.part_channels[-1]], tf.float32)]
    root.classify = tf.function(model.classify, input_signature=feature_spec)
    root.classifier_variables = [model.fc_kernel, model.fc_bias]
    return root
