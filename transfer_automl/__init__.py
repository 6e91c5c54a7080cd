"""transfer-automl: automatic transfer learning for image folders.

``import transfer_automl`` stays light: TensorFlow is imported only when a search or a model
needs it.
"""

from __future__ import annotations

import os

# TensorFlow's C++ info and warning lines are noise for users of this tool (the start-up
# lines printed before that setting applies are filtered by transfer_automl.quiet); set
# TF_CPP_MIN_LOG_LEVEL=0 before importing transfer_automl to see everything. Workers inherit it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
