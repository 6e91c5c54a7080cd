"""TFLite export: the exported SavedModel's fixed-size graph, converted to TFLite builtins.

The TFLite model (``model.tflite`` beside the SavedModel) takes **uint8** images
``[1, R, R, 3]`` in [0, 255] already at the model's resolution ``R`` (the batch dimension can be
resized with ``resize_tensor_input``) and returns float32 class probabilities
``[batch, n_classes]`` in the order of ``labels.json``. The caller resizes: training resized
with an antialiased bilinear filter, which TFLite does not have built in, so the graph holds no
resize of its input. :func:`prepare_images` resizes exactly as training did, and
:func:`load_tflite` predicts with it. An ensemble whose members read different resolutions
takes images at the largest one and resizes inside, with the builtin bilinear resize (not
antialiased), to the others.

The conversion reads only the export directory: the SavedModel's ``at_resolution`` function
(written by :mod:`transfer_automl.export`), and for int8 a sample of the run's training images.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from transfer_automl.errors import InputError
from transfer_automl.export import LABELS, METADATA, PREDICT_BATCH, _as_images

TFLITE = "model.tflite"
FORMATS = ("saved_model", "tflite")
#: ``float16``: weights stored as float16, computed in float32 (half the size, the same
#: predictions); ``int8``: weights and activations int8, calibrated on training images (a
#: quarter of the size; ops without an int8 kernel stay float); ``none``: float32.
QUANTIZATIONS = ("float16", "int8", "none")
#: training images the int8 conversion calibrates its activation ranges on, at most
CALIBRATION_IMAGES = 100
#: timed single-image runs behind ``latency_ms_per_image`` (their median), on one thread
LATENCY_RUNS = 20


def check_export(formats: Sequence[str] | str, quantization: str) -> tuple[str, ...]:
    """The export formats asked for, checked (a bad value fails before anything is written)."""
    chosen = (formats,) if isinstance(formats, str) else tuple(formats)
    unknown = [f for f in chosen if f not in FORMATS]
    if not chosen or unknown:
        raise InputError(f"formats: expected some of {', '.join(FORMATS)}, got {formats!r}")
    if quantization not in QUANTIZATIONS:
        raise InputError(f"tflite_quantization: expected one of {', '.join(QUANTIZATIONS)}, "
                         f"got {quantization!r}")
    return chosen


def export_formats(out: Path, write_saved_model: Callable[[Path], Any],
                   formats: Sequence[str] | str, quantization: str,
                   run_dir: Path | None) -> Path:
    """Write the SavedModel with ``write_saved_model(dir)`` and, if asked, ``model.tflite``
    converted from it, into ``out``.

    With ``formats=("tflite",)`` the SavedModel is written to a temporary directory and only
    ``model.tflite``, ``labels.json`` and ``metadata.json`` reach ``out``. ``run_dir`` is the
    run whose training images calibrate an int8 conversion.
    """
    chosen = check_export(formats, quantization)
    if "tflite" not in chosen:
        write_saved_model(out)
        return out
    calibration = calibration_images(run_dir) if quantization == "int8" else None
    if "saved_model" in chosen:
        write_saved_model(out)
        write_tflite(out, quantization=quantization, calibration=calibration)
        return out
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "model"
        write_saved_model(staged)
        write_tflite(staged, quantization=quantization, calibration=calibration)
        out.mkdir(parents=True, exist_ok=True)
        for name in (TFLITE, LABELS, METADATA):
            shutil.copy2(staged / name, out / name)
    return out


def calibration_images(run_dir: Path | None, n: int = CALIBRATION_IMAGES,
                       seed: int = 0) -> list[str]:
    """Up to ``n`` training images of the run in ``run_dir`` (a seeded sample of its
    manifest's training split), for the int8 conversion to calibrate on."""
    from transfer_automl.data import load_manifest
    from transfer_automl.run import RunFiles

    manifest = RunFiles(Path(run_dir)).manifest if run_dir is not None else None
    if manifest is None or not manifest.is_file():
        raise InputError(f"int8 quantization calibrates on the run's training images, but the "
                         f"run's dataset manifest ({manifest}) is gone; export with "
                         f"tflite_quantization='float16' instead")
    paths = list(load_manifest(manifest).train.paths)
    if len(paths) > n:
        rng = np.random.default_rng(seed)
        paths = [paths[i] for i in sorted(rng.choice(len(paths), n, replace=False))]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing or not paths:
        raise InputError(f"int8 quantization calibrates on the run's training images; "
                         f"{len(missing)} of {len(paths)} are gone (e.g. {missing[:1]}); "
                         f"export with tflite_quantization='float16' instead")
    return paths


def write_tflite(model_dir: str | os.PathLike, *, quantization: str = "float16",
                 calibration: Sequence[str] | None = None) -> dict[str, Any]:
    """Convert the SavedModel in ``model_dir`` to ``model_dir/model.tflite``, time it, and
    record it under ``tflite`` in ``metadata.json``.

    Args:
        model_dir: an export directory (``FitResult.export`` or ``save_classifier``).
        quantization: one of :data:`QUANTIZATIONS`.
        calibration: image paths an int8 conversion calibrates on (required for int8).

    Returns:
        The metadata entry: file, input_shape, input_dtype, resolution, resizes_inside_to,
        quantization, calibration_images, size_bytes, latency_ms_per_image, latency_threads.
    """
    check_export("tflite", quantization)
    if quantization == "int8" and not calibration:
        raise InputError("int8 quantization needs calibration images (training image paths)")
    model_dir = Path(model_dir)
    blob, resolution = convert(model_dir, quantization, calibration)
    (model_dir / TFLITE).write_bytes(blob)
    metadata = json.loads((model_dir / METADATA).read_text())
    entry = {"file": TFLITE, "input_shape": [1, resolution, resolution, 3],
             "input_dtype": "uint8", "input_range": [0, 255], "resolution": resolution,
             "resizes_inside_to": sorted(set(_resolutions(metadata)) - {resolution}),
             "output": "float32 probabilities [batch, n_classes], the classes of labels.json",
             "quantization": quantization,
             "calibration_images": len(calibration) if quantization == "int8" else 0,
             "size_bytes": len(blob), "latency_ms_per_image": latency_ms(blob, resolution),
             "latency_threads": 1}
    metadata["tflite"] = entry
    (model_dir / METADATA).write_text(json.dumps(metadata, indent=1, default=str))
    return entry


def convert(model_dir: Path, quantization: str,
            calibration: Sequence[str] | None = None) -> tuple[bytes, int]:
    """The TFLite flatbuffer of an exported model's ``at_resolution`` graph, and the
    resolution of its input. Only TFLite builtin ops are allowed: a graph that needs
    anything else fails to convert rather than produce a model most runtimes cannot run."""
    from transfer_automl import quiet

    tf = quiet.tensorflow()
    loaded = tf.saved_model.load(str(model_dir))
    if not hasattr(loaded, "at_resolution"):
        raise InputError(f"{model_dir}: this SavedModel was exported without its fixed-size "
                         f"graph (an older version); export the model again to convert it")
    function = loaded.at_resolution.get_concrete_function()
    resolution = int(function.inputs[0].shape[1])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], loaded)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        def representative():
            for path in calibration:
                yield [prepare_images([path], resolution)]

        converter.representative_dataset = representative
    return converter.convert(), resolution


def _resolutions(metadata: dict[str, Any]) -> list[int]:
    configs = metadata.get("configs") or [metadata.get("config") or {}]
    return [int(c["resolution"]) for c in configs if c.get("resolution")]


def prepare_images(x, resolution: int) -> np.ndarray:
    """Images (paths or an array batch, as ``predict`` takes them) -> the TFLite model's
    input: uint8 ``[n, resolution, resolution, 3]``, resized exactly as training did
    (bilinear, antialiased, rounded)."""
    import tensorflow as tf

    from transfer_automl.preprocessing import resize

    images = _as_images(x)
    if not images:
        return np.zeros((0, resolution, resolution, 3), np.uint8)
    return np.stack([resize(tf.constant(im), resolution).numpy() for im in images])


def interpreter(model, threads: int | None = None):
    """A TFLite interpreter for a model file or flatbuffer: LiteRT's if ``ai_edge_litert`` is
    installed, else TensorFlow's (``tf.lite.Interpreter``)."""
    source = ({"model_content": bytes(model)} if isinstance(model, (bytes, bytearray))
              else {"model_path": str(model)})
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        with warnings.catch_warnings():  # its deprecation notice points to LiteRT
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(**source, num_threads=threads)
    return Interpreter(**source, num_threads=threads)


def latency_ms(blob: bytes, resolution: int, runs: int = LATENCY_RUNS) -> float:
    """Median milliseconds of one single-image run on one thread (after two warm-ups)."""
    runner = interpreter(blob, threads=1)
    runner.allocate_tensors()
    index = runner.get_input_details()[0]["index"]
    image = np.random.default_rng(0).integers(0, 256, (1, resolution, resolution, 3), np.uint8)
    times = []
    for i in range(runs + 2):
        runner.set_tensor(index, image)
        start = time.perf_counter()
        runner.invoke()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return round(float(np.median(times)) * 1000, 3)


class TFLiteModel:
    """A ``model.tflite`` with its labels, predicting like :class:`~transfer_automl.export.
    ExportedModel` (images resized as training did, on this side of the model).

    Args:
        path: an export directory holding ``model.tflite``, or the ``.tflite`` file itself
            (``labels.json`` beside it).
        threads: interpreter threads (None: the runtime's default).
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        path = Path(path)
        file = path / TFLITE if path.is_dir() else path
        if not file.is_file() or not (file.parent / LABELS).is_file():
            raise InputError(f"{path}: expected {TFLITE} and {LABELS}; export them with "
                             f"FitResult.export(dir, formats=('saved_model', 'tflite'))")
        self.path = file
        self.class_names: list[str] = json.loads((file.parent / LABELS).read_text())
        self._runner = interpreter(file, threads)
        self._runner.allocate_tensors()
        self._input = self._runner.get_input_details()[0]
        self._output = self._runner.get_output_details()[0]
        self.resolution = int(self._input["shape"][1])
        self._batch = int(self._input["shape"][0])

    def predict_proba(self, x) -> np.ndarray:
        """Class probabilities ``[n, n_classes]`` for image paths or an image array batch."""
        images = prepare_images(x, self.resolution)
        out = [self._run(images[i:i + PREDICT_BATCH]) for i in range(0, len(images), PREDICT_BATCH)]
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)

    def predict(self, x) -> list[str]:
        """Class names for image paths (one path or a list) or an image array batch."""
        return [self.class_names[i] for i in self.predict_proba(x).argmax(axis=1)]

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if len(batch) != self._batch:
            self._runner.resize_tensor_input(self._input["index"], list(batch.shape))
            self._runner.allocate_tensors()
            self._batch = len(batch)
        self._runner.set_tensor(self._input["index"], batch)
        self._runner.invoke()
        return np.array(self._runner.get_tensor(self._output["index"]))


def load_tflite(path: str | os.PathLike, threads: int | None = None) -> TFLiteModel:
    """Load the ``model.tflite`` of an export directory (see :class:`TFLiteModel`)."""
    return TFLiteModel(path, threads)
