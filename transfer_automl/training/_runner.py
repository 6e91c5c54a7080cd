"""Run one trial inside a worker: load data and backbone, train, report, save the best epoch."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from transfer_automl.errors import NonFiniteLoss, TrialPruned, TrialSuperseded
from transfer_automl.space import exact_solvable, fidelity, fused_backbones
from transfer_automl.training._loops import (Member, loop, loop_sequential, loop_stacked,
                                             solve_exact)
from transfer_automl.trial import (HELDOUT_FILE, EpochMetrics, TrialContext, TrialResult,
                                   TrialSpec, TrialState)

log = logging.getLogger(__name__)

Reporter = Callable[[EpochMetrics], None]


class TrialRunner:
    """Runs trials of one run; keeps the dataset, backbones and TensorFlow loaded between them.

    Args:
        context: where the dataset, caches and run directory are.
    """

    def __init__(self, context: TrialContext) -> None:
        import tensorflow as tf

        if context.threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(context.threads)
                tf.config.threading.set_inter_op_parallelism_threads(2)
            except RuntimeError:  # TensorFlow already initialised in this process
                pass
        from transfer_automl.data import load_manifest
        from transfer_automl.training._features import FeatureCache

        self.context = context
        self.dataset = load_manifest(context.manifest)
        self.cache = FeatureCache(context.feature_cache) if context.feature_cache else None
        self._backbones: dict[str, object] = {}

    def backbone(self, name: str):
        """The loaded backbone ``name`` (loaded once per process)."""
        if name not in self._backbones:
            from pretrained import load_backbone

            self._backbones[name] = load_backbone(name, cache_dir=self.context.backbone_cache)
        return self._backbones[name]

    def run(self, spec: TrialSpec, reporter: Reporter) -> TrialResult:
        """Run ``spec``; never raises: failures become FAILED results with their reason."""
        start, cpu_start = time.monotonic(), time.process_time()
        mode = fidelity(spec.config)
        fit = None
        try:
            fit = _Fit(self, spec, reporter)
            fit.run()
            state, reason = TrialState.COMPLETE, ""
        except TrialSuperseded as exc:  # the trial's files belong to the newer attempt
            return TrialResult(spec.trial_id, TrialState.FAILED, reason=str(exc),
                               seconds=time.monotonic() - start, fidelity=mode)
        except TrialPruned as exc:
            state, reason = TrialState.PRUNED, str(exc) or "stopped early"
        except NonFiniteLoss as exc:
            state, reason = TrialState.FAILED, str(exc)
        except MemoryError:
            state, reason = TrialState.FAILED, "out of memory"
        except Exception as exc:  # a broken trial must not end the search
            state, reason = TrialState.FAILED, _describe(exc)
            log.warning("trial %s failed: %s", spec.trial_id, reason, exc_info=True)
        artifact = fit.save_best() if fit is not None else None
        best = fit.best if fit is not None else None
        if fit is not None:  # resource use, kept with the trial's record
            fit.extra["cpu_s"] = round(time.process_time() - cpu_start, 2)
            fit.extra["peak_rss_mb"] = _peak_rss_mb()
        return TrialResult(
            trial_id=spec.trial_id, state=state,
            score=best[1] if best else None, best_epoch=best[0] if best else None,
            history=tuple(fit.history) if fit else (), reason=reason,
            seconds=time.monotonic() - start, fidelity=mode, artifact=artifact,
            extra=fit.extra if fit else {})


def _peak_rss_mb() -> float:
    """Peak resident memory of this worker process so far, in MiB (0 where unknown)."""
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
    except (ImportError, OSError):
        return 0.0


def _describe(exc: Exception) -> str:
    name = type(exc).__name__
    if "ResourceExhausted" in name or "OOM" in str(exc)[:200]:
        return f"out of memory: {str(exc).splitlines()[0][:200]}"
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return f"{name}: {first}" if first else name


class _Fit:
    """One training run: data for the trial's fidelity, the model, the loop."""

    def __init__(self, runner: TrialRunner, spec: TrialSpec, reporter: Reporter) -> None:
        self.runner, self.spec, self.config, self.reporter = runner, spec, spec.config, reporter
        self.history: list[EpochMetrics] = []
        self.best: tuple[int, float] | None = None
        self.best_weights: list[np.ndarray] | None = None
        self.extra: dict[str, float] = {}
        self.trainable = None
        self.heldout: tuple[np.ndarray, np.ndarray] | None = None
        self.pending: dict = {}  # live changes received, applied at the next epoch boundary
        self.tuned_next: dict | None = None  # applied changes the next epoch's report carries

    def run(self) -> None:
        import tf_keras as keras

        from transfer_automl.training import _inputs, _probe
        from transfer_automl.training._assemble import build_trainable

        keras.utils.set_random_seed(self.spec.seed)
        backbone = self.runner.backbone(self.config["backbone"])
        n_classes = len(self.runner.dataset.class_names)
        data = _inputs.trial_inputs(self.runner, backbone, self.spec, self.extra)
        members, top_vars = [], []
        for i in range(data.n_members):
            width = data.arrays[0][0].shape[1] if fused_backbones(self.config) else None
            trainable, top = build_trainable(backbone, self.config, n_classes,
                                             data.boundary_shape, width)
            if self.trainable is None:  # the first fold's model is the one saved
                self.trainable = trainable
            top_vars += top
            members.append(Member(data.wrap(trainable), trainable, top,
                                  rows=data.rows[i] if data.rows else None))
        if len(members) > 1:
            self.extra["cv_folds"] = float(len(members))
        if self.config["optimizer"] == "lbfgs":
            if data.arrays is None or top_vars or not exact_solvable(self.config):
                raise ValueError("optimizer lbfgs solves linear heads on cached features only "
                                 "(n_dense 0, unfrozen_blocks 0, augment 0)")
            solve_exact(self, members, data.arrays, n_classes)
            return
        if data.arrays is not None and not top_vars:
            self._load_init()
            loop_stacked(self, members, data, n_classes)
            return
        for member, (train, val) in zip(members, data.datasets()):
            member.train, member.val = train, val
        # The unfrozen blocks are the loaded backbone's own variables: put them back after
        # the trial so the next trial in this process starts from the pretrained weights.
        top_vars = list({id(v): v for v in top_vars}.values())
        pretrained = [v.numpy() for v in top_vars]

        def restore() -> None:
            for var, value in zip(top_vars, pretrained):
                var.assign(value)

        try:
            self._load_init()
            if _probe.applies(self.config, self.spec):  # each fold's head from its own rows
                _probe.probe_heads(self, members, backbone, n_classes)
            if top_vars and len(members) > 1:
                # Folds share the unfrozen blocks' variables, so they train one after another,
                # the first fold last: the weights kept are then the first fold's, the only
                # fold on which a retune of this checkpoint is scored (see trial_inputs).
                loop_sequential(self, members[1:] + members[:1], n_classes, restore)
            else:
                loop(self, members, n_classes)
        finally:
            restore()

    def _load_init(self) -> None:
        """Start from the parent's checkpoint (a retune) instead of fresh weights."""
        if not self.spec.init_weights:
            return
        with np.load(self.spec.init_weights) as saved:
            weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        shapes = [w.shape for w in weights]
        if shapes == [w.shape for w in self.trainable.get_weights()]:
            self.trainable.set_weights(weights)
            self.extra["init"] = 1.0  # every trained weight, unfrozen blocks included
            return
        # The unfrozen blocks changed: the head (the last weights saved) carries over, the
        # blocks the parent did not train start from the pretrained weights.
        head = self.trainable if self.config["unfrozen_blocks"] == 0 \
            else self.trainable.get_layer("head")
        n = len(head.get_weights())
        if n > len(weights) or shapes[-n:] != [w.shape for w in head.get_weights()]:
            raise ValueError(f"checkpoint {self.spec.init_weights} does not fit this model "
                             "(the head architecture or pooling changed)")
        head.set_weights(weights[-n:])
        self.extra["init"] = 0.5  # the head only

    def on_epoch(self, metrics: EpochMetrics, heldout: Callable | None = None) -> None:
        """Record an epoch; if it is the best so far, keep its weights and ``heldout()``, the
        held-out rows and their predicted probabilities at this epoch."""
        self.history.append(metrics)
        if not all(math.isfinite(v) for v in (metrics.loss, metrics.val_loss)):
            raise NonFiniteLoss(f"non-finite loss at epoch {metrics.epoch} (loss={metrics.loss})")
        refit = self.spec.refit_epochs is not None  # a refit keeps its last epoch
        if refit or self.best is None or metrics.val_accuracy > self.best[1]:
            self.best = (metrics.epoch, metrics.val_accuracy)
            self.best_weights = self.trainable.get_weights()
            if heldout is not None and not refit:
                self.heldout = heldout()
        changes = self.reporter(metrics)
        if changes:
            self.pending.update(changes)

    def poll_changes(self) -> None:
        """Ask for live changes between reports (a reporter without ``poll`` has none)."""
        poll = getattr(self.reporter, "poll", None)
        changes = poll() if poll is not None else None
        if changes:
            self.pending.update(changes)

    def tuned(self) -> dict | None:
        """The live changes applied since the last report (for the next report), once."""
        tuned, self.tuned_next = self.tuned_next, None
        return tuned

    def save_best(self) -> str | None:
        if self.best_weights is None:
            return None
        out = Path(self.runner.context.run_dir) / "trials" / self.spec.trial_id
        out.mkdir(parents=True, exist_ok=True)
        path = out / "weights.npz"
        np.savez(path, *self.best_weights)
        if self.heldout is not None:  # what ensembles are built from (see ensemble.py)
            rows, proba = self.heldout
            np.savez(out / HELDOUT_FILE, rows=rows, proba=proba)
        return str(path)
