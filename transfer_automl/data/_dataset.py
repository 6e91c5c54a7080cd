"""The data model of a loaded dataset and its JSON manifest."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from transfer_automl.errors import InputError

MANIFEST_FORMAT = "transfer-automl-dataset"
MANIFEST_VERSION = 1


@dataclass(frozen=True, eq=False)
class Split:
    """Image paths and their integer labels (indices into ``Dataset.class_names``)."""

    paths: tuple[str, ...]
    labels: np.ndarray

    def __post_init__(self) -> None:
        labels = np.array(self.labels, dtype=np.int64).reshape(-1)
        labels.setflags(write=False)
        object.__setattr__(self, "paths", tuple(str(p) for p in self.paths))
        object.__setattr__(self, "labels", labels)
        if len(self.paths) != len(labels):
            raise ValueError(f"Split has {len(self.paths)} paths but {len(labels)} labels.")

    def __len__(self) -> int:
        return len(self.paths)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Split):
            return NotImplemented
        return self.paths == other.paths and np.array_equal(self.labels, other.labels)

    __hash__ = None  # type: ignore[assignment]

    def to_dict(self) -> dict[str, list]:
        """JSON-serialisable form."""
        return {"paths": list(self.paths), "labels": self.labels.tolist()}

    @classmethod
    def empty(cls) -> Split:
        """A split with no images (e.g. no test folder was given)."""
        return cls((), np.zeros(0, np.int64))


@dataclass(frozen=True)
class SkippedFile:
    """A file that was left out, with the reason, path relative to the dataset root."""

    path: str
    reason: str


@dataclass(frozen=True)
class DataReport:
    """What ingestion found: counts, skipped files, conversions and simple statistics.

    ``mean_size`` is ``(height, width)`` in pixels after EXIF rotation; ``ignored`` counts
    hidden and OS-junk entries (a hidden folder counts once); ``converted`` counts files copied
    to PNG because TensorFlow could not decode them in place.
    """

    source: str
    n_images: int
    n_classes: int
    class_counts: dict[str, int]
    given_splits: bool
    skipped: tuple[SkippedFile, ...] = ()
    ignored: int = 0
    converted: int = 0
    mean_size: tuple[int, int] = (0, 0)
    greyscale_share: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "source": self.source,
            "n_images": self.n_images,
            "n_classes": self.n_classes,
            "class_counts": dict(self.class_counts),
            "given_splits": self.given_splits,
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "ignored": self.ignored,
            "converted": self.converted,
            "mean_size": list(self.mean_size),
            "greyscale_share": self.greyscale_share,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataReport:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["skipped"] = tuple(SkippedFile(**s) for s in data.get("skipped", ()))
        data["mean_size"] = tuple(data.get("mean_size", (0, 0)))
        return cls(**data)

    def summary(self) -> str:
        """A one-paragraph plain-text description for logs and the CLI."""
        counts = sorted(self.class_counts.values()) or [0]
        text = (
            f"{self.n_images} images in {self.n_classes} classes from {self.source} "
            f"({'given train/val/test folders' if self.given_splits else 'split by seed'}); "
            f"{counts[0]}-{counts[-1]} images per class, mean size "
            f"{self.mean_size[0]}x{self.mean_size[1]} (HxW), "
            f"{self.greyscale_share:.0%} greyscale, {self.converted} converted to PNG, "
            f"{self.ignored} hidden/OS files ignored."
        )
        if self.skipped:
            reasons = Counter(s.reason.split(" (")[0] for s in self.skipped)
            listed = "; ".join(f"{n} {r}" for r, n in reasons.most_common(3))
            text += f" {len(self.skipped)} files skipped ({listed}), e.g. {self.skipped[0].path}."
        return text


@dataclass(frozen=True)
class Dataset:
    """A validated image classification dataset: class names, splits and the ingestion report.

    Every path can be decoded by ``tf.io.decode_image(data, channels=3,
    expand_animations=False)`` into the image :func:`read_image` returns.
    """

    class_names: tuple[str, ...]
    train: Split
    val: Split
    test: Split
    report: DataReport
    fingerprint: str
    root: str
    #: Fingerprint of the images and labels alone, the same for every split of one folder
    #: (``fingerprint`` also covers split membership). Empty for manifests written before it.
    content_fingerprint: str = ""

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    def to_dict(self) -> dict[str, Any]:
        """The JSON manifest as a dict (inverse of :meth:`from_dict`)."""
        return {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "class_names": list(self.class_names),
            "train": self.train.to_dict(),
            "val": self.val.to_dict(),
            "test": self.test.to_dict(),
            "report": self.report.to_dict(),
            "fingerprint": self.fingerprint,
            "root": self.root,
            "content_fingerprint": self.content_fingerprint,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Dataset:
        """Rebuild a dataset from :meth:`to_dict` output.

        Raises:
            InputError: The dict is not a dataset manifest of a supported version.
        """
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            raise InputError(
                "Not a transfer-automl dataset manifest; create one with Dataset.save_manifest()."
            )
        if data.get("version") != MANIFEST_VERSION:
            raise InputError(
                f"Dataset manifest version {data.get('version')!r} is not supported "
                f"(expected {MANIFEST_VERSION}); re-create it with load_dataset()."
            )
        try:
            return cls(
                class_names=tuple(data["class_names"]),
                **{s: Split(tuple(data[s]["paths"]), data[s]["labels"]) for s in ("train", "val", "test")},
                report=DataReport.from_dict(data["report"]),
                fingerprint=data["fingerprint"],
                root=data["root"],
                content_fingerprint=data.get("content_fingerprint", ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"Dataset manifest is malformed ({exc!r}); re-create it with load_dataset()."
            ) from None

    def save_manifest(self, path: str | os.PathLike) -> Path:
        """Write the JSON manifest atomically and return its path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1), encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def load_manifest(cls, path: str | os.PathLike) -> Dataset:
        """Read a manifest written by :meth:`save_manifest`.

        Raises:
            InputError: The file is missing or not a valid manifest.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"Dataset manifest {path} does not exist; check the path.") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"Cannot read dataset manifest {path} ({exc}); re-create it.") from None
        return cls.from_dict(data)


def load_manifest(path: str | os.PathLike) -> Dataset:
    """Read a dataset manifest (same as :meth:`Dataset.load_manifest`)."""
    return Dataset.load_manifest(path)
