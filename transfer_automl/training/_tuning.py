"""Live changes inside a trial: taken at an epoch boundary, checkpointed, recorded.

The reporter hands the trial the changes the driver forwarded (see ``transfer_automl.tuning``);
the training loop calls :func:`take` after each epoch. A change is applied by rebuilding the
optimizers from the updated configuration (their moment estimates restart; a cosine schedule
restarts from the new learning rate over the epochs left), after the weights at that boundary
are saved, so the trial can be restored to its state before the change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: Settings each optimizer reads (the others have no effect on it).
_READS = {"sgd": {"learning_rate", "momentum", "weight_decay"},
          "adamw": {"learning_rate", "weight_decay"},
          "adam": {"learning_rate"}}  # adam's weight decay is an L2 penalty built into the head


def take(fit, epoch: int, model=None, allowed: bool = True) -> dict[str, Any] | None:
    """The changes waiting for ``fit`` after ``epoch``, applied to ``fit.config`` and recorded
    in ``fit.extra["tunings"]``; None when there are none (or none this trial can apply).
    ``model``: whose weights the checkpoint before the change holds (default the trial's
    saved model; with folds trained in turn, the fold in training)."""
    changes, fit.pending = fit.pending, {}
    if not changes:
        return None
    name = fit.config["optimizer"]
    reads = _READS.get(name, set()) | {"epochs_left"}
    applied = {k: v for k, v in changes.items() if k in reads and allowed}
    ignored = {k: (f"{name} does not use it" if allowed else
                   "this trial trains in one solve, not by epochs")
               for k in changes if k not in applied}
    entry: dict[str, Any] = {"epoch": epoch + 1, "changes": applied, "ignored": ignored}
    if applied:
        entry["checkpoint"] = _checkpoint(fit, model or fit.trainable,
                                          len(fit.extra.get("tunings", ())) + 1)
        fit.config = {**fit.config, **{k: v for k, v in applied.items() if k != "epochs_left"}}
        fit.tuned_next = {**applied, "from_epoch": epoch + 1,
                          **({"ignored": ignored} if ignored else {})}
    fit.extra.setdefault("tunings", []).append(entry)
    return applied or None


def total_epochs(total: int, epoch: int, changes: dict[str, Any]) -> int:
    """Epochs the trial runs in all, after ``changes`` taken at the end of ``epoch``."""
    return epoch + int(changes["epochs_left"]) if "epochs_left" in changes else total


def rebuilds(changes: dict[str, Any]) -> bool:
    """Whether the optimizers must be rebuilt (anything but the epoch count changed)."""
    return any(k != "epochs_left" for k in changes)


def _checkpoint(fit, model, number: int) -> str:
    """Save ``model``'s weights now (the state before the change) and return the path."""
    out = Path(fit.runner.context.run_dir) / "trials" / fit.spec.trial_id
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"before_tuning_{number}.npz"
    np.savez(path, *model.get_weights())
    return str(path)
