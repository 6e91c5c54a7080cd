"""The training loops of a trial: minibatch epochs, stacked fold heads, sequential folds, and
the exact solver, each reporting one mean curve and, at the best epoch, the held-out
predictions (the out-of-fold probabilities that ensembles are built from)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from transfer_automl.errors import NonFiniteLoss
from transfer_automl.training import _tuning
from transfer_automl.trial import EpochMetrics


@dataclass
class Member:
    """One model trained in a trial: the only one, or one cross-validation fold.

    ``rows`` are the member's held-out rows, as positions in the training + validation
    images (train first, then val): where its held-out predictions belong.
    """

    model: object
    trainable: object
    top_vars: list
    train: object = None
    val: object = None
    rows: np.ndarray | None = None


def heldout(members: list["Member"], probs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Every member's held-out probabilities, put together: (rows, probabilities)."""
    rows = np.concatenate([m.rows for m in members])
    return rows, np.concatenate(probs).astype(np.float32)


def _steps(member: Member, config, n_classes: int, epochs: int = 0):
    """Compiled train and eval steps with two optimizers (head, unfrozen blocks). A member
    that fine-tunes blocks decays both learning rates along a cosine over its ``epochs``
    (its head starts from a linear probe, see ``_probe``: no warm-up is needed)."""
    import tensorflow as tf
    import tf_keras as keras

    from transfer_automl.training._model import build_optimizer

    model, top_vars = member.model, member.top_vars
    top_ids = {id(v) for v in top_vars}
    head_vars = [v for v in member.trainable.trainable_variables if id(v) not in top_ids]
    decay = _decay_steps(member.train, epochs) if top_vars else None
    head_opt = build_optimizer(config, decay_steps=decay)
    top_opt = build_optimizer(config, config["backbone_lr_mult"], decay) if top_vars else None
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
        return loss * tf.cast(tf.shape(y)[0], tf.float32), hits, tf.nn.softmax(logits, -1)

    return train_step, eval_step


def loop(fit, members: list[Member], n_classes: int) -> None:
    """Train every member one epoch at a time; report the members' mean metrics per epoch,
    and apply live changes at each epoch boundary."""
    total = fit.spec.refit_epochs or fit.config["epochs"]
    steps = [_steps(m, fit.config, n_classes, total) for m in members]
    epoch = 0
    while epoch < total:
        epoch += 1
        t0 = time.monotonic()
        stats, probs = [], []
        for m, (train_step, eval_step) in zip(members, steps):
            train = _run_epoch(train_step, m.train)
            val_loss, val_acc, prob = _run_epoch(eval_step, m.val, keep=True)
            stats.append((*train, val_loss, val_acc))
            probs.append(prob)
        loss, acc, val_loss, val_acc = (float(v) for v in np.mean(stats, axis=0))
        fit.on_epoch(EpochMetrics(fit.spec.trial_id, epoch, loss, acc, val_loss, val_acc,
                                  time.monotonic() - t0, fit.tuned()),
                     lambda: heldout(members, probs))
        changes = _tuning.take(fit, epoch)
        if changes:
            total = _tuning.total_epochs(total, epoch, changes)
            if _tuning.rebuilds(changes):
                steps = [_steps(m, fit.config, n_classes, total - epoch) for m in members]


def loop_sequential(fit, members: list[Member], n_classes: int, restore) -> None:
    """Cross-validation for trials that unfreeze blocks: each fold trains from the pretrained
    weights in turn; the mean curve is reported once every fold has finished. The weights
    kept are the last fold's final ones (``fit.trainable`` must be that fold's model; the
    exported model is refit on all images anyway). A fold's unfrozen blocks start from the
    pretrained weights, never from another fold's.
    """
    epochs = fit.spec.refit_epochs or fit.config["epochs"]
    base = dict(fit.config)
    # live changes hold from their epoch on in the fold training when they came and in the
    # folds after it: {first epoch: (fold, changes)}
    later: dict[int, tuple[int, dict]] = {}
    curves, probs = [], []  # probs[fold][epoch]: that fold's held-out probabilities
    for index, member in enumerate(members):
        restore()
        config, total = dict(base), epochs
        train_step, eval_step = _steps(member, config, n_classes, total)
        rows, fold_probs = [], []
        while len(rows) < total:
            epoch = len(rows) + 1
            if epoch in later and later[epoch][0] < index:
                changes = later[epoch][1]
                config = {**config, **{k: v for k, v in changes.items() if k != "epochs_left"}}
                total = _tuning.total_epochs(total, epoch - 1, changes)
                train_step, eval_step = _steps(member, config, n_classes, total - epoch + 1)
            t0 = time.monotonic()
            train = _run_epoch(train_step, member.train)
            val_loss, val_acc, prob = _run_epoch(eval_step, member.val, keep=True)
            row = (*train, val_loss, val_acc)
            if not all(math.isfinite(v) for v in row):
                raise NonFiniteLoss(f"non-finite loss at epoch {len(rows) + 1} (loss={row[0]})")
            rows.append((*row, time.monotonic() - t0))
            fold_probs.append(prob)
            fit.poll_changes()
            changes = _tuning.take(fit, epoch, member.trainable)
            if changes:
                later[epoch + 1] = (index, changes)
                config = dict(fit.config)
                total = _tuning.total_epochs(total, epoch, changes)
                if _tuning.rebuilds(changes):
                    train_step, eval_step = _steps(member, config, n_classes, total - epoch)
        curves.append(rows)
        probs.append(fold_probs)
    # a change of the epoch count leaves folds of different lengths: report the epochs all
    # of them ran
    common = min(len(c) for c in curves)
    tuned = {e: {**c, "from_epoch": e} for e, (_, c) in later.items()}
    for epoch, values in enumerate(np.mean([c[:common] for c in curves], axis=0), start=1):
        loss, acc, val_loss, val_acc, seconds = (float(v) for v in values)
        fit.on_epoch(EpochMetrics(fit.spec.trial_id, epoch, loss, acc, val_loss, val_acc,
                                  seconds * len(members), tuned.get(epoch)),
                     lambda e=epoch: heldout(members, [p[e - 1] for p in probs]))
    fit.tuned_next = None


def solve_exact(fit, members: list[Member], arrays, n_classes: int) -> None:
    """Fit each member's linear head with L-BFGS; report the mean metrics as one epoch."""
    from transfer_automl.training._exact import evaluate, fit_linear

    t0 = time.monotonic()
    rows, iterations, probs = [], [], []
    wd, smoothing = fit.config["weight_decay"], fit.config["label_smoothing"]
    for member, (x_train, y_train, x_val, y_val) in zip(members, arrays):
        # every fold from zeros: nothing fitted on a fold's held-out rows may reach it
        solution = fit_linear(x_train, y_train, n_classes, wd, smoothing)
        logits = member.trainable.get_layer("logits")
        logits.set_weights([solution.kernel, solution.bias])
        rows.append((*evaluate(solution, x_train, y_train, smoothing),
                     *evaluate(solution, x_val, y_val, smoothing)))
        iterations.append(solution.iterations)
        probs.append(_softmax(np.asarray(x_val, np.float64) @ solution.kernel + solution.bias))
    fit.extra["lbfgs_iterations"] = float(max(iterations))
    loss, acc, val_loss, val_acc = (float(v) for v in np.mean(rows, axis=0))
    fit.on_epoch(EpochMetrics(fit.spec.trial_id, 1, loss, acc, val_loss, val_acc,
                              time.monotonic() - t0), lambda: heldout(members, probs))


def loop_stacked(fit, members: list[Member], data, n_classes: int) -> None:
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
        return loss, hits, logits

    # One trace each: every fold's batch has an unknown row count (batches differ by a row).
    width = data.arrays[0][0].shape[1:]
    signature = [[(tf.TensorSpec((None, *width), tf.float32), tf.TensorSpec((None,), tf.int64))
                  for _ in heads]]

    def trainer(optimizer):  # per-variable state: one optimizer serves every head
        @tf.function(input_signature=signature)
        def train_step(batches):
            with tf.GradientTape() as tape:
                outs = [scored(h, x, y, True) for h, (x, y) in zip(heads, batches)]
                total = tf.add_n([loss + (tf.add_n(h.losses) if h.losses else 0.0)
                                  for h, (loss, _, _) in zip(heads, outs)])
            optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
            return [(loss * tf.cast(tf.shape(y)[0], tf.float32), hits)
                    for (loss, hits, _), (_, y) in zip(outs, batches)]
        return train_step

    train_step = trainer(build_optimizer(config))

    @tf.function(input_signature=signature)
    def eval_step(batches):
        return [(loss, hits, tf.nn.softmax(logits, -1))
                for loss, hits, logits in (scored(h, x, y, False) for h, (x, y)
                                           in zip(heads, batches))]

    total, epoch = fit.spec.refit_epochs or config["epochs"], 0
    while epoch < total:
        epoch += 1
        t0 = time.monotonic()
        order = [np.array_split(rng.permutation(len(a[1])), n_steps)
                 for rng, a in zip(rngs, data.arrays)]
        sums = np.zeros((len(heads), 2))
        for step in range(n_steps):
            batches = [(tf.gather(x, idx[step]), tf.gather(y, idx[step]))
                       for (x, y, _, _), idx in zip(folds, order)]
            sums += np.array([[float(l), float(h)] for l, h in train_step(batches)])
        train = sums / np.array([[len(a[1])] for a in data.arrays])
        evaluated = eval_step([(x, y) for _, _, x, y in folds])
        val = np.array([[float(l), float(h) / int(y.shape[0])] for (l, h, _), (_, _, _, y)
                        in zip(evaluated, folds)])
        loss, acc = train.mean(axis=0)
        val_loss, val_acc = val.mean(axis=0)
        fit.on_epoch(EpochMetrics(fit.spec.trial_id, epoch, float(loss), float(acc),
                                  float(val_loss), float(val_acc), time.monotonic() - t0,
                                  fit.tuned()),
                     lambda out=evaluated: heldout(members, [p.numpy() for _, _, p in out]))
        changes = _tuning.take(fit, epoch)
        if changes:
            total = _tuning.total_epochs(total, epoch, changes)
            if _tuning.rebuilds(changes):
                train_step = trainer(build_optimizer(fit.config))


def _run_epoch(step, dataset, keep: bool = False):
    """Mean loss and accuracy of one pass; with ``keep``, also the probabilities, in order."""
    total_loss = total_hits = count = 0.0
    kept = []
    for x, y in dataset:
        loss, hits, *prob = step(x, y)
        total_loss += float(loss)
        total_hits += float(hits)
        count += int(y.shape[0])
        if keep:
            kept.append(prob[0].numpy())
    means = total_loss / max(count, 1), total_hits / max(count, 1)
    return (*means, np.concatenate(kept) if kept else np.zeros((0, 0), np.float32)) \
        if keep else means


def _decay_steps(dataset, epochs: int) -> int | None:
    """Optimizer steps over ``epochs`` passes of ``dataset`` (None when its length is not
    known: the learning rate then stays constant)."""
    n = int(dataset.cardinality()) if dataset is not None else -1
    return n * epochs if n > 0 and epochs > 0 else None


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
