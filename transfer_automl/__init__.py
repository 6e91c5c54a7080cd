"""transfer-automl: automatic transfer learning for image folders.

``import transfer_automl`` stays light: TensorFlow is imported only when a search or a model
needs it.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["fit_auto", "resume", "load_model", "DataOptions", "SearchOptions",
           "TrackingOptions", "WarmStartMode", "__version__"]

_LAZY = {"fit_auto": "transfer_automl.api", "resume": "transfer_automl.api",
         "load_model": "transfer_automl.export", "DataOptions": "transfer_automl.options",
         "SearchOptions": "transfer_automl.options", "TrackingOptions": "transfer_automl.options",
         "WarmStartMode": "transfer_automl.options"}


def __getattr__(name: str):
    # Lazy re-exports keep the package import free of TensorFlow.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'transfer_automl' has no attribute {name!r}")
