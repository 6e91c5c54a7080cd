"""The README's Python example, saved as a plain script without a main guard, runs to a model.

Spawned worker processes re-import the parent's main module; without care, every worker of
such a script would start the script's search again and die, and so would every trial.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """\
from transfer_automl import SearchOptions, TrackingOptions, fit_auto, load_model
from transfer_automl.space import default_space

r = fit_auto({folder!r}, max_trials=2, time_budget_s=600, kb={kb!r}, seed=0,
             cache_dir={cache!r},
             search=SearchOptions(space=default_space().fix(resolution=64, epochs=2)),
             tracking=TrackingOptions(runs_dir={runs!r}))
r.export({out!r})
print("LABEL", load_model({out!r}).predict([{image!r}])[0])
print("TEST", r.test_score)
"""


@pytest.mark.slow
def test_a_script_without_a_main_guard_runs_to_a_model(tmp_path, cache_root, colour_folder):
    from knowledge_base import KnowledgeBase

    image = next((colour_folder / "red").iterdir())
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT.format(folder=str(colour_folder), kb=str(tmp_path / "kb.sqlite"),
                                    cache=str(cache_root), runs=str(tmp_path / "runs"),
                                    out=str(tmp_path / "model"), image=str(image)))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "freeze_support" not in done.stderr
    # neither the driver nor its workers print TensorFlow's C++ start-up lines
    assert "cpu_feature_guard" not in done.stderr and "oneDNN" not in done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines()
                 if line.startswith(("LABEL", "TEST")))
    assert lines["LABEL"] in ("blue", "green", "red")
    assert float(lines["TEST"]) > 0.5
    with KnowledgeBase(tmp_path / "kb.sqlite") as kb:  # recorded once, as one dataset
        assert [d.name for d in kb.datasets()] == [colour_folder.name]
