"""What ``fit_auto`` returns: the best model, its scores, the leaderboard, and how it was found."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transfer_automl.errors import InputError
from transfer_automl.export import ExportedModel
from transfer_automl.space import fused_backbones


#: the columns of :meth:`Leaderboard.to_pandas` and of its notebook view, in order
COLUMNS = ("trial", "status", "score", "best_epoch", "epochs_run", "cost_s", "fidelity",
           "origin", "parent", "reason", "diagnosis", "config")


class Leaderboard(list):
    """The trials of a search, best first: a list of row dicts, with a table view.

    ``to_pandas()`` gives a DataFrame (pandas must be installed: ``pip install
    transfer-automl[notebook]``); in a notebook the leaderboard shows as an HTML table.
    """

    def to_pandas(self):
        """The rows as a ``pandas.DataFrame``, one column per field (the configuration as a
        dict per row; ``members`` and ``detail`` for an ensemble row)."""
        try:
            import pandas as pd
        except ImportError:
            raise InputError("Leaderboard.to_pandas needs pandas: pip install pandas") from None
        extra = [k for row in self for k in row if k not in COLUMNS]
        columns = [*COLUMNS, *dict.fromkeys(extra)]
        return pd.DataFrame([[row.get(c) for c in columns] for row in self], columns=columns)

    def __repr__(self) -> str:
        best = self[0] if self else None
        score = f"{best['score']:.4f}" if best and best["score"] is not None else "-"
        return f"Leaderboard({len(self)} rows, best {best['trial'] if best else '-'} {score})"

    def _repr_html_(self) -> str:
        from html import escape

        head = "".join(f"<th>{c}</th>" for c in ("trial", "status", "score", "cost_s",
                                                  "fidelity", "origin", "configuration"))
        body = []
        for row in self:
            score = f"{row['score']:.4f}" if row["score"] is not None else "-"
            cost = f"{row['cost_s']:.1f}" if row.get("cost_s") is not None else "-"
            detail = row.get("detail") or ", ".join(f"{k}={v}" for k, v in row["config"].items())
            cells = (row["trial"], row["status"], score, cost, row["fidelity"], row["origin"],
                     detail + (f" [{row['reason']}]" if row.get("reason") else ""))
            body.append("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>")
        return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


@dataclass
class FitResult:
    """The outcome of a search.

    Attributes:
        run_id: id of the run (its directory name under the runs directory).
        best_config: the winning configuration (head, fine-tuning and backbone).
        best_score: validation accuracy of the best trial.
        test_score: accuracy of the exported model on the held-out test split (None if the
            dataset has no test split).
        leaderboard: one row per trial: trial, status, score, cost, fidelity, origin, reason,
            config; best first (a :class:`Leaderboard`: ``to_pandas()``, an HTML view in
            notebooks).
        group: matched virtual dataset group and distance (None without a knowledge base).
        data_report: what ingestion found (counts, skipped files, conversions).
        explanation: a few sentences on how the result was found.
        model: the exported best model (see :meth:`export`).
        test_report: the test accuracy with its 95% interval and the number of test images,
            per-class accuracy and the confusion matrix
            (:class:`~transfer_automl.trial_model.SplitReport`; None without a test split).
        ensemble: the exported :class:`~transfer_automl.ensemble.Ensemble` (its members and
            weights), or None when the best trial alone is the exported model.
        timings: wall seconds per phase: ``load_s`` (ingest the dataset), ``plan_s`` (embed
            it and match it to the knowledge base), ``search_s`` (the trials), ``refit_s``
            (choose the ensemble, refit its members), ``export_s`` (export and test score).
    """

    run_id: str
    best_config: dict[str, Any]
    best_score: float
    test_score: float | None
    leaderboard: Leaderboard
    group: dict[str, Any] | None
    data_report: dict[str, Any]
    explanation: str
    model: ExportedModel = field(repr=False)
    test_report: Any = None
    ensemble: Any = None
    single: "SingleModel | None" = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.leaderboard, Leaderboard):
            self.leaderboard = Leaderboard(self.leaderboard)

    def __repr__(self) -> str:
        test = self.test_report.summary() if self.test_report is not None else "no test split"
        return (f"FitResult(run {self.run_id}: {len(self.leaderboard)} trials, best validation "
                f"accuracy {self.best_score:.4f}, {test})")

    def predict(self, x) -> list[str]:
        """Class names for image paths or an image array batch."""
        return self.model.predict(x)

    def predict_proba(self, x):
        """Class probabilities for image paths or an image array batch."""
        return self.model.predict_proba(x)

    def export(self, out_dir: str | os.PathLike, *, single: bool = False,
               formats: tuple[str, ...] = ("saved_model",),
               tflite_quantization: str = "float16") -> Path:
        """Write the SavedModel, labels.json and metadata.json to ``out_dir``.

        ``transfer_automl.load_model(out_dir).predict(x)`` then works in any process.
        With ``single=True`` the best trial's model alone is written, not the ensemble
        (one backbone pass per image; the same model when there is no ensemble).
        ``formats`` may add ``"tflite"``: ``model.tflite`` (uint8 images at the model's
        resolution in, probabilities out; quantized ``"float16"``, ``"int8"`` or ``"none"``),
        described under ``tflite`` in metadata.json (see :mod:`transfer_automl.export_tflite`).
        """
        from transfer_automl.export_tflite import check_export, export_formats

        check_export(formats, tflite_quantization)
        out = Path(out_dir)
        if out.exists() and any(out.iterdir()):
            raise InputError(f"{out} exists and is not empty; choose a new directory to export to")
        # the run's own export is RUN_DIR/model: int8 calibrates on that run's training images
        return export_formats(out, lambda d: self._saved_model(d, single), formats,
                              tflite_quantization, self.model.path.parent)

    def _saved_model(self, out: Path, single: bool) -> Path:
        if single and self.ensemble is not None:
            if self.single is None:
                raise InputError("this result does not keep its best trial's model")
            self.single.export(out)
            return out
        shutil.copytree(self.model.path, out, dirs_exist_ok=True)
        return out


@dataclass(frozen=True)
class SingleModel:
    """What it takes to export the best trial alone, when an ensemble was exported."""

    config: dict[str, Any]
    weights: str
    class_names: list[str]
    backbone_cache: Path
    metadata: dict[str, Any]

    def export(self, out_dir: Path) -> ExportedModel:
        from transfer_automl.trial_model import export_trial

        return export_trial(self.config, self.weights, self.class_names, out_dir,
                            backbone_cache=self.backbone_cache, metadata=self.metadata)


def ensemble_row(ensemble) -> dict[str, Any]:
    """The leaderboard row of an ensemble: its held-out accuracy, members and weights."""
    members = ", ".join(f"{t} x{w:.2f}" for t, w in ensemble.weights.items())
    return {"trial": "ensemble", "status": "complete", "score": ensemble.accuracy,
            "best_epoch": None, "epochs_run": 0, "cost_s": None, "fidelity": "ensemble",
            "origin": "ensemble", "parent": None, "reason": "", "diagnosis": "",
            "config": {}, "members": dict(ensemble.weights),
            "detail": f"{members} (best single {ensemble.single_accuracy:.4f} on the same "
                      f"{ensemble.n_images} held-out images)"}


def explain(study, best, planned: str, refit: bool) -> str:
    """A few sentences on how ``best`` was found: what the knowledge base contributed
    (``planned``), what the trials did, and whether the exported model was refit."""
    return planned + ". " + _trials(study, best) + (_refit_note(best) if refit else "")


def _refit_note(best) -> str:
    if best.spec.config["optimizer"] == "lbfgs":
        return " Solved again on training + validation images before export."
    return (f" Refit on training + validation images for {best.result.best_epoch}"
            " epochs before export.")


def _trials(study, best) -> str:
    states = [r.state.value for r in study.trials.values()]
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
    cfg = best.spec.config
    head = "a linear head" if cfg["n_dense"] == 0 else f"a {cfg['n_dense']}-layer MLP head"
    if cfg["optimizer"] == "lbfgs":
        head += " solved exactly (L-BFGS)"
    tuning = ("the backbone frozen" if cfg["unfrozen_blocks"] == 0
              else f"the top {cfg['unfrozen_blocks']} backbone blocks fine-tuned")
    fused = fused_backbones(cfg)
    on = f"the fused features of {' + '.join(fused)}" if fused else cfg["backbone"]
    if fused:
        tuning = "the backbones frozen"
    return (f"{len(states)} trials ({counts}). Best: trial {best.spec.trial_id} "
            f"(from {best.spec.origin}), {head} on {on} at "
            f"{cfg['resolution']} px with {tuning}, validation accuracy "
            f"{best.result.score:.4f}" + (
                "." if cfg["optimizer"] == "lbfgs" else f" at epoch {best.result.best_epoch}."))
