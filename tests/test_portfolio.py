"""The portfolio of the meta-dataset: fixed, valid in the search space, spanning it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from transfer_automl.portfolio import PORTFOLIO_VERSION, portfolio
from transfer_automl.space import default_space, exact_solvable


def test_portfolio_is_valid_and_spans_the_joint_space():
    entries = portfolio()
    space = default_space(("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"))
    assert PORTFOLIO_VERSION >= 1 and len(entries) >= 48
    assert len({e.config_id for e in entries}) == len(entries)
    for e in entries:
        assert space.validate(e.config) == e.config
        if e.config["optimizer"] == "lbfgs":
            assert exact_solvable(e.config), e.config_id
    cheap = [e for e in entries if e.fidelity == "features"]
    fine = [e for e in entries if e.fidelity == "activations"]
    assert len(fine) >= 12
    assert {e.config["backbone"] for e in cheap} == set(space.param("backbone").options)
    assert {e.config["pooling"] for e in cheap} == {"avg", "max", "avgmax"}
    assert {e.config["unfrozen_blocks"] for e in fine} == {1, 2, 3}
    assert {e.config["optimizer"] for e in fine} == {"sgd", "adam", "adamw"}
    # the first entry is the search's own default: the baseline every method is measured by
    assert entries[0].config == space.complete({})
    # the same list every time: rows of the meta-dataset are keyed by its ids
    assert [e.config for e in portfolio()] == [e.config for e in entries]


def test_fine_tuning_subsample_keeps_classes_and_test(colour_folder, tmp_path):
    from transfer_automl.data import load_dataset

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "build_meta_dataset.py"
    spec = importlib.util.spec_from_file_location("build_meta_dataset", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = load_dataset(colour_folder, workdir=tmp_path)
    small = module.subsample(data, 15)
    assert len(small.train) + len(small.val) <= 17 and small.test == data.test
    assert set(np.unique(small.train.labels)) == set(np.unique(data.train.labels))
    assert set(small.train.paths) <= set(data.train.paths)
    assert small.content_fingerprint != data.content_fingerprint
    assert module.subsample(data, 10_000) is data
