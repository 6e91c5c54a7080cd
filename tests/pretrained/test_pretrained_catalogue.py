"""Catalogue specs, name errors and the light package import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pretrained import BackboneSpec, available_backbones, get_spec
from transfer_automl.errors import BackboneError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("name", "resolution", "n_blocks"), [
    ("efficientnet_lite0", 224, 18),
    ("efficientnet_lite1", 240, 23),
    ("efficientnet_lite2", 260, 23),
])
def test_lite_specs(name, resolution, n_blocks):
    spec = get_spec(name)
    assert isinstance(spec, BackboneSpec)
    assert (spec.resolution, spec.n_blocks, spec.feature_size) == (resolution, n_blocks, 1280)
    assert spec.input_range == (-1.0, 1.0)


def test_unknown_name_lists_valid_names():
    with pytest.raises(BackboneError) as info:
        get_spec("resnet9000")
    for name in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"):
        assert name in str(info.value)


def test_unknown_name_through_loader():
    from pretrained import load_backbone

    with pytest.raises(BackboneError, match="efficientnet_lite0"):
        load_backbone("no_such_backbone")


def test_available_backbones_are_catalogue_names():
    names = available_backbones()
    assert names == sorted(names)
    for name in names:
        get_spec(name)


def test_import_does_not_load_tensorflow():
    code = ("import sys, pretrained; "
            "bad = [m for m in ('tensorflow', 'tf_keras', 'tensorflow_hub', 'torch') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
