"""Exported models: a SavedModel with preprocessing inside, plus labels.json and metadata.json.

``load_model`` needs only TensorFlow, NumPy and Pillow: no training code, no backbone cache.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transfer_automl.errors import InputError

LABELS = "labels.json"
METADATA = "metadata.json"
PREDICT_BATCH = 32


def save_classifier(model, resolution: int, out_dir: str | os.PathLike,
                    class_names: Sequence[str], metadata: dict[str, Any]) -> Path:
    """Write ``model`` (images in [0, 255] at ``resolution`` -> logits) as a SavedModel.

    The serving signature takes float32 images ``[batch, height, width, 3]`` in [0, 255] of
    any size, resizes them exactly as training did and returns class probabilities. It calls
    ``at_resolution`` (saved with the model, not a signature): uint8 images already at
    ``resolution`` -> probabilities, the fixed-size graph ``export_tflite`` converts.
    """
    import tensorflow as tf

    from transfer_automl.preprocessing import resize

    class Classifier(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.resolution = tf.constant(resolution)

        @tf.function(input_signature=[
            tf.TensorSpec([None, resolution, resolution, 3], tf.uint8)])
        def at_resolution(self, images):
            return tf.nn.softmax(self.model(tf.cast(images, tf.float32), training=False), axis=-1)

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def serve(self, images):
            x = tf.map_fn(lambda im: resize(im, resolution), images, fn_output_signature=tf.uint8)
            return {"probabilities": self.at_resolution(x)}

    return _write(Classifier(), out_dir, class_names, {**metadata, "resolution": resolution})


def save_ensemble(parts: Sequence, out_dir: str | os.PathLike, class_names: Sequence[str],
                  metadata: dict[str, Any]) -> Path:
    """Write an ensemble as one SavedModel with the same serving signature.

    ``parts`` are callables with a ``resolution``: images in [0, 255] at that resolution ->
    weighted class probabilities (``training.WeightedPart``); the signature resizes the
    images once per resolution, runs every part and adds their outputs. The metadata's
    ``resolution`` is the parts' common one, or None when they differ (the loader then
    hands images over at their own size). Its ``at_resolution`` takes uint8 images at the
    largest resolution and resizes them to the others with :func:`_builtin_resize`.
    """
    import tensorflow as tf

    from transfer_automl.preprocessing import resize

    resolutions = sorted({int(p.resolution) for p in parts})
    top = resolutions[-1]

    class Ensemble(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.parts = list(parts)

        @tf.function(input_signature=[tf.TensorSpec([None, r, r, 3], tf.uint8)
                                      for r in resolutions])
        def score(self, *images):
            resized = {r: tf.cast(x, tf.float32) for r, x in zip(resolutions, images)}
            return tf.add_n([p(resized[int(p.resolution)]) for p in self.parts])

        @tf.function(input_signature=[tf.TensorSpec([None, top, top, 3], tf.uint8)])
        def at_resolution(self, images):
            return self.score(*[images if r == top else _builtin_resize(images, r)
                                for r in resolutions])

        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        def serve(self, images):
            return {"probabilities": self.score(*[
                tf.map_fn(lambda im, r=r: resize(im, r), images, fn_output_signature=tf.uint8)
                for r in resolutions])}

    common = resolutions[0] if len(resolutions) == 1 else None
    return _write(Ensemble(), out_dir, class_names, {**metadata, "resolution": common})


def _builtin_resize(images, resolution: int):
    """uint8 images -> ``resolution``, bilinear without antialiasing: an op TFLite has
    built in (the antialiased resize of training is not), for the smaller members of an
    ensemble inside its ``at_resolution`` graph."""
    import tensorflow as tf

    x = tf.image.resize(tf.cast(images, tf.float32), (resolution, resolution), method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8)


def _write(module, out_dir, class_names: Sequence[str], metadata: dict[str, Any]) -> Path:
    import tensorflow as tf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tf.saved_model.save(module, str(out), signatures={"serving_default": module.serve})
    (out / LABELS).write_text(json.dumps(list(class_names), indent=1))
    (out / METADATA).write_text(json.dumps(metadata, indent=1, default=str))
    return out


class ExportedModel:
    """A classifier loaded from an export directory.

    Args:
        path: a directory written by ``FitResult.export`` (or ``save_classifier``).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        path = Path(path)
        if not (path / LABELS).is_file() or not (path / "saved_model.pb").is_file():
            raise InputError(f"{path}: not an exported model (expected saved_model.pb and "
                             f"{LABELS}); export one with FitResult.export(dir)")
        from transfer_automl import quiet

        tf = quiet.tensorflow()

        self.path = path
        self.class_names: list[str] = json.loads((path / LABELS).read_text())
        self.metadata: dict[str, Any] = json.loads((path / METADATA).read_text())
        # None for an ensemble whose members read different resolutions
        res = self.metadata.get("resolution")
        self.resolution = int(res) if res is not None else None
        self._serve = tf.saved_model.load(str(path)).signatures["serving_default"]

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities ``[n, n_classes]`` for image paths or an image array batch."""
        import tensorflow as tf

        from transfer_automl.preprocessing import resize

        images = _as_images(x)
        if self.resolution is None:  # batches of one size; the model resizes per member
            return self._by_size(images)
        out = []
        for i in range(0, len(images), PREDICT_BATCH):
            batch = [resize(tf.constant(im), self.resolution) for im in images[i:i + PREDICT_BATCH]]
            stacked = tf.cast(tf.stack(batch), tf.float32)
            out.append(self._serve(images=stacked)["probabilities"].numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)

    def _by_size(self, images: list[np.ndarray]) -> np.ndarray:
        import tensorflow as tf

        out = np.zeros((len(images), len(self.class_names)), np.float32)
        by_shape: dict[tuple, list[int]] = {}
        for i, im in enumerate(images):
            by_shape.setdefault(im.shape, []).append(i)
        for index in by_shape.values():
            for j in range(0, len(index), PREDICT_BATCH):
                chunk = index[j:j + PREDICT_BATCH]
                batch = tf.constant(np.stack([images[i] for i in chunk]), tf.float32)
                out[chunk] = self._serve(images=batch)["probabilities"].numpy()
        return out

    def record_metadata(self, **values: Any) -> None:
        """Add ``values`` to the model's ``metadata.json`` (e.g. its test scores)."""
        self.metadata.update(values)
        (self.path / METADATA).write_text(json.dumps(self.metadata, indent=1, default=str))

    def predict(self, x) -> list[str]:
        """Class names for image paths (one path or a list) or an image array batch."""
        return [self.class_names[i] for i in self.predict_proba(x).argmax(axis=1)]


def load_model(path: str | os.PathLike) -> ExportedModel:
    """Load a model written by ``FitResult.export(dir)``."""
    return ExportedModel(path)


def _as_images(x) -> list[np.ndarray]:
    """Normalise prediction input to a list of ``(H, W, 3)`` arrays in [0, 255]."""
    from transfer_automl.data import read_image

    if isinstance(x, (str, os.PathLike)):
        x = [x]
    if isinstance(x, np.ndarray):
        arr = x[None] if x.ndim in (2, 3) and (x.ndim == 2 or x.shape[-1] in (1, 3)) else x
        if arr.ndim == 3:
            arr = arr[..., None]
        if arr.ndim != 4 or arr.shape[-1] not in (1, 3):
            raise InputError(f"x: expected images shaped (n, height, width, 3), got {x.shape}")
        floating = np.issubdtype(arr.dtype, np.floating)
        arr = arr.astype(np.float32)
        if floating and arr.max(initial=0) <= 1.0:  # floats in [0, 1] by convention
            arr = arr * 255.0
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        return list(arr)
    items = list(x)
    if not all(isinstance(p, (str, os.PathLike)) for p in items):
        raise InputError("x: expected image paths or a NumPy array of images")
    return [read_image(p).astype(np.float32) for p in items]
