"""Load a backbone through ``tensorflow_hub`` and split it into frozen and trainable halves.

One loader serves every source: a catalogue name (converted once, then read from the cache),
a local SavedModel directory, or a TF Hub / Kaggle handle (URL or ``provider/model/...``),
which is handed to ``tensorflow_hub`` unchanged. All Keras objects are ``tf_keras`` (Keras 2):
from TF 2.16 on ``tf.keras`` is Keras 3, which ``hub.KerasLayer`` does not support.

Outputs come in two shapes: catalogue models give a 4-D feature map ``[B, h, w, C]``; many
hub "feature vector" models give an already pooled ``[B, C]``. ``Backbone.pooled_output``
says which.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from pretrained.catalogue import UNIT_RANGE, BackboneSpec, catalogue_names
from pretrained.convert import METADATA_FILE, convert_backbone, default_cache_dir
from transfer_automl.errors import BackboneError

logger = logging.getLogger(__name__)

#: ``Backbone.split(ALL_BLOCKS)`` makes the whole backbone trainable, for any source.
ALL_BLOCKS = -1
_DEFAULT_RESOLUTION = 224


class Backbone:
    """A loaded backbone: its spec, preprocessing and frozen/trainable split.

    Build it with :func:`load_backbone`. Attributes:
        spec: The :class:`BackboneSpec` (built by probing for external models).
        handle: What was loaded: a SavedModel directory or a hub handle.
        n_blocks: Parts that can be unfrozen one at a time (0 for opaque external models).
        pooled_output: True if the output is ``[B, C]`` rather than a ``[B, h, w, C]`` map.
        digest: Short hash identifying the weights, for cache keys: the checkpoint's sha256
            for catalogue models, a hash of the SavedModel's graph and variable index for
            local directories, ``""`` for remote handles (the handle names them).
    """

    def __init__(self, spec: BackboneSpec, handle: str, loaded, pooled_output: bool,
                 digest: str = ""):
        self.spec = spec
        self.handle = handle
        self.pooled_output = pooled_output
        self.digest = digest
        self._loaded = loaded
        self._parts = list(getattr(loaded, "parts", []) or [])
        self._frozen = None

    @property
    def n_blocks(self) -> int:
        """Number of parts that :meth:`split` can unfreeze individually."""
        return len(self._parts)

    def __repr__(self) -> str:
        return (f"Backbone(name={self.spec.name!r}, n_blocks={self.n_blocks}, "
                f"feature_size={self.spec.feature_size}, pooled_output={self.pooled_output})")

    def preprocess(self, images):
        """Map RGB images in [0, 255] (uint8 or float) to the model's ``input_range``.

        ``(-1, 1)`` uses the Lite convention ``(x - 127) / 128``; any other range
        ``(lo, hi)`` is ``lo + x / 255 * (hi - lo)``. Resizing is the caller's job.
        """
        import tensorflow as tf

        x = tf.cast(images, tf.float32)
        lo, hi = self.spec.input_range
        if (lo, hi) == (-1.0, 1.0):
            return (x - 127.0) / 128.0
        return lo + x * ((hi - lo) / 255.0)

    def features(self, images):
        """Frozen inference: preprocess, then run the whole backbone."""
        if self._frozen is None:
            self._frozen = _layer(self._loaded, trainable=False, name="backbone")
        return self._frozen(self.preprocess(images))

    def split(self, unfrozen_blocks: int):
        """Split into a frozen ``bottom`` and a trainable ``top`` Keras model.

        ``bottom`` maps scaled images ``[B, H, W, 3]`` to the activations at the freeze
        boundary; ``top`` maps those to the backbone output (identity if nothing is
        unfrozen). ``top.trainable_weights`` are exactly the variables of the top parts.

        Args:
            unfrozen_blocks: How many top parts to train, ``0..n_blocks``, or
                :data:`ALL_BLOCKS` (-1) for the whole backbone. Opaque external models
                (``n_blocks == 0``) accept only 0 and -1.

        Returns:
            ``(bottom, top)``, both ``tf_keras.Model``.

        Raises:
            BackboneError: If ``unfrozen_blocks`` is out of range.
        """
        k = self._check_unfrozen(unfrozen_blocks)
        if not self._parts:
            return self._split_opaque(trainable=k != 0)
        channels = self._part_channels() + [self.spec.feature_size]
        cut = len(self._parts) - k
        bottom = _chain(self._parts[:cut], (None, None, 3), "bottom", trainable=False)
        top = _chain(self._parts[cut:], (None, None, channels[cut]), "top", trainable=True)
        return bottom, top

    def _split_opaque(self, trainable: bool):
        image_shape = (None, None, 3)
        if trainable:
            return (_chain([], image_shape, "bottom", trainable=False),
                    _chain([self._loaded], image_shape, "top", trainable=True))
        c = self.spec.feature_size
        out_shape = (c,) if self.pooled_output else (None, None, c)
        return (_chain([self._loaded], image_shape, "bottom", trainable=False),
                _chain([], out_shape, "top", trainable=True))

    def _check_unfrozen(self, unfrozen_blocks: int) -> int:
        n = self.n_blocks
        if unfrozen_blocks == ALL_BLOCKS:
            return max(n, 1)
        if not isinstance(unfrozen_blocks, int) or isinstance(unfrozen_blocks, bool):
            raise BackboneError(f"unfrozen_blocks must be an int, got {unfrozen_blocks!r}")
        if n == 0 and unfrozen_blocks != 0:
            raise BackboneError(
                f"backbone {self.spec.name!r} is an opaque model without parts: unfrozen_blocks "
                f"must be 0 (all frozen) or -1 (all trainable), got {unfrozen_blocks}")
        if not 0 <= unfrozen_blocks <= n:
            raise BackboneError(f"unfrozen_blocks must be in 0..{n} or -1 (all) for "
                                f"{self.spec.name!r}, got {unfrozen_blocks}")
        return unfrozen_blocks

    def _part_channels(self) -> list[int]:
        # Each part's __call__ was saved with a fixed [None, None, None, C] signature.
        channels = []
        for i, part in enumerate(self._parts):
            try:
                (spec,), _ = part.__call__.concrete_functions[0].structured_input_signature
                channels.append(int(spec.shape[-1]))
            except (AttributeError, IndexError, TypeError, ValueError) as exc:
                raise BackboneError(f"backbone {self.spec.name!r}: part {i} has no fixed "
                                    f"input signature [None, None, None, C]") from exc
        return channels


def _layer(obj, trainable: bool, name: str):
    import tensorflow_hub as hub

    return hub.KerasLayer(obj, trainable=trainable, name=name)


def _chain(objs: list, input_shape: tuple, name: str, trainable: bool):
    """A ``tf_keras.Model`` running hub layers over ``objs`` in order (identity if empty)."""
    import tensorflow as tf
    import tf_keras

    inputs = tf_keras.Input(shape=input_shape, name=f"{name}_input")
    x = inputs
    for i, obj in enumerate(objs):
        x = _layer(obj, trainable=trainable, name=f"{name}_part{i}")(x)
    if not objs:
        x = tf_keras.layers.Lambda(tf.identity, name=f"{name}_identity")(x)
    return tf_keras.Model(inputs, x, name=name)


def load_backbone(name_or_handle: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                  resolution: int | None = None) -> Backbone:
    """Load a backbone from the catalogue, a local SavedModel or a TF Hub / Kaggle handle.

    Args:
        name_or_handle: A catalogue name (see :func:`available_backbones`), a directory
            holding a SavedModel in the hub reusable convention, or a hub handle (an
            ``https://`` URL or ``provider/model/...``), passed to ``tensorflow_hub`` as is.
        cache_dir: Where catalogue conversions are cached; ``None`` means
            :func:`default_cache_dir`.
        resolution: Input size for external models (default 224) and the size used to
            probe their output; overrides the catalogue resolution when given.

    Returns:
        The loaded :class:`Backbone`.

    Raises:
        BackboneError: If the name is unknown, the handle cannot be loaded or the model's
            output is neither ``[B, C]`` nor ``[B, h, w, C]``.
    """
    handle = os.fspath(name_or_handle)
    if handle in catalogue_names():
        path = convert_backbone(handle, cache_dir if cache_dir is not None else default_cache_dir())
        return _from_saved_model(str(path), resolution)
    if os.path.isdir(handle):
        return _from_saved_model(handle, resolution)
    if "://" in handle or handle.count("/") >= 2:
        return _from_saved_model(handle, resolution)
    raise BackboneError(
        f"unknown backbone {handle!r}: not a catalogue name ({', '.join(catalogue_names())}), "
        f"not a SavedModel directory, not a hub handle (https://... or provider/model/...)")


def _from_saved_model(handle: str, resolution: int | None) -> Backbone:
    import tensorflow_hub as hub

    try:
        loaded = hub.load(handle)
    except Exception as exc:  # hub raises many types: OSError, ValueError, HTTP errors
        raise BackboneError(f"cannot load backbone {handle!r}: {exc}") from exc
    if not callable(loaded):
        raise BackboneError(f"{handle!r} has no __call__; it is not a reusable SavedModel")
    meta_file = Path(handle) / METADATA_FILE if os.path.isdir(handle) else None
    if meta_file is not None and meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        return Backbone(_catalogue_spec(meta, resolution), handle, loaded, pooled_output=False,
                        digest=meta["checkpoint_sha256_16"])
    backbone = _probe(handle, loaded, resolution or _DEFAULT_RESOLUTION)
    if os.path.isdir(handle):
        backbone.digest = _directory_digest(Path(handle))
    return backbone


def _directory_digest(path: Path) -> str:
    # The variable index stores a checksum of every tensor, so it stands for the weights.
    sha = hashlib.sha256()
    for name in ("saved_model.pb", "variables/variables.index"):
        if (path / name).is_file():
            sha.update((path / name).read_bytes())
    return sha.hexdigest()[:16]


def _catalogue_spec(meta: dict, resolution: int | None) -> BackboneSpec:
    fields = dict(meta["spec"])
    fields["input_range"] = tuple(float(v) for v in fields["input_range"])
    if resolution:
        fields["resolution"] = int(resolution)
    return BackboneSpec(**fields)


def _probe(handle: str, loaded, resolution: int) -> Backbone:
    """Build the spec of an external model from one dummy forward pass."""
    import tensorflow as tf

    out = _layer(loaded, trainable=False, name="probe")(tf.zeros([1, resolution, resolution, 3]))
    if out.shape.rank not in (2, 4):
        raise BackboneError(f"backbone {handle!r} returned shape {out.shape}; expected "
                            f"[B, C] or [B, h, w, C]")
    spec = BackboneSpec(
        name=handle, resolution=resolution, feature_size=int(out.shape[-1]), n_blocks=0,
        input_range=UNIT_RANGE, licence="unknown", source=handle,
        description="external SavedModel loaded through tensorflow_hub")
    logger.info("backbone %s: output %s at %d px", handle, out.shape, resolution)
    return Backbone(spec, handle, loaded, pooled_output=out.shape.rank == 2)
