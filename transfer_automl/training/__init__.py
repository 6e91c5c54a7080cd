"""Training inside a worker: one trial at a time, on the fidelity its configuration needs.

Imports TensorFlow; never imports Spark or the samplers.
"""

from transfer_automl.training._runner import TrialRunner

__all__ = ["TrialRunner"]
