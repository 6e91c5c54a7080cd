"""TFLite export: a fixed-size, builtin-only graph that labels images as the SavedModel does.

One tiny search (two trials at 64 px) feeds every test; the TFLite models run in
``tf.lite.Interpreter``, and their labels are compared with the SavedModel's on every image of
the tiny dataset (its test split is six images).
"""

import json

import numpy as np
import pytest

from transfer_automl import fit_auto, load_model
from transfer_automl.errors import InputError
from transfer_automl.export_tflite import TFLITE, load_tflite, prepare_images, write_tflite
from transfer_automl.options import SearchOptions, TrackingOptions
from transfer_automl.space import default_space

AGREEMENT = 0.98
#: tf.lite.Interpreter points to LiteRT's (ai_edge_litert), which is not a dependency
pytestmark = pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")


@pytest.fixture(scope="module")
def result(tmp_path_factory, cache_root, colour_folder):
    space = default_space().fix(resolution=64)
    return fit_auto(colour_folder, max_trials=2, time_budget_s=600, seed=0, kb=False,
                    cache_dir=cache_root, search=SearchOptions(space=space),
                    tracking=TrackingOptions(runs_dir=tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="module")
def exported(result, tmp_path_factory):
    return result.export(tmp_path_factory.mktemp("export") / "model",
                         formats=("saved_model", "tflite"))


@pytest.fixture(scope="module")
def paths(colour_folder):
    return sorted(str(p) for p in colour_folder.rglob("*.png"))


def _interpreter_labels(model_file, paths, resolution):
    """Labels from a plain ``tf.lite.Interpreter``, one image per invoke."""
    import tensorflow as tf

    runner = tf.lite.Interpreter(model_path=str(model_file))
    runner.allocate_tensors()
    (inp,), (out,) = runner.get_input_details(), runner.get_output_details()
    assert list(inp["shape"]) == [1, resolution, resolution, 3] and inp["dtype"] == np.uint8
    assert out["dtype"] == np.float32
    probs = []
    for image in prepare_images(paths, resolution):
        runner.set_tensor(inp["index"], image[None])
        runner.invoke()
        probs.append(runner.get_tensor(out["index"])[0].copy())
    ops = {op["op_name"] for op in runner._get_ops_details()} if hasattr(
        runner, "_get_ops_details") else set()
    return np.array(probs), ops


def _agreement(a, b) -> float:
    return float(np.mean(np.asarray(a) == np.asarray(b)))


def test_the_tflite_model_labels_images_as_the_saved_model_does(exported, paths):
    saved = load_model(exported)
    expected = saved.predict_proba(paths)
    probs, ops = _interpreter_labels(exported / TFLITE, paths, 64)
    assert _agreement(probs.argmax(1), expected.argmax(1)) >= AGREEMENT
    np.testing.assert_allclose(probs, expected, atol=0.02)  # float16 weights
    assert ops and not any("FLEX" in op.upper() or "CUSTOM" in op.upper() for op in ops)
    assert not any("RESIZE" in op for op in ops)  # the caller resizes, as training did
    model = load_tflite(exported)  # the helper: paths in, batched, resized like training
    assert model.predict(paths) == saved.predict(paths)
    np.testing.assert_allclose(model.predict_proba(paths[:5]), probs[:5], atol=1e-5)


def test_metadata_describes_the_tflite_model(exported):
    meta = json.loads((exported / "metadata.json").read_text())
    info = meta["tflite"]
    assert {"file", "input_shape", "input_dtype", "quantization", "size_bytes",
            "latency_ms_per_image"} <= set(info)
    assert info["file"] == TFLITE and info["input_shape"] == [1, 64, 64, 3]
    assert info["input_dtype"] == "uint8" and info["quantization"] == "float16"
    assert info["size_bytes"] == (exported / TFLITE).stat().st_size
    assert 0 < info["latency_ms_per_image"] < 1000 and info["resizes_inside_to"] == []
    assert load_model(exported).metadata["tflite"] == info
    assert (exported / "saved_model.pb").is_file()


def test_an_int8_tflite_only_export_calibrates_on_training_images(result, exported, paths,
                                                                    tmp_path):
    out = result.export(tmp_path / "int8", formats=("tflite",), tflite_quantization="int8")
    assert sorted(p.name for p in out.iterdir()) == ["labels.json", "metadata.json", TFLITE]
    info = json.loads((out / "metadata.json").read_text())["tflite"]
    train = json.loads((result.model.path.parent / "dataset.json").read_text())["train"]
    assert info["quantization"] == "int8"
    assert info["calibration_images"] == min(len(train["paths"]), 100) > 0
    half = json.loads((exported / "metadata.json").read_text())["tflite"]["size_bytes"]
    assert info["size_bytes"] < 0.75 * half
    probs, _ = _interpreter_labels(out / TFLITE, paths, 64)
    expected = load_model(exported).predict_proba(paths).argmax(1)
    assert _agreement(probs.argmax(1), expected) >= AGREEMENT


def test_an_ensemble_at_two_resolutions_resizes_inside_with_a_builtin(result, paths,
                                                                      cache_root, tmp_path):
    """One graph: images at the largest member resolution, a builtin bilinear resize to the
    other; its labels match the SavedModel's (which resizes each from the original)."""
    from transfer_automl.trial_model import export_ensemble

    config, weights = result.best_config, result.single.weights
    members = [(config, weights, 0.5), ({**config, "resolution": 96}, weights, 0.5)]
    saved = export_ensemble(members, ["blue", "green", "red"], tmp_path / "mixed",
                            backbone_cache=cache_root / "backbones", metadata={})
    assert saved.resolution is None
    info = write_tflite(saved.path)
    assert info["input_shape"] == [1, 96, 96, 3] and info["resizes_inside_to"] == [64]
    probs, ops = _interpreter_labels(saved.path / TFLITE, paths, 96)
    assert _agreement(probs.argmax(1), saved.predict_proba(paths).argmax(1)) >= AGREEMENT
    assert not ops or "RESIZE_BILINEAR" in ops


def test_bad_formats_and_quantizations_fail_before_anything_is_written(result, tmp_path):
    with pytest.raises(InputError, match="formats"):
        result.export(tmp_path / "a", formats=("saved_model", "onnx"))
    with pytest.raises(InputError, match="tflite_quantization"):
        result.export(tmp_path / "b", formats=("tflite",), tflite_quantization="int4")
    with pytest.raises(InputError, match="formats"):
        result.export(tmp_path / "c", formats=())
    assert list(tmp_path.iterdir()) == []


def test_export_tflite_needs_out(colour_folder):
    from typer.testing import CliRunner

    from transfer_automl.cli import app

    run = CliRunner().invoke(app, ["fit", str(colour_folder), "--export-tflite"])
    assert run.exit_code == 2 and "--out" in run.output
    run = CliRunner().invoke(app, ["fit", str(colour_folder), "--tflite-quantization", "int8"])
    assert run.exit_code == 2 and "--export-tflite" in run.output


def test_fit_exports_a_float32_tflite_with_out(result, exported, colour_folder, paths,
                                               tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from transfer_automl import api
    from transfer_automl.cli import app

    monkeypatch.setattr(api, "fit_auto", lambda *args, **kwargs: result)  # the search is done
    run = CliRunner().invoke(app, ["fit", str(colour_folder), "--out", str(tmp_path / "m"),
                                   "--export-tflite", "--tflite-quantization", "none"])
    assert run.exit_code == 0, run.output
    assert "TFLite model (none)" in run.output and (tmp_path / "m" / TFLITE).is_file()
    info = json.loads((tmp_path / "m" / "metadata.json").read_text())["tflite"]
    assert info["quantization"] == "none" and (tmp_path / "m" / "saved_model.pb").is_file()
    half = json.loads((exported / "metadata.json").read_text())["tflite"]["size_bytes"]
    assert info["size_bytes"] > 1.5 * half  # float32 weights
    probs, _ = _interpreter_labels(tmp_path / "m" / TFLITE, paths, 64)
    np.testing.assert_allclose(probs, load_model(exported).predict_proba(paths), atol=1e-4)


def test_keras3_loads_the_saved_model_through_tfsmlayer(exported, paths):
    """The recipe of docs/usage.md: the SavedModel as a Keras 3 layer."""
    keras = pytest.importorskip("keras")
    if int(keras.__version__.split(".")[0]) < 3:
        pytest.skip(f"keras {keras.__version__} is not Keras 3")
    from transfer_automl.data import read_image

    layer = keras.layers.TFSMLayer(str(exported), call_endpoint="serving_default")
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, layer(inputs)["probabilities"])
    images = np.stack([read_image(p) for p in paths[::6]]).astype("float32")
    np.testing.assert_allclose(model.predict(images, verbose=0),
                               load_model(exported).predict_proba(paths[::6]), atol=1e-5)
