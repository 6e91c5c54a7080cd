"""The ten-line baseline of ``baseline_gain``, and how exported models are sized and timed.

The baseline is what an expert writes first: logistic regression (scikit-learn) on frozen,
average-pooled EfficientNet-Lite0 features at 224 px, its C chosen by 5-fold cross-validation
on the training images. Its coefficients are then written as a product model (the default
linear head on Lite0), so its latency is measured through the same serving path as the
product's exported model.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

CS = tuple(float(c) for c in np.logspace(-3, 2, 11))
LATENCY_IMAGES = 64


def baseline(data, cache: Path, seed: int, out_dir: Path) -> dict:
    """Fit the baseline on training + validation images, score it on the test images, and
    export it; its test accuracy, chosen C, seconds and exported model directory."""
    from pretrained import load_backbone
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    from transfer_automl.space import default_space
    from transfer_automl.training import extract_features, frozen_part, select_pooled
    from transfer_automl.trial_model import export_trial

    t0 = time.monotonic()
    backbone = load_backbone("efficientnet_lite0", cache_dir=cache / "backbones")
    config = {**default_space().default, "backbone": "efficientnet_lite0", "resolution": 224,
              "pooling": "avg", "unfrozen_blocks": 0, "n_dense": 0, "optimizer": "lbfgs",
              "augment": 0.0}
    feats = extract_features(frozen_part(backbone, config), data, 224)
    feats = {k: select_pooled(v, backbone, "avg") for k, v in feats.items()}
    x = np.concatenate([feats["train"], feats["val"]])
    y = np.concatenate([data.train.labels, data.val.labels])
    folds = StratifiedKFold(5, shuffle=True, random_state=seed)
    search = GridSearchCV(LogisticRegression(max_iter=5000), {"C": list(CS)}, cv=folds)
    search.fit(x, y)
    clf = search.best_estimator_
    accuracy = float(clf.score(feats["test"], data.test.labels))
    seconds = time.monotonic() - t0
    weights = out_dir / "baseline_weights.npz"
    np.savez(weights, *_head_weights(clf, len(data.class_names)))
    exported = export_trial(config, weights, data.class_names, out_dir / "baseline_model",
                            backbone_cache=cache / "backbones", metadata={"baseline": True})
    return {"accuracy": accuracy, "C": float(search.best_params_["C"]), "seconds": seconds,
            "model": exported}


def _head_weights(clf, n_classes: int) -> list[np.ndarray]:
    """Logistic regression's coefficients as the linear head's kernel and bias (a binary
    model's one logit becomes two whose difference it is)."""
    coef, intercept = clf.coef_, clf.intercept_
    if n_classes == 2 and coef.shape[0] == 1:
        coef = np.concatenate([-coef / 2, coef / 2])
        intercept = np.concatenate([-intercept / 2, intercept / 2])
    return [coef.T.astype(np.float32), intercept.astype(np.float32)]


def latency_ms(model, paths) -> float:
    """Median milliseconds per image of ``model.predict_proba`` over batches of the given
    images, after one warm-up batch."""
    paths = list(paths)[:LATENCY_IMAGES]
    model.predict_proba(paths[:8])
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        model.predict_proba(paths)
        times.append((time.perf_counter() - t0) / len(paths) * 1000)
    return float(np.median(times))


def size_mb(path: Path) -> float:
    """Size on disk of an exported model's directory, in MB."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 1e6
