"""Labels that carry no signal must score at chance, whatever the trial kind.

A leak between a fold's training and held-out rows (a solver started from another fold's
solution, statistics fitted over every fold, weights carried from one fold to the next)
shows up here as a validation score far above chance: the trial memorised its held-out
images. Each image is drawn independently of its class folder, so no model can beat chance
on held-out images except by having seen them.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binom

from transfer_automl.data import load_dataset
from transfer_automl.trial import TrialContext
from transfer_automl.space import default_space
from transfer_automl.trial import TrialSpec, TrialState

N_CLASSES, PER_CLASS, RES = 7, 30, 224
CHANCE = 1.0 / N_CLASSES


def write_random_label_folder(root, n_classes=N_CLASSES, per_class=PER_CLASS, size=64, seed=0):
    """Images of varied colour and texture, each put in a class folder at random."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(n_classes):
        (root / f"class_{c}").mkdir(parents=True, exist_ok=True)
    for i in range(n_classes * per_class):
        base = rng.integers(0, 256, 3)
        grain = rng.integers(2, 16)
        noise = rng.normal(0, 60, (size // grain + 1, size // grain + 1, 3))
        noise = np.kron(noise, np.ones((grain, grain, 1)))[:size, :size]
        img = (base + noise).clip(0, 255).astype(np.uint8)
        # every class gets the same number of images; which images is random
        Image.fromarray(img).save(root / f"class_{i % n_classes}" / f"{i}.png")
    return root


def chance_bound(n: int, p: float = CHANCE, level: float = 0.999) -> float:
    """Accuracy that ``n`` guesses at chance ``p`` exceed with probability ``1 - level``."""
    return float(binom.ppf(level, n, p)) / n


@pytest.fixture(scope="module")
def random_runner(tmp_path_factory, cache_root):
    from transfer_automl.training import TrialRunner

    work = tmp_path_factory.mktemp("random-run")
    folder = write_random_label_folder(tmp_path_factory.mktemp("random-labels"))
    data = load_dataset(folder, workdir=work / "datasets")
    manifest = data.save_manifest(work / "dataset.json")
    ctx = TrialContext(str(manifest), str(work), str(work / "features"),
                       str(cache_root / "backbones"), cv_folds=5, fold_seed=0)
    return TrialRunner(ctx)


# Every trial kind, each set where it memorises best: weak or no penalty, many epochs.
KINDS = {
    "exact linear head": {"optimizer": "lbfgs", "pooling": "max", "weight_decay": 1.5e-6},
    "exact linear head, avg+max": {"optimizer": "lbfgs", "pooling": "avgmax",
                                   "weight_decay": 1e-6},
    "adam linear head": {"optimizer": "adam", "learning_rate": 1e-2, "weight_decay": 1e-6,
                         "head_dropout": 0.0, "epochs": 30},
    "sgd linear head": {"optimizer": "sgd", "learning_rate": 0.05, "weight_decay": 1e-6,
                        "head_dropout": 0.0, "epochs": 30},
    "mlp head with batch-norm": {"optimizer": "adamw", "learning_rate": 3e-3, "n_dense": 1,
                                 "units_1": 256, "dropout_1": 0.0, "batchnorm_1": True,
                                 "head_dropout": 0.0, "weight_decay": 1e-6, "epochs": 20},
    "fine-tuning on cached activations": {"optimizer": "adam", "learning_rate": 1e-2,
                                          "unfrozen_blocks": 1, "backbone_lr_mult": 1.0,
                                          "head_dropout": 0.0, "weight_decay": 1e-6,
                                          "epochs": 8},
    "augmented images": {"optimizer": "adam", "learning_rate": 3e-3, "augment": 0.3,
                         "head_dropout": 0.0, "weight_decay": 1e-6, "epochs": 4},
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_random_labels_score_at_chance(random_runner, kind):
    config = {**default_space().default, "resolution": RES, "batch_size": 32, **KINDS[kind]}
    spec = TrialSpec(f"rl-{len(kind)}-{kind[:4]}", 0, config, "test", seed=0)
    result = random_runner.run(spec, lambda metrics: None)
    assert result.state == TrialState.COMPLETE, result.reason
    data = random_runner.dataset
    folds = int(result.extra.get("cv_folds", 0))
    # Cross-validation scores each training + validation image once; a holdout, the
    # validation split. The trial reports its best epoch: a maximum over epochs, which
    # the 0.999 level leaves room for (the curve of one model is strongly correlated).
    n = len(data.train) + len(data.val) if folds else len(data.val)
    if kind == "augmented images":
        assert folds == 0
    else:
        assert folds == 5, "the trial kind should be cross-validated on this dataset"
    # Training accuracy well above the bound shows the trial could memorise: the test is live.
    train_acc = max(m.accuracy for m in result.history)
    bound = chance_bound(n)
    assert result.score <= bound, (
        f"{kind}: validation accuracy {result.score:.3f} on random labels, above the "
        f"{bound:.3f} that chance exceeds once in 1000 (n={n}, train accuracy {train_acc:.3f})")
    if kind != "augmented images":
        assert train_acc > bound + 0.1, f"{kind} did not fit its training rows ({train_acc:.3f})"


def test_a_retune_of_a_cross_validated_fine_tune_scores_at_chance(random_runner):
    """A retune continues the parent's checkpoint and is scored on the first fold only, so
    the checkpoint must be the first fold's model: any other fold's trained on those rows."""
    config = {**default_space().default, "resolution": RES, "batch_size": 32,
              **KINDS["fine-tuning on cached activations"]}
    parent = random_runner.run(TrialSpec("rl-parent", 0, config, "test", seed=0),
                               lambda metrics: None)
    assert parent.state == TrialState.COMPLETE and parent.extra["cv_folds"] == 5
    child_spec = TrialSpec("rl-child", 1, {**config, "epochs": 1, "learning_rate": 1e-5},
                           "retune", seed=0, parent="rl-parent", init_weights=parent.artifact)
    child = random_runner.run(child_spec, lambda metrics: None)
    assert child.state == TrialState.COMPLETE, child.reason
    assert child.extra["init"] == 1.0 and child.extra.get("cv_folds", 1) == 1
    n = len(random_runner.dataset.train) + len(random_runner.dataset.val)
    bound = chance_bound(n // 5 + 1)
    assert child.score <= bound, f"retune scored {child.score:.3f} > {bound:.3f} on one fold"
