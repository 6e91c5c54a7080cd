import pytest

from transfer_automl.errors import InputError
from transfer_automl.space import Choice, Float, SearchSpace, default_space, fidelity, is_active


def test_default_config_is_the_frozen_linear_baseline():
    space = default_space()
    cfg = space.default
    assert cfg["unfrozen_blocks"] == 0 and cfg["augment"] == 0 and cfg["n_dense"] == 0
    assert fidelity(cfg) == "features"


def test_space_covers_head_and_fine_tuning_parameters():
    names = set(default_space(["a", "b"]).names)
    for required in ("backbone", "pooling", "n_dense", "units_1", "activation_1", "dropout_1",
                     "batchnorm_1", "units_2", "optimizer", "learning_rate", "backbone_lr_mult",
                     "unfrozen_blocks", "weight_decay", "label_smoothing", "batch_size",
                     "epochs", "resolution", "augment"):
        assert required in names
    assert default_space(["a", "b"]).param("backbone").options == ("a", "b")


def test_vals_round_trip():
    space = default_space(["a", "b"])
    cfg = space.complete({"backbone": "b", "n_dense": 2, "learning_rate": 0.01})
    assert space.from_vals(space.to_vals(cfg)) == cfg


def test_complete_rejects_unknown_and_out_of_range():
    space = default_space()
    with pytest.raises(InputError, match="unknown parameters"):
        space.complete({"nope": 1})
    with pytest.raises(InputError, match="learning_rate"):
        space.complete({"learning_rate": 5.0})
    with pytest.raises(InputError, match="pooling"):
        space.complete({"pooling": "median"})


def test_active_drops_unused_layer_parameters():
    space = default_space()
    cfg = space.complete({"n_dense": 1, "unfrozen_blocks": 0})
    active = space.active(cfg)
    assert "units_1" in active and "units_2" not in active and "backbone_lr_mult" not in active
    assert is_active("backbone_lr_mult", {**cfg, "unfrozen_blocks": 2})


def test_fidelity_by_config():
    base = default_space().default
    assert fidelity({**base, "unfrozen_blocks": 2}) == "activations"
    assert fidelity({**base, "augment": 0.5}) == "images"


def test_duplicate_names_rejected():
    with pytest.raises(ValueError):
        SearchSpace((Float("x", 0, 1), Choice("x", (1, 2))), {"x": 0.5})


def test_fix_holds_parameters():
    space = default_space().fix(resolution=96, epochs=3)
    assert space.default["resolution"] == 96
    assert space.param("epochs").options == (3,)
    cfg = space.from_vals(space.to_vals(space.default))
    assert cfg["resolution"] == 96 and cfg["epochs"] == 3
    with pytest.raises(InputError):
        default_space().fix(nope=1)


def test_default_is_solved_exactly_and_gradient_settings_are_inactive():
    space = default_space()
    cfg = space.default
    assert cfg["optimizer"] == "lbfgs"
    active = space.active(cfg)
    for unused in ("learning_rate", "batch_size", "epochs", "head_dropout", "momentum"):
        assert unused not in active
    assert "weight_decay" in active and "label_smoothing" in active


def test_exact_solver_is_swapped_out_where_it_cannot_train():
    space = default_space()
    # the default's lbfgs is not inherited by hidden layers or fine-tuning
    assert space.complete({"n_dense": 1})["optimizer"] == "adam"
    assert space.complete({"unfrozen_blocks": 2})["optimizer"] == "adam"
    assert space.complete({"augment": 0.5})["optimizer"] == "adam"
    assert space.complete({"pooling": "max"})["optimizer"] == "lbfgs"
    # a sampled config is repaired; an explicit choice is kept (the trial then says why)
    assert space.repair({**space.default, "n_dense": 2})["optimizer"] == "adam"
    assert space.complete({"n_dense": 1, "optimizer": "lbfgs"})["optimizer"] == "lbfgs"
    only_exact = space.restrict(optimizer=("lbfgs",))
    assert only_exact.repair({**space.default, "n_dense": 1})["optimizer"] == "lbfgs"


def test_study_never_asks_for_an_unsolvable_exact_trial():
    from transfer_automl.space import exact_solvable
    from transfer_automl.study import Study
    from transfer_automl.samplers import RandomSampler

    study = Study(default_space(), sampler=RandomSampler(), seed=3)
    for _ in range(40):
        spec = study.ask()
        if spec.config["optimizer"] == "lbfgs":
            assert exact_solvable(spec.config)
