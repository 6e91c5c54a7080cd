"""Dataset ingestion: folders, zips and arrays in; a validated, split :class:`Dataset` out.

Every image path in a :class:`Dataset` decodes with ``tf.io.decode_image(data, channels=3,
expand_animations=False)`` into the RGB image :func:`read_image` returns; files TensorFlow
would read differently are converted to PNG in the work directory. This package never imports
TensorFlow.
"""

from __future__ import annotations

from transfer_automl.data._dataset import DataReport, Dataset, SkippedFile, Split, load_manifest
from transfer_automl.data._images import SUPPORTED_FORMATS, read_image
from transfer_automl.data._load import default_workdir, load_dataset

__all__ = [
    "DataReport",
    "Dataset",
    "SUPPORTED_FORMATS",
    "SkippedFile",
    "Split",
    "default_workdir",
    "load_dataset",
    "load_manifest",
    "read_image",
]
