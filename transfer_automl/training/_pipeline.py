"""tf.data input pipelines: parallel decode, resize, optional augmentation, prefetch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from transfer_automl.preprocessing import resize

AUTOTUNE = tf.data.AUTOTUNE


def decode_and_resize(path: tf.Tensor, resolution: int) -> tf.Tensor:
    """Read one image file and resize it to ``resolution`` x ``resolution`` (uint8 RGB)."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return resize(image, resolution)


def augment(image: tf.Tensor, strength: float, seed: tf.Tensor) -> tf.Tensor:
    """Random crop-and-zoom, horizontal flip, brightness and contrast, scaled by ``strength``.

    ``image`` is float32 in [0, 255]; the result has the same shape and range.
    """
    size = tf.shape(image)[0]
    seeds = tf.random.experimental.stateless_split(seed, 5)
    image = tf.image.stateless_random_flip_left_right(image, seeds[0])
    scale = 1.0 - 0.3 * strength * tf.random.stateless_uniform([], seeds[1])
    crop = tf.cast(tf.cast(size, tf.float32) * scale, tf.int32)
    image = tf.image.stateless_random_crop(image, [crop, crop, 3], seeds[2])
    image = tf.image.resize(image, (size, size), method="bilinear")
    image = tf.image.stateless_random_brightness(image, 0.2 * 255 * strength, seeds[3])
    image = tf.image.stateless_random_contrast(image, 1 - 0.3 * strength, 1 + 0.3 * strength, seeds[4])
    return tf.clip_by_value(image, 0.0, 255.0)


def image_dataset(paths: Sequence[str], labels: np.ndarray | None, resolution: int,
                  batch_size: int, *, shuffle: bool = False, augment_strength: float = 0.0,
                  seed: int = 0, cache: bool = False) -> tf.data.Dataset:
    """Batches ``(images, labels)``: float32 images in [0, 255], int64 labels (-1 if none given).

    Args:
        paths: image files decodable by ``tf.io.decode_image``.
        labels: integer labels aligned with ``paths``, or None for inference.
        resolution: square side length after resizing.
        batch_size: batch size.
        shuffle: reshuffle every epoch (seeded).
        augment_strength: 0 disables augmentation; 1 is the strongest setting.
        seed: seed for shuffling and augmentation.
        cache: keep decoded, resized images in memory across epochs (as uint8).
    """
    labels = np.full(len(paths), -1, np.int64) if labels is None else np.asarray(labels, np.int64)
    ds = tf.data.Dataset.from_tensor_slices((list(paths), labels))
    ds = ds.map(lambda p, y: (decode_and_resize(p, resolution), y),
                num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y))
    if augment_strength > 0:
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(
            lambda item, s: (augment(item[0], augment_strength, s), item[1]),
            num_parallel_calls=AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(AUTOTUNE)
