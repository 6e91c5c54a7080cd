"""Training inside a worker: one trial at a time, on the fidelity its configuration needs.

Imports TensorFlow; never imports Spark, the samplers or an executor. Besides the trial
runner, the package exposes the pieces that turn a trial into a Keras model and the image
pipeline, for the trial-to-model path and for benchmarks.
"""

from transfer_automl.training._assemble import (build_classifier, frozen_part, select_pooled,
                                                trial_classifier)
from transfer_automl.training._inputs import extract as extract_features
from transfer_automl.training._pipeline import image_dataset
from transfer_automl.training._runner import TrialRunner

__all__ = ["TrialRunner", "build_classifier", "extract_features", "frozen_part",
           "image_dataset", "select_pooled", "trial_classifier"]
