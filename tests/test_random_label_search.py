"""A whole search on a folder whose classes are random: its best score stays near chance.

A search reports the maximum over its trials (and each trial the maximum over its epochs),
so its best validation score is optimistic even without a leak: the allowance here is the
binomial quantile of chance at level 1 - 0.001 / trials (a Bonferroni bound over trials;
the epochs of one trial are strongly correlated and share the bound). With 175 images
scored by 5-fold cross-validation, 7 classes (chance 0.143) and 8 trials, that is 0.246.
"""

from __future__ import annotations

import pytest
from scipy.stats import binom

from tests.training.test_random_labels import write_random_label_folder
from transfer_automl import fit_auto
from transfer_automl.options import SearchOptions, TrackingOptions
from transfer_automl.space import default_space

TRIALS, N_CLASSES = 8, 7


@pytest.fixture(scope="module")
def search(tmp_path_factory, cache_root):
    folder = write_random_label_folder(tmp_path_factory.mktemp("random-labels"),
                                       n_classes=N_CLASSES, per_class=30)
    space = default_space().fix(backbone="efficientnet_lite0", resolution=224, augment=0.0,
                                epochs=6)
    return fit_auto(folder, max_trials=TRIALS, time_budget_s=900, seed=0, kb=False,
                    cache_dir=cache_root, search=SearchOptions(space=space),
                    tracking=TrackingOptions(runs_dir=tmp_path_factory.mktemp("runs")))


def test_search_on_random_labels_reports_chance(search):
    rows = [r for r in search.leaderboard if r.get("score") is not None]
    assert len(rows) >= TRIALS - 1, search.leaderboard
    assert search.data_report["n_images"] == 210
    n = 175  # the 70/15/15 split's training + validation images, each held out once by CV
    bound = float(binom.ppf(1 - 0.001 / TRIALS, n, 1 / N_CLASSES)) / n
    print(f"random labels: best validation {search.best_score:.3f} (bound {bound:.3f}), "
          f"test {search.test_score:.3f}")
    assert search.best_score <= bound, (
        f"best validation {search.best_score:.3f} on random labels, above {bound:.3f}: "
        + ", ".join(f"{r['trial']}={r['score']:.3f}" for r in rows))
    # the exported model knows nothing either: test accuracy at chance too
    assert search.test_score <= float(binom.ppf(0.999, 35, 1 / N_CLASSES)) / 35
