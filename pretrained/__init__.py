"""Pretrained backbones: catalogue, conversion from registry wheels, loading through TF Hub.

``import pretrained`` does not import TensorFlow; it is imported when a model is converted or
loaded.

Example::

    from pretrained import load_backbone
    backbone = load_backbone("efficientnet_lite0")    # converts once, then uses the cache
    bottom, top = backbone.split(unfrozen_blocks=2)   # tf_keras models
    features = backbone.features(uint8_images)        # [B, 7, 7, 1280] at 224 px
"""

from __future__ import annotations

from pretrained.catalogue import BackboneSpec, available_backbones, get_spec

__all__ = [
    "ALL_BLOCKS",
    "Backbone",
    "BackboneSpec",
    "available_backbones",
    "convert_backbone",
    "default_cache_dir",
    "get_spec",
    "load_backbone",
]

_LAZY = {
    "ALL_BLOCKS": "pretrained.loading",
    "Backbone": "pretrained.loading",
    "load_backbone": "pretrained.loading",
    "convert_backbone": "pretrained.convert",
    "default_cache_dir": "pretrained.convert",
}


def __getattr__(name: str):
    # The loading and conversion modules are cheap to import themselves, but routing them
    # lazily keeps `import pretrained` minimal even if they grow heavier imports later.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pretrained' has no attribute {name!r}")
