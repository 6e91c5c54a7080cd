"""The image resize shared by training, feature extraction and exported models.

Kept apart from ``training`` so that a loaded model needs nothing of the training code.
"""

from __future__ import annotations

import tensorflow as tf


def resize(image: tf.Tensor, resolution: int) -> tf.Tensor:
    """Bilinear, antialiased resize to ``resolution`` x ``resolution``, rounded to uint8."""
    resized = tf.image.resize(image, (resolution, resolution), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
