"""fit_auto through the Spark executor (pyspark local[2]) on a tiny generated folder."""

import pytest

from transfer_automl import fit_auto
from transfer_automl.options import SearchOptions, TrackingOptions
from transfer_automl.pruners import Pruner
from transfer_automl.space import default_space


class StopAfterTwoEpochs(Pruner):
    """Stops every trial but the first after its second epoch (to see a stop reason)."""

    def prune(self, trial, finished):
        if trial.spec.number > 0 and len(trial.epochs) >= 2:
            return "stopped by test pruner"
        return None


@pytest.mark.slow
def test_fit_auto_on_spark_stops_a_trial_early(tmp_path, cache_root, colour_folder):
    space = default_space().fix(resolution=64, epochs=4)
    result = fit_auto(colour_folder, executor="local[2]", max_trials=3, time_budget_s=600,
                      kb=False, cache_dir=cache_root,
                      search=SearchOptions(space=space, pruner=StopAfterTwoEpochs(),
                                           multi_fidelity=False),
                      tracking=TrackingOptions(runs_dir=tmp_path / "runs"))
    statuses = {row["trial"]: (row["status"], row["reason"]) for row in result.leaderboard}
    assert len(statuses) == 3
    assert statuses["t000"][0] == "complete"
    assert ("pruned", "stopped by test pruner") in statuses.values()
    assert result.test_score is not None
