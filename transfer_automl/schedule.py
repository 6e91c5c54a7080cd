"""The multi-fidelity schedule: many cheap trials first, then fine-tuning for the best heads.

Trials on cached features cost seconds; fine-tuning trials cost minutes. The schedule spends
the first share of the trial budget on the cheap sub-space only (frozen backbone, no
augmentation), then promotes the best configurations found so far: each later trial keeps a
promoted configuration's head and resolution and searches the fine-tuning parameters
(unfrozen blocks, backbone learning-rate multiplier, augmentation, optimizer, epochs).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transfer_automl.space import Config, SearchSpace

HEAD_PARAMS = ("backbone", "resolution", "pooling", "n_dense", "units_1", "activation_1",
               "dropout_1", "batchnorm_1", "units_2", "activation_2", "dropout_2",
               "batchnorm_2", "head_dropout")


@dataclass(frozen=True)
class FidelitySchedule:
    """How a trial budget splits between cheap and fine-tuning trials.

    With a trial budget the first ``cheap_share`` of it runs on cached features, the rest
    fine-tunes. Without one (the search runs until its time budget), the first
    ``open_cheap`` trials are cheap, and afterwards every ``cheap_every``-th trial is a cheap
    one again between the fine-tuning trials: heads cost seconds, and each new one may join
    the ensemble.

    Attributes:
        max_trials: the search's trial budget (None: until the time budget).
        cheap_share: share of ``max_trials`` run on cached features before any fine-tuning.
        promote: how many of the best configurations get fine-tuning trials (round robin).
        fine_tune_epochs: epoch options for fine-tuning trials (kept short on a CPU).
        pinned_share: share of the cheap trials held at the default backbone and resolution,
            so that they all train on one feature-cache entry (every other pair costs a full
            extraction); later cheap trials explore backbones and resolutions too.
    """

    max_trials: int | None
    cheap_share: float = 0.6
    promote: int = 2
    fine_tune_epochs: tuple[int, ...] = (5, 10)
    pinned_share: float = 0.5
    open_cheap: int = 12
    cheap_every: int = 3

    @property
    def n_cheap(self) -> int:
        if self.max_trials is None:
            return self.open_cheap
        return max(1, round(self.max_trials * self.cheap_share))

    def _cheap(self, number: int) -> bool:
        if number < self.n_cheap:
            return True
        return self.max_trials is None and (number - self.n_cheap) % self.cheap_every == \
            self.cheap_every - 1

    def subspace(self, space: SearchSpace, number: int,
                 ranked: Sequence[Config]) -> tuple[SearchSpace, str, int | None]:
        """The part of ``space`` trial ``number`` samples from, the phase's name, and the
        position in ``ranked`` of the configuration it was promoted from (None if cheap).

        Args:
            space: the full space.
            number: 0-based trial number.
            ranked: finished configurations, best first.
        """
        if self._cheap(number) or not ranked:
            cheap = space.restrict(unfrozen_blocks=(0,), augment=(0.0,))
            if number < round(self.n_cheap * self.pinned_share):
                pinned = {"fusion": "none"} if "fusion" in space.names else {}
                cheap = cheap.fix(backbone=space.default["backbone"],
                                  resolution=space.default["resolution"], **pinned)
            return cheap, "cheap", None
        promoted = list(ranked[: self.promote])
        position = self._fine_tuned_before(number) % len(promoted)
        base = promoted[position]
        fine = space.fix(**{k: base[k] for k in HEAD_PARAMS if k in space.names})
        unfrozen = tuple(o for o in space.param("unfrozen_blocks").options if o > 0)
        epochs = tuple(o for o in space.param("epochs").options if o in self.fine_tune_epochs)
        gradient = tuple(o for o in space.param("optimizer").options if o != "lbfgs")
        fine = fine.restrict(unfrozen_blocks=unfrozen or (0,),
                             epochs=epochs or space.param("epochs").options,
                             optimizer=gradient or space.param("optimizer").options)
        return fine, "fine-tune", position

    def _fine_tuned_before(self, number: int) -> int:
        """How many fine-tuning trials come before trial ``number`` (for the round robin)."""
        return sum(not self._cheap(n) for n in range(self.n_cheap, number))
