"""One loader for catalogue models, local SavedModels and hub handles; the frozen split."""

from __future__ import annotations

import numpy as np
import pytest

from pretrained import ALL_BLOCKS, load_backbone
from transfer_automl.errors import BackboneError


def _tiny_saved_model(path, pooled: bool):
    """A 3x3 conv (+ global average pool) saved in the hub reusable-SavedModel convention."""
    import tensorflow as tf

    kernel = tf.Variable(tf.random.stateless_normal([3, 3, 3, 5], seed=[1, 2]), name="kernel")
    bias = tf.Variable(tf.zeros([5]), name="bias")

    def call(images):
        x = tf.nn.relu(tf.nn.conv2d(images, kernel, 2, "SAME") + bias)
        return tf.reduce_mean(x, axis=[1, 2]) if pooled else x

    obj = tf.train.Checkpoint()
    obj.__call__ = tf.function(call, input_signature=[tf.TensorSpec([None, None, None, 3])])
    obj.variables = [kernel, bias]
    obj.trainable_variables = [kernel, bias]
    obj.regularization_losses = []
    tf.saved_model.save(obj, str(path))
    return path


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return _tiny_saved_model(tmp_path_factory.mktemp("tiny") / "model", pooled=True)


def test_local_saved_model(tiny_dir):
    backbone = load_backbone(tiny_dir, resolution=32)
    assert backbone.pooled_output
    assert (backbone.spec.feature_size, backbone.spec.resolution) == (5, 32)
    assert backbone.n_blocks == 0 and backbone.spec.input_range == (0.0, 1.0)
    assert len(backbone.digest) == 16
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    assert tuple(backbone.features(images).shape) == (2, 5)
    assert float(backbone.preprocess(np.full((1, 1, 1, 3), 255)).numpy().max()) == 1.0


def test_local_feature_map_model(tmp_path):
    backbone = load_backbone(_tiny_saved_model(tmp_path / "m", pooled=False), resolution=16)
    assert not backbone.pooled_output
    assert tuple(backbone.features(np.zeros((1, 16, 16, 3))).shape) == (1, 8, 8, 5)
    bottom, top = backbone.split(0)
    assert tuple(top(bottom(np.zeros((1, 16, 16, 3), np.float32))).shape) == (1, 8, 8, 5)


def test_opaque_split(tiny_dir):
    backbone = load_backbone(tiny_dir, resolution=32)
    bottom, top = backbone.split(0)
    assert not bottom.trainable_weights and not top.trainable_weights
    x = np.zeros((1, 32, 32, 3), np.float32)
    assert tuple(top(bottom(x)).shape) == (1, 5)
    bottom, top = backbone.split(ALL_BLOCKS)
    assert not bottom.weights and len(top.trainable_weights) == 2
    with pytest.raises(BackboneError, match="opaque"):
        backbone.split(1)


def test_hub_handle_is_passed_unchanged(tiny_dir, monkeypatch):
    import tensorflow_hub as hub

    seen = []
    real_load = hub.load

    def fake_load(handle, *args, **kwargs):
        seen.append(handle)
        return real_load(str(tiny_dir))

    monkeypatch.setattr(hub, "load", fake_load)
    url = "https://www.kaggle.com/models/google/mobilenet-v3/TensorFlow2/small/1"
    backbone = load_backbone(url)
    assert seen == [url]
    assert backbone.spec.name == url and backbone.spec.resolution == 224


def test_unloadable_handle_raises(monkeypatch):
    import tensorflow_hub as hub

    def failing_load(handle, *args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(hub, "load", failing_load)
    with pytest.raises(BackboneError, match="cannot load backbone"):
        load_backbone("google/some-model/tensorFlow2/1")


def test_catalogue_backbone_spec(lite0):
    assert lite0.spec.name == "efficientnet_lite0"
    assert lite0.n_blocks == 18 and not lite0.pooled_output
    assert lite0.handle.endswith(lite0.digest)


@pytest.mark.parametrize("k", [1, 3])
def test_split_trains_exactly_the_top_parts(lite0, k):
    bottom, top = lite0.split(k)
    expected = {id(v) for part in lite0._parts[-k:] for v in part.trainable_variables}
    assert {id(v) for v in top.trainable_weights} == expected
    assert len(top.trainable_weights) == len(expected)
    assert not bottom.trainable_weights
    x = np.zeros((1, 64, 64, 3), np.float32)
    assert tuple(top(bottom(x)).shape) == (1, 2, 2, 1280)


def test_split_zero_and_all(lite0):
    bottom, top = lite0.split(0)
    assert not bottom.trainable_weights and not top.weights
    bottom, top = lite0.split(ALL_BLOCKS)
    n_vars = sum(len(part.trainable_variables) for part in lite0._parts)
    assert not bottom.weights and len(top.trainable_weights) == n_vars
    for bad in (19, -2):
        with pytest.raises(BackboneError, match="0..18"):
            lite0.split(bad)


def test_loads_catalogue_name_from_cache(lite0_dir):
    backbone = load_backbone("efficientnet_lite0", cache_dir=lite0_dir.parent)
    assert backbone.handle == str(lite0_dir)
    assert backbone.spec.n_blocks == backbone.n_blocks == 18
