"""transfer-automl: automatic transfer learning for image folders.

``import transfer_automl`` stays light: TensorFlow is imported only when a search or a model
needs it.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["fit_auto", "load_model", "__version__"]


def __getattr__(name: str):
    # Lazy re-exports keep the package import free of TensorFlow.
    if name == "fit_auto":
        from transfer_automl.api import fit_auto

        return fit_auto
    if name == "load_model":
        from transfer_automl.export import load_model

        return load_model
    raise AttributeError(f"module 'transfer_automl' has no attribute {name!r}")
