"""What a trial trains on, by fidelity: cached pooled features, cached activations, or images."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from transfer_automl.space import Fidelity, fidelity, fused_backbones
from transfer_automl.training._assemble import frozen_part, select_pooled
from transfer_automl.training._features import SPLITS
from transfer_automl.training._pipeline import image_dataset

EXTRACT_BATCH = 32


Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # x_train, y_train, x_val, y_val


@dataclass
class TrialInputs:
    """What one trial trains and validates on, and how to wrap the trainable part for it.

    Trials on images get tf.data pipelines (``folds``). Trials on cached features or
    activations get in-memory ``arrays``, one tuple per cross-validation fold (or one for a
    holdout split); :meth:`datasets` batches them when a loop wants pipelines.
    """

    boundary_shape: tuple[int, ...] | None
    wrap: Callable
    folds: list[tuple[tf.data.Dataset, tf.data.Dataset]] | None = None
    arrays: list[Arrays] | None = None
    batch_size: int = 32
    seed: int = 0
    rows: list[np.ndarray] | None = None  # each member's held-out rows (see training.Member)

    @property
    def n_members(self) -> int:
        return len(self.arrays) if self.arrays is not None else len(self.folds)

    def datasets(self) -> list[tuple[tf.data.Dataset, tf.data.Dataset]]:
        if self.folds is None:
            self.folds = [(_array_dataset(xt, yt, self.batch_size, shuffle=True, seed=self.seed),
                           _array_dataset(xv, yv, 256)) for xt, yt, xv, yv in self.arrays]
        return self.folds


def backbone_key(backbone) -> str:
    """Identity of a backbone's weights for cache keys."""
    return f"{backbone.spec.name}@{getattr(backbone, 'digest', '')}"


def extract(frozen, dataset, resolution: int) -> dict[str, np.ndarray]:
    """Run the frozen part over every split (no augmentation)."""
    run = tf.function(lambda x: frozen(x, training=False), reduce_retracing=True)
    return {split: _forward(run, getattr(dataset, split).paths, resolution)
            for split in SPLITS if len(getattr(dataset, split))}


def _forward(run, paths, resolution: int) -> np.ndarray:
    batches = [run(x).numpy() for x, _ in image_dataset(paths, None, resolution, EXTRACT_BATCH)]
    return np.concatenate(batches).astype(np.float32)


def cached_outputs(runner, backbone, config, extra: dict) -> dict[str, np.ndarray]:
    """Frozen-part outputs for every split, from the shared cache or computed once.

    The cache holds one row per image of the folder, keyed by its content fingerprint, so
    every split seed of one dataset (repeated runs, benchmarks over seeds) shares one entry.
    """
    res, k = config["resolution"], config["unfrozen_blocks"]
    data = runner.dataset
    if runner.cache is None:  # caching disabled: every trial pays its own forward passes
        t0 = time.monotonic()
        arrays = extract(frozen_part(backbone, config), data, res)
        extra["cache_hit"], extra["features_s"] = 0.0, round(time.monotonic() - t0, 3)
        return arrays
    splits = {s: getattr(data, s) for s in SPLITS if len(getattr(data, s))}
    paths = sorted({p for part in splits.values() for p in part.paths})

    def compute() -> dict[str, np.ndarray]:
        frozen = frozen_part(backbone, config)
        run = tf.function(lambda x: frozen(x, training=False), reduce_retracing=True)
        return {"images": _forward(run, paths, res)}

    key = runner.cache.key(data.content_fingerprint or data.fingerprint, backbone_key(backbone),
                           res, k)
    t0 = time.monotonic()
    arrays, hit = runner.cache.get_or_compute(key, compute, index=paths)
    row = {p: i for i, p in enumerate(paths)}
    out = {s: arrays["images"][[row[p] for p in part.paths]] for s, part in splits.items()}
    extra["cache_hit"] = float(hit)
    extra["features_s"] = round(time.monotonic() - t0, 3)
    return out


def fused_features(runner, names, config, extra: dict) -> dict[str, np.ndarray]:
    """The pooled features of several backbones at the trial's resolution, side by side in
    the order of ``names``; each backbone's come from (or go into) its own cache entry."""
    parts, hits, seconds = [], [], 0.0
    for name in names:
        backbone = runner.backbone(name)
        side: dict = {}
        arrays = cached_outputs(runner, backbone, {**config, "backbone": name}, side)
        parts.append({s: select_pooled(a, backbone, config["pooling"])
                      for s, a in arrays.items()})
        hits.append(side["cache_hit"])
        seconds += side["features_s"]
    extra["cache_hit"], extra["features_s"] = float(min(hits)), round(seconds, 3)
    return {s: np.concatenate([p[s] for p in parts], axis=1) for s in parts[0]}


def trial_inputs(runner, backbone, spec, extra: dict) -> TrialInputs:
    """Build the inputs of ``spec``'s fidelity (see :func:`transfer_automl.space.fidelity`)."""
    config, data = spec.config, runner.dataset
    batch = config["batch_size"]
    refit = spec.refit_epochs is not None
    train_paths, train_labels = data.train.paths, data.train.labels
    if refit:
        train_paths = tuple(train_paths) + tuple(data.val.paths)
        train_labels = np.concatenate([train_labels, data.val.labels])
    if fidelity(config) is Fidelity.IMAGES:
        frozen = frozen_part(backbone, config)
        train = image_dataset(train_paths, train_labels, config["resolution"], batch,
                              shuffle=True, augment_strength=config["augment"],
                              seed=spec.seed, cache=True)
        val = image_dataset(data.val.paths, data.val.labels, config["resolution"], 64, cache=True)

        def wrap(trainable):
            import tf_keras as keras

            inputs = keras.Input(frozen.input_shape[1:])
            x = frozen(inputs, training=False)
            if config["unfrozen_blocks"] == 0:
                x = select_pooled(x, backbone, config["pooling"])
            return keras.Model(inputs, trainable(x))

        return TrialInputs(tuple(frozen.output_shape[1:]), wrap, folds=[(train, val)],
                           rows=[_val_rows(data)])
    fused = fused_backbones(config)
    if fused:
        arrays = fused_features(runner, fused, config, extra)
    else:
        arrays = cached_outputs(runner, backbone, config, extra)
    if config["unfrozen_blocks"] == 0 and not fused:
        arrays = {s: select_pooled(a, backbone, config["pooling"]) for s, a in arrays.items()}
    shape = tuple(arrays["train"].shape[1:])
    fold_seed = spec.seed if runner.context.fold_seed is None else runner.context.fold_seed
    folds = cv_folds(runner.context, data, config, refit, fold_seed)
    if folds:
        extra["cv_seed"] = float(fold_seed)
    if spec.init_weights:
        # A checkpoint of a cross-validated trial is its first fold's model: continuing it
        # is only honest on that fold's split (its held-out rows are the only ones it has
        # not trained on). The run's context gives the parent's fold count and seed.
        folds = folds[:1]
    if folds:
        x = np.concatenate([arrays["train"], arrays["val"]])
        y = np.concatenate([data.train.labels, data.val.labels])
        members = [(x[a], y[a], x[b], y[b]) for a, b in folds]
        rows = [np.asarray(b) for _, b in folds]
    else:
        train_x = np.concatenate([arrays["train"], arrays["val"]]) if refit else arrays["train"]
        members = [(train_x, np.asarray(train_labels), arrays["val"], data.val.labels)]
        rows = [_val_rows(data)]
    return TrialInputs(shape, lambda m: m, arrays=members, batch_size=batch, seed=spec.seed,
                       rows=rows)


def _val_rows(data) -> np.ndarray:
    """The validation images' positions in training + validation images (train first)."""
    return np.arange(len(data.train), len(data.train) + len(data.val))


def cv_folds(context, data, config, refit: bool, seed: int) -> list[tuple[np.ndarray, ...]]:
    """Stratified folds over training + validation images, for small datasets.

    On a few hundred images one validation split is too noisy to rank configurations, and
    trials on cached features or activations are cheap enough to train once per fold instead,
    so every trial that can be compared is compared on the same footing. Used for those two
    fidelities when ``context.cv_folds > 1`` and the training and validation images number
    at most ``context.cv_max_feature_images`` (features) or ``context.cv_max_images``
    (activations); otherwise [] (one holdout split).
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.concatenate([data.train.labels, data.val.labels])
    limit = (context.cv_max_feature_images if fidelity(config) is Fidelity.FEATURES
             else context.cv_max_images)
    if refit or fidelity(config) is Fidelity.IMAGES or context.cv_folds < 2 or len(y) > limit:
        return []
    k = min(context.cv_folds, int(np.bincount(y).min()))
    if k < 2:
        return []
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(y)), y))


def _array_dataset(x: np.ndarray, y: np.ndarray, batch: int, shuffle: bool = False,
                   seed: int = 0) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((x, np.asarray(y, np.int64)))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch).prefetch(tf.data.AUTOTUNE)
