"""Run one trial inside a worker: load data and backbone, train, report, save the best epoch."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from collections.abc import Callable
from pathlib import Path

import numpy as np

from transfer_automl.errors import NonFiniteLoss, TrialPruned
from transfer_automl.trial import TrialContext
from transfer_automl.space import exact_solvable, fidelity
from transfer_automl.trial import EpochMetrics, TrialResult, TrialSpec, TrialState

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

    def run(self) -> None:
        import tf_keras as keras

        from transfer_automl.training import _inputs
        from transfer_automl.training._assemble import build_trainable

        keras.utils.set_random_seed(self.spec.seed)
        backbone = self.runner.backbone(self.config["backbone"])
        n_classes = len(self.runner.dataset.class_names)
        data = _inputs.trial_inputs(self.runner, backbone, self.spec, self.extra)
        members, top_vars = [], []
        for i in range(data.n_members):
            trainable, top = build_trainable(backbone, self.config, n_classes,
                                             data.boundary_shape)
            if self.trainable is None:  # the first fold's model is the one saved
                self.trainable = trainable
            top_vars += top
            members.append(_Member(data.wrap(trainable), trainable, top))
        if len(members) > 1:
            self.extra["cv_folds"] = float(len(members))
        if self.config["optimizer"] == "lbfgs":
            if data.arrays is None or top_vars or not exact_solvable(self.config):
                raise ValueError("optimizer lbfgs solves linear heads on cached features only "
                                 "(n_dense 0, unfrozen_blocks 0, augment 0)")
            _solve_exact(self, members, data.arrays, n_classes)
            return
        if data.arrays is not None and not top_vars:
            self._load_init()
            _loop_stacked(self, members, data, n_classes)
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
            if top_vars and len(members) > 1:
                # Folds share the unfrozen blocks' variables, so they train one after another,
                # the first fold last: the weights kept are then the first fold's, the only
                # fold on which a retune of this checkpoint is scored (see trial_inputs).
                _loop_sequential(self, members[1:] + members[:1], n_classes, restore)
            else:
                _loop(self, members, n_classes)
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

    def on_epoch(self, metrics: EpochMetrics) -> None:
        self.history.append(metrics)
        if not all(math.isfinite(v) for v in (metrics.loss, metrics.val_loss)):
            raise NonFiniteLoss(f"non-finite loss at epoch {metrics.epoch} (loss={metrics.loss})")
        refit = self.spec.refit_epochs is not None  # a refit keeps its last epoch
        if refit or self.best is None or metrics.val_accuracy > self.best[1]:
            self.best = (metrics.epoch, metrics.val_accuracy)
            self.best_weights = self.trainable.get_weights()
        self.reporter(metrics)

    def save_best(self) -> str | None:
        if self.best_weights is None:
            return None
        out = Path(self.runner.context.run_dir) / "trials" / self.spec.trial_id
        out.mkdir(parents=True, exist_ok=True)
        path = out / "weights.npz"
        np.savez(path, *self.best_weights)
        return str(path)


@dataclass
class _Member:
    """One model trained in a trial: the only one, or one cross-validation fold."""

    model: object
    trainable: object
    top_vars: list
    train: object = None
    val: object = None


def _steps(member: _Member, config, n_classes: int):
    """Compiled train and eval steps with two optimizers (head, unfrozen blocks)."""
    import tensorflow as tf
    import tf_keras as keras

    from transfer_automl.training._model import build_optimizer

    model, top_vars = member.model, member.top_vars
    top_ids = {id(v) for v in top_vars}
    head_vars = [v for v in member.trainable.trainable_variables if id(v) not in top_ids]
    head_opt = build_optimizer(config)
    top_opt = build_optimizer(config, config["backbone_lr_mult"]) if top_vars else None
    loss_fn = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=config["label_smoothing"])

    @tf.function(reduce_retracing=True)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = loss_fn(tf.one_hot(y, n_classes), logits)
            total = loss + tf.add_n(model.losses) if model.losses else loss
        grads = tape.gradient(total, head_vars + top_vars)
        head_opt.apply_gradients(zip(grads[:len(head_vars)], head_vars))
        if top_vars:
            top_opt.apply_gradients(zip(grads[len(head_vars):], top_vars))
        hits = tf.reduce_sum(tf.cast(tf.argmax(logits, -1) == y, tf.float32))
        return loss * tf.cast(tf.shape(y)[0], tf.float32), hits

    @tf.function(reduce_retracing=True)
    def eval_step(x, y):
        logits = model(x, training=False)
        loss = loss_fn(tf.one_hot(y, n_classes), logits)
        hits = tf.reduce_sum(tf.cast(tf.argmax(logits, -1) == y, tf.float32))
        return loss * tf.cast(tf.shape(y)[0], tf.float32), hits

    return train_step, eval_step


def _loop(fit: _Fit, members: list[_Member], n_classes: int) -> None:
    """Train every member one epoch at a time; report the members' mean metrics per epoch."""
    steps = [_steps(m, fit.config, n_classes) for m in members]
    for epoch in range(1, (fit.spec.refit_epochs or fit.config["epochs"]) + 1):
        t0 = time.monotonic()
        stats = [(*_run_epoch(train_step, m.train), *_run_epoch(eval_step, m.val))
                 for m, (train_step, eval_step) in zip(members, steps)]
        loss, acc, val_loss, val_acc = (float(v) for v in np.mean(stats, axis=0))
        fit.on_epoch(EpochMetrics(fit.spec.trial_id, epoch, loss, acc, val_loss, val_acc,
                                  time.monotonic() - t0))


def _loop_sequential(fit: _Fit, members: list[_Member], n_classes: int, restore) -> None:
    """Cross-validation for trials that unfreeze blocks: each fold trains from the pretrained
    weights in turn; the mean curve is reported once every fold has finished. The weights
    kept are the last fold's final ones (``fit.trainable`` must be that fold's model; the
    exported model is refit on all images anyway). A fold's unfrozen blocks start from the
    pretrained weights, never from another fold's.
    """
    epochs = fit.spec.refit_epochs or fit.config["epochs"]
    curves = []
    for member in members:
        restore()
        train_step, eval_step = _steps(member, fit.config, n_classes)
        rows = []
        for _ in range(epochs):
            t0 = time.monotonic()
            row = (*_run_epoch(train_step, member.train), *_run_epoch(eval_step, member.val))
            if not all(math.isfinite(v) for v in row):
                raise NonFiniteLoss(f"non-finite loss at epoch {len(rows) + 1} (loss={row[0]})")
            rows.append((*row, time.monotonic() - t0))
        curves.append(rows)
    for epoch, values in enumerate(np.mean(curves, axis=0), start=1):
        loss, acc, val_loss, val_acc, seconds = (float(v) for v in values)
        fit.on_epoch(EpochMetrics(fit.spec.trial_id, epoch, loss, acc, val_loss, val_acc,
                                  seconds * len(members)))


def _solve_exact(fit: _Fit, members: list[_Member], arrays, n_classes: int) -> None:
    """Fit each member's linear head with L-BFGS; report the mean metrics as one epoch."""
    from transfer_automl.training._exact import evaluate, fit_linear

    t0 = time.monotonic()
    rows, iterations = [], []
    wd, smoothing = fit.config["weight_decay"], fit.config["label_smoothing"]
    for member, (x_train, y_train, x_val, y_val) in zip(members, arrays):
        # every fold from zeros: nothing fitted on a fold's held-out rows may reach it
        solution = fit_linear(x_train, y_train, n_classes, wd, smoothing)
        logits = member.trainable.get_layer("logits")
        logits.set_weights([solution.kernel, solution.bias])
        rows.append((*evaluate(solution, x_train, y_train, smoothing),
                     *evaluate(solution, x_val, y_val, smoothing)))
        iterations.append(solution.iterations)
    fit.extra["lbfgs_iterations"] = float(max(iterations))
    loss, acc, val_loss, val_acc = (float(v) for v in np.mean(rows, axis=0))
    fit.on_epoch(EpochMetrics(fit.spec.trial_id, 1, loss, acc, val_loss, val_acc,
                              time.monotonic() - t0))


def _loop_stacked(fit: _Fit, members: list[_Member], data, n_classes: int) -> None:
    """Train the heads of every fold together, one compiled step for all of them.

    Each head sees only its own fold's training rows and is scored on its own held-out rows,
    exactly as if the folds ran one after another; but one step function serves all folds,
    so a 5-fold trial traces once and pays Python's per-step overhead once, not five times.
    An epoch is the same number of steps for every fold: each fold's shuffled rows are cut
    into that many near-equal batches (sizes differ by at most one row).
    """
    import tensorflow as tf
    import tf_keras as keras

    from transfer_automl.training._model import build_optimizer

    config = fit.config
    heads = [m.trainable for m in members]
    variables = [v for h in heads for v in h.trainable_variables]
    optimizer = build_optimizer(config)  # per-variable state: one optimizer serves every head
    loss_fn = keras.losses.CategoricalCrossentropy(
        from_logits=True, label_smoothing=config["label_smoothing"])
    folds = [(tf.constant(xt, tf.float32), tf.constant(yt, tf.int64),
              tf.constant(xv, tf.float32), tf.constant(yv, tf.int64))
             for xt, yt, xv, yv in data.arrays]
    n_steps = max(1, -(-max(len(a[1]) for a in data.arrays) // data.batch_size))
    rngs = [np.random.default_rng([fit.spec.seed, fold]) for fold in range(len(heads))]

    def scored(head, x, y, training):
        logits = head(x, training=training)
        loss = loss_fn(tf.one_hot(y, n_classes), logits)
        hits = tf.reduce_sum(tf.cast(tf.argmax(logits, -1) == y, tf.float32))
        return loss, hits

    # One trace each: every fold's batch has an unknown row count (batches differ by a row).
    width = data.arrays[0][0].shape[1:]
    signature = [[(tf.TensorSpec((None, *width), tf.float32), tf.TensorSpec((None,), tf.int64))
                  for _ in heads]]

    @tf.function(input_signature=signature)
    def train_step(batches):
        with tf.GradientTape() as tape:
            outs = [scored(h, x, y, True) for h, (x, y) in zip(heads, batches)]
            total = tf.add_n([loss + (tf.add_n(h.losses) if h.losses else 0.0)
                              for h, (loss, _) in zip(heads, outs)])
        optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
        return [(loss * tf.cast(tf.shape(y)[0], tf.float32), hits)
                for (loss, hits), (_, y) in zip(outs, batches)]

    @tf.function(input_signature=signature)
    def eval_step(batches):
        return [scored(h, x, y, False) for h, (x, y) in zip(heads, batches)]

    for epoch in range(1, (fit.spec.refit_epochs or config["epochs"]) + 1):
        t0 = time.monotonic()
        order = [np.array_split(rng.permutation(len(a[1])), n_steps)
                 for rng, a in zip(rngs, data.arrays)]
        sums = np.zeros((len(heads), 2))
        for step in range(n_steps):
            batches = [(tf.gather(x, idx[step]), tf.gather(y, idx[step]))
                       for (x, y, _, _), idx in zip(folds, order)]
            sums += np.array([[float(l), float(h)] for l, h in train_step(batches)])
        train = sums / np.array([[len(a[1])] for a in data.arrays])
        val = np.array([[float(l), float(h) / int(y.shape[0])] for (l, h), (_, _, _, y)
                        in zip(eval_step([(x, y) for _, _, x, y in folds]), folds)])
        loss, acc = train.mean(axis=0)
        val_loss, val_acc = val.mean(axis=0)
        fit.on_epoch(EpochMetrics(fit.spec.trial_id, epoch, float(loss), float(acc),
                                  float(val_loss), float(val_acc), time.monotonic() - t0))


def _run_epoch(step, dataset) -> tuple[float, float]:
    total_loss = total_hits = count = 0.0
    for x, y in dataset:
        loss, hits = step(x, y)
        total_loss += float(loss)
        total_hits += float(hits)
        count += int(y.shape[0])
    return total_loss / max(count, 1), total_hits / max(count, 1)
