"""A fixed, versioned portfolio of configurations, run on every dataset of the meta-dataset.

Searches draw different configurations on every dataset, so what one configuration would
have scored elsewhere has to be guessed. A portfolio is the same list everywhere: each
configuration is evaluated once per dataset on the same cross-validation folds, and warm-start
methods are compared by replaying that table (as HPO-B, LCBench and auto-sklearn 2.0 do).

The portfolio spans the joint space: exact and gradient-trained linear heads and MLP heads on
cached features of the three backbones at two resolutions, the three poolings and a range of
regularisation; and fine-tuning of the top one to three blocks with SGD, Adam and AdamW at
several learning rates. Changing the list means a new ``PORTFOLIO_VERSION``: rows of the
meta-dataset are keyed by (version, configuration id).

A search's trial whose configuration is a portfolio configuration (:func:`match`) is a
meta-dataset row too: :func:`trial_portfolio_row` turns it into one for the knowledge base
(``KnowledgeBase.add_portfolio_rows``), and the run recorder adds it.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from transfer_automl.space import SearchSpace, default_space, fidelity, is_active

PORTFOLIO_VERSION = 1


@dataclass(frozen=True)
class PortfolioEntry:
    """One configuration of the portfolio: a stable id and a complete configuration."""

    config_id: str
    config: dict[str, Any]

    @property
    def fidelity(self) -> str:
        return fidelity(self.config)


def _exact(backbone: str, resolution: int, pooling: str, wd: float, ls: float = 0.0) -> dict:
    return {"backbone": backbone, "resolution": resolution, "pooling": pooling,
            "optimizer": "lbfgs", "weight_decay": wd, "label_smoothing": ls}


def _head(backbone: str, resolution: int, pooling: str, optimizer: str, lr: float, wd: float,
          epochs: int, n_dense: int = 0, units: int = 256, dropout: float = 0.2,
          batchnorm: bool = False, ls: float = 0.0, head_dropout: float = 0.2) -> dict:
    config = {"backbone": backbone, "resolution": resolution, "pooling": pooling,
              "optimizer": optimizer, "learning_rate": lr, "weight_decay": wd, "epochs": epochs,
              "n_dense": n_dense, "label_smoothing": ls, "head_dropout": head_dropout}
    if n_dense >= 1:
        config.update(units_1=units, dropout_1=dropout, batchnorm_1=batchnorm)
    if n_dense >= 2:
        config.update(units_2=units // 2, dropout_2=dropout, batchnorm_2=batchnorm)
    return config


def _fine_tune(blocks: int, optimizer: str, lr: float, mult: float, resolution: int = 224,
               epochs: int = 10, wd: float = 1e-4, ls: float = 0.1) -> dict:
    return {"backbone": "efficientnet_lite0", "resolution": resolution, "pooling": "avg",
            "optimizer": optimizer, "learning_rate": lr, "backbone_lr_mult": mult,
            "unfrozen_blocks": blocks, "weight_decay": wd, "label_smoothing": ls,
            "epochs": epochs, "batch_size": 32, "head_dropout": 0.2}


L0, L1, L2 = "efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"

_ENTRIES: tuple[tuple[str, dict], ...] = (
    # exact linear heads: the baseline and its neighbours across backbones and poolings
    ("x-l0-224-avg", _exact(L0, 224, "avg", 5e-4)),
    ("x-l0-224-avg-wd3", _exact(L0, 224, "avg", 3e-3)),
    ("x-l0-224-avg-ls", _exact(L0, 224, "avg", 1e-3, 0.1)),
    ("x-l0-224-max", _exact(L0, 224, "max", 1e-3)),
    ("x-l0-224-avgmax", _exact(L0, 224, "avgmax", 2e-3)),
    ("x-l0-160-avg", _exact(L0, 160, "avg", 5e-4)),
    ("x-l0-160-avgmax", _exact(L0, 160, "avgmax", 2e-3)),
    ("x-l1-224-avg", _exact(L1, 224, "avg", 5e-4)),
    ("x-l1-224-max", _exact(L1, 224, "max", 1e-3)),
    ("x-l1-224-avgmax", _exact(L1, 224, "avgmax", 2e-3, 0.1)),
    ("x-l2-224-avg", _exact(L2, 224, "avg", 5e-4)),
    ("x-l2-224-max", _exact(L2, 224, "max", 1e-3)),
    ("x-l2-224-avgmax", _exact(L2, 224, "avgmax", 2e-3, 0.1)),
    ("x-l2-224-avg-wd3", _exact(L2, 224, "avg", 3e-3)),
    # gradient-trained linear heads
    ("g-l0-224-avg-adam", _head(L0, 224, "avg", "adam", 1e-3, 1e-4, 40)),
    ("g-l0-224-avg-adamw", _head(L0, 224, "avg", "adamw", 3e-3, 1e-3, 20, ls=0.1)),
    ("g-l0-224-max-sgd", _head(L0, 224, "max", "sgd", 3e-2, 1e-4, 20)),
    ("g-l0-160-avgmax-adam", _head(L0, 160, "avgmax", "adam", 1e-3, 1e-4, 40)),
    ("g-l1-224-avg-adamw", _head(L1, 224, "avg", "adamw", 3e-3, 1e-3, 20, ls=0.1)),
    ("g-l2-224-avg-adam", _head(L2, 224, "avg", "adam", 1e-3, 1e-4, 40)),
    ("g-l2-224-avgmax-sgd", _head(L2, 224, "avgmax", "sgd", 3e-2, 1e-4, 20, ls=0.1)),
    # MLP heads
    ("m-l0-224-avg-1x256", _head(L0, 224, "avg", "adam", 1e-3, 1e-4, 40, 1, 256, 0.3)),
    ("m-l0-224-avg-1x512-bn", _head(L0, 224, "avg", "adamw", 1e-3, 1e-3, 20, 1, 512, 0.5,
                                    True, 0.1)),
    ("m-l0-224-avgmax-2x256", _head(L0, 224, "avgmax", "adam", 3e-4, 1e-4, 40, 2, 256, 0.3)),
    ("m-l0-224-max-1x128-sgd", _head(L0, 224, "max", "sgd", 1e-2, 1e-4, 40, 1, 128, 0.2)),
    ("m-l0-160-avg-1x256", _head(L0, 160, "avg", "adamw", 1e-3, 1e-3, 20, 1, 256, 0.3,
                                 ls=0.1)),
    ("m-l1-224-avg-1x256", _head(L1, 224, "avg", "adam", 1e-3, 1e-4, 40, 1, 256, 0.3)),
    ("m-l1-224-avgmax-1x512-bn", _head(L1, 224, "avgmax", "adamw", 1e-3, 1e-3, 20, 1, 512,
                                       0.5, True, 0.1)),
    ("m-l2-224-avg-1x256", _head(L2, 224, "avg", "adam", 1e-3, 1e-4, 40, 1, 256, 0.3)),
    ("m-l2-224-avg-2x512-bn", _head(L2, 224, "avg", "adamw", 1e-3, 1e-3, 20, 2, 512, 0.5,
                                    True, 0.1)),
    ("m-l2-224-max-1x256-sgd", _head(L2, 224, "max", "sgd", 1e-2, 1e-4, 40, 1, 256, 0.2)),
    ("m-l0-224-avg-1x64", _head(L0, 224, "avg", "adam", 3e-3, 1e-3, 20, 1, 64, 0.1)),
    ("m-l0-224-avg-2x128-ls", _head(L0, 224, "avg", "adamw", 1e-3, 1e-4, 40, 2, 128, 0.2,
                                    ls=0.2)),
    ("m-l2-224-avgmax-1x128", _head(L2, 224, "avgmax", "adam", 3e-3, 1e-3, 20, 1, 128, 0.1)),
    ("m-l1-224-max-2x256", _head(L1, 224, "max", "adamw", 3e-4, 1e-4, 40, 2, 256, 0.3)),
    ("m-l0-160-max-1x512", _head(L0, 160, "max", "adam", 1e-3, 1e-3, 20, 1, 512, 0.5)),
    # fine-tuning the top blocks of Lite0 (activations cached at the freeze boundary)
    ("f-k1-sgd-1e-2", _fine_tune(1, "sgd", 1e-2, 0.1)),
    ("f-k1-adamw-1e-3", _fine_tune(1, "adamw", 1e-3, 0.3)),
    ("f-k1-adam-3e-4", _fine_tune(1, "adam", 3e-4, 1.0)),
    ("f-k2-sgd-1e-2", _fine_tune(2, "sgd", 1e-2, 0.1)),
    ("f-k2-sgd-3e-3", _fine_tune(2, "sgd", 3e-3, 0.3)),
    ("f-k2-adamw-1e-3", _fine_tune(2, "adamw", 1e-3, 0.1)),
    ("f-k2-adamw-3e-4", _fine_tune(2, "adamw", 3e-4, 0.3)),
    ("f-k2-adam-1e-4", _fine_tune(2, "adam", 1e-4, 1.0, ls=0.0)),
    ("f-k3-sgd-1e-2", _fine_tune(3, "sgd", 1e-2, 0.1)),
    ("f-k3-adamw-1e-3", _fine_tune(3, "adamw", 1e-3, 0.1)),
    ("f-k3-adamw-3e-4", _fine_tune(3, "adamw", 3e-4, 0.3, epochs=5)),
    ("f-k2-sgd-1e-2-160", _fine_tune(2, "sgd", 1e-2, 0.1, resolution=160)),
    ("f-k3-adamw-1e-3-160", _fine_tune(3, "adamw", 1e-3, 0.1, resolution=160)),
)


def portfolio(space: SearchSpace | None = None) -> list[PortfolioEntry]:
    """The portfolio of :data:`PORTFOLIO_VERSION`, each entry completed and validated in
    ``space`` (default: :func:`default_space` over the three catalogue backbones)."""
    space = space or default_space((L0, L1, L2))
    return [PortfolioEntry(cid, space.complete(partial)) for cid, partial in _ENTRIES]


@lru_cache(maxsize=1)
def _default_entries() -> tuple[tuple[PortfolioEntry, ...], tuple[tuple[str, Any], ...]]:
    space = default_space((L0, L1, L2))
    return tuple(portfolio(space)), tuple(space.default.items())


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def match(config: Mapping[str, Any]) -> PortfolioEntry | None:
    """The portfolio entry of :data:`PORTFOLIO_VERSION` that ``config`` is: the same values on
    every parameter active under either (:func:`transfer_automl.space.is_active`), so a
    parameter without effect (the momentum of Adam, the second layer of a one-layer head)
    may differ. A parameter ``config`` lacks counts at the space's default (a one-backbone
    space has no ``fusion``: it fuses nothing). None when no entry matches."""
    entries, default = _default_entries()
    full = {**dict(default), **dict(config)}
    for entry in entries:
        keys = {k for k in {*full, *entry.config}
                if is_active(k, full) or is_active(k, entry.config)}
        if all(k in full and k in entry.config and _same(full[k], entry.config[k])
               for k in keys):
            return entry
    return None


def trial_portfolio_row(spec: Any, result: Any, *, dataset: str, fingerprint: str,
                        n_images: int, dataset_id: int | None = None, embedding: Any = None,
                        source: str | None = None, commit: str = "") -> dict[str, Any] | None:
    """A meta-dataset row (the dict ``KnowledgeBase.add_portfolio_rows`` takes) for a finished
    search trial whose configuration is a portfolio one; None for any other trial.

    Only a trial that completed with a score counts, trained from scratch on its
    configuration: a refit (train + validation together) and a trial continuing from a
    checkpoint are not evaluations of the configuration. The row is what the search measured
    on its own split and folds (the build's rows use split seed 0 and its folds).

    Args:
        spec, result: the trial's ``TrialSpec`` and ``TrialResult``.
        dataset, fingerprint: the dataset's name and content fingerprint.
        n_images: training + validation images the trial saw.
        dataset_id: the knowledge base's record of the run's dataset.
        embedding: the dataset's embedding, stored with it when the KB has none.
        source: where the row came from (default ``"trial:<trial id>"``).
    """
    from transfer_automl.trial import TrialState

    if (result is None or result.state != TrialState.COMPLETE or result.score is None
            or getattr(spec, "refit_epochs", None) is not None
            or getattr(spec, "init_weights", None)):
        return None
    entry = match(spec.config)
    if entry is None:
        return None
    extra = dict(getattr(result, "extra", {}) or {})
    return {
        "portfolio_version": PORTFOLIO_VERSION, "config_id": entry.config_id,
        "config": entry.config, "dataset": dataset, "fingerprint": fingerprint,
        "dataset_id": dataset_id, "embedding": embedding,
        "fidelity": str(result.fidelity or entry.fidelity), "state": result.state.value,
        "reason": result.reason, "score": result.score, "best_epoch": result.best_epoch,
        "cv_folds": int(extra.get("cv_folds", 0) or 0), "n_images": int(n_images),
        "curve": [{"epoch": m.epoch, "val_accuracy": m.val_accuracy, "val_loss": m.val_loss,
                   "accuracy": m.accuracy, "seconds": round(m.seconds, 3)}
                  for m in result.history],
        "wall_s": round(float(result.seconds), 3), "cpu_s": extra.get("cpu_s"),
        "features_s": extra.get("features_s"), "commit": commit,
        "source": source or f"trial:{spec.trial_id}",
        "finished": dt.datetime.now(dt.timezone.utc)}
