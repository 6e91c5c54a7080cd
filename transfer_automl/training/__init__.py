"""Training inside a worker: one trial at a time, on the fidelity its configuration needs.

Imports TensorFlow; never imports Spark, the samplers or an executor. Besides the trial
runner, the package exposes the pieces that turn a trial into a Keras model, the image
pipeline and the exact linear solver, for the trial-to-model path and for benchmarks.
"""

from transfer_automl.training._assemble import (WeightedPart, build_classifier, ensemble_parts,
                                                frozen_part, pooled_width, select_pooled,
                                                trial_classifier)
from transfer_automl.training._exact import evaluate as evaluate_linear
from transfer_automl.training._exact import fit_linear
from transfer_automl.training._inputs import extract as extract_features
from transfer_automl.training._model import build_head, build_optimizer
from transfer_automl.training._pipeline import decode_and_resize, image_dataset
from transfer_automl.training._runner import TrialRunner

__all__ = ["TrialRunner", "WeightedPart", "build_classifier", "ensemble_parts", "build_head", "build_optimizer",
           "decode_and_resize", "evaluate_linear", "extract_features", "fit_linear",
           "frozen_part", "image_dataset", "pooled_width", "select_pooled", "trial_classifier"]
