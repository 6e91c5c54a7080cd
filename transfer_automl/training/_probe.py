"""Linear probe, then fine-tune: the head of a fine-tuning trial starts from the exact solution.

A fine-tuning trial that starts from a random head sends large, noisy gradients into the
pretrained blocks while the head is still wrong, and distorts the features it is meant to
adapt (Kumar et al. 2022, "Fine-tuning can distort pretrained features"). Its linear head is
therefore first solved exactly (L-BFGS, :mod:`._exact`) on the frozen backbone's pooled
features, which the feature cache usually already holds for the trial's backbone and
resolution (cheap trials computed them); fine-tuning then starts from a head that is already
right and adapts the top blocks with a cosine-decayed learning rate (see ``_loops``).
"""

from __future__ import annotations

import time

import numpy as np

from transfer_automl.training._assemble import select_pooled
from transfer_automl.training._exact import fit_linear
from transfer_automl.training._inputs import cached_outputs


def applies(config, spec) -> bool:
    """Whether the trial starts from a linear probe: it fine-tunes blocks, its head is linear,
    and it does not continue a parent's checkpoint."""
    return (config["unfrozen_blocks"] > 0 and config["n_dense"] == 0
            and not spec.init_weights)


def probe_heads(fit, members, backbone, n_classes: int) -> None:
    """Solve each member's linear head on the frozen pooled features of the rows it trains on
    (every training + validation image for a refit; the others minus its held-out rows)."""
    runner, config = fit.runner, fit.config
    t0 = time.monotonic()
    side: dict = {}
    arrays = cached_outputs(runner, backbone, {**config, "unfrozen_blocks": 0}, side)
    data = runner.dataset
    x = select_pooled(np.concatenate([arrays["train"], arrays["val"]]), backbone,
                      config["pooling"])
    y = np.concatenate([data.train.labels, data.val.labels])
    everything = np.arange(len(y))
    for member in members:
        if fit.spec.refit_epochs is not None or member.rows is None:
            rows = everything
        else:
            rows = np.setdiff1d(everything, member.rows)
        solution = fit_linear(x[rows], y[rows], n_classes, config["weight_decay"],
                              config["label_smoothing"])
        member.trainable.get_layer("head").get_layer("logits").set_weights(
            [solution.kernel, solution.bias])
    fit.extra["probe_s"] = round(time.monotonic() - t0, 3)
