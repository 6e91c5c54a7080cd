"""The converted EfficientNet-Lite0 against the original PyTorch model, and the cache."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest

from pretrained.catalogue import checkpoint_path
from pretrained.convert import METADATA_FILE, _publish, cache_entry, convert_backbone

DAISY = 985
CATS = {281, 282, 285}  # tabby, tiger cat, Egyptian cat


@pytest.fixture(scope="module")
def logits(lite0, reference):
    features = lite0.features(reference["images"])
    return lite0._loaded.classify(features).numpy()


def test_logits_match_pytorch_reference(logits, reference):
    assert logits.shape == reference["logits"].shape
    assert np.abs(logits - reference["logits"]).max() < 1e-3


def test_imagenet_top3(logits, reference):
    names = list(reference["names"])
    top3 = {name: set(np.argsort(row)[::-1][:3]) for name, row in zip(names, logits)}
    assert DAISY in top3["flower"]
    assert top3["chelsea"] & CATS


def test_each_part_chains_to_the_whole(lite0, reference):
    x = lite0.preprocess(reference["images"][:1])
    y = x
    for part in lite0._parts:
        y = part(y)
    np.testing.assert_allclose(y.numpy(), lite0._loaded(x).numpy(), atol=1e-5)
    assert y.shape == (1, 7, 7, 1280)


def test_cache_is_reused(lite0_dir):
    started = time.perf_counter()
    again = convert_backbone("efficientnet_lite0", lite0_dir.parent)
    assert again == lite0_dir
    assert time.perf_counter() - started < 2.0
    meta = json.loads((lite0_dir / METADATA_FILE).read_text())
    assert meta["name"] == "efficientnet_lite0"
    assert lite0_dir.name.endswith(meta["checkpoint_sha256_16"])


def test_changed_checkpoint_gets_a_new_entry(tmp_path):
    original = checkpoint_path("efficientnet_lite0")
    changed = tmp_path / original.name
    shutil.copyfile(original, changed)
    with changed.open("ab") as f:
        f.write(b"\0")
    cache = tmp_path / "cache"
    assert cache_entry("efficientnet_lite0", cache) != cache_entry(
        "efficientnet_lite0", cache, checkpoint=changed)
    assert cache_entry("efficientnet_lite0", cache, checkpoint=original) == cache_entry(
        "efficientnet_lite0", cache)


def test_publish_keeps_an_entry_written_concurrently(tmp_path):
    winner = tmp_path / "entry"
    winner.mkdir()
    (winner / METADATA_FILE).write_text("{}")
    (winner / "x").write_text("first")
    loser = tmp_path / ".entry.tmp"
    loser.mkdir()
    (loser / "x").write_text("second")
    _publish(loser, winner)
    assert (winner / "x").read_text() == "first"
