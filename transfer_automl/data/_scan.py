"""Walking a dataset folder: ignore rules, symlink checks and layout detection."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from transfer_automl.errors import InputError

#: Folder names (lower case) read as given splits when the root holds ``train/``.
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
_JUNK_NAMES = frozenset({"__macosx", "thumbs.db", "desktop.ini", ".ds_store", "ehthumbs.db"})


@dataclass(frozen=True)
class Candidate:
    """A file that should hold an image of ``class_name`` in split ``split`` ('' = not given)."""

    path: Path
    rel: str
    class_name: str
    split: str


@dataclass
class ScanResult:
    """Everything the walk found, before any file is decoded."""

    root: Path
    given_splits: bool
    candidates: list[Candidate] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0
    class_dirs: dict[str, list[str]] = field(default_factory=dict)


def is_ignored(name: str) -> bool:
    """Hidden entries and operating-system junk, which are counted but never reported."""
    return name.startswith(".") or name.lower() in _JUNK_NAMES


def _check_link(path: Path, root: Path) -> bool:
    """Raise if ``path`` is a symlink leaving ``root``; return False for a dangling link."""
    if not path.is_symlink():
        return True
    target = path.resolve()
    if not target.is_relative_to(root):
        raise InputError(
            f"{path} is a symbolic link to {target}, outside the dataset folder {root}; "
            "copy the files into the folder or remove the link."
        )
    return target.exists()


class _Walker:
    """Collects the files below one folder, following in-tree links (but not loops)."""

    def __init__(self, result: ScanResult) -> None:
        self.result = result

    def rel(self, path: Path) -> str:
        return path.relative_to(self.result.root).as_posix()

    def entries(self, folder: Path) -> list[Path]:
        """The non-ignored entries of ``folder``, sorted, links checked."""
        out = []
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            path = Path(entry.path)
            if is_ignored(entry.name):
                self.result.ignored += 1
            elif not _check_link(path, self.result.root):
                self.result.skipped.append((self.rel(path), "broken symbolic link"))
            else:
                out.append(path)
        return out

    def files(self, folder: Path, ancestors: frozenset[Path] = frozenset()) -> list[Path]:
        """Every regular file below ``folder`` (sub-folders of a class belong to the class)."""
        real = folder.resolve()
        if real in ancestors:  # an in-tree link back to an ancestor would loop forever
            self.result.skipped.append((self.rel(folder), "symbolic link loop"))
            return []
        ancestors = ancestors | {real}
        found = []
        for path in self.entries(folder):
            if path.is_dir():
                found.extend(self.files(path, ancestors))
            elif path.is_file():
                found.append(path)
            else:
                self.result.skipped.append((self.rel(path), "not a regular file"))
        return found

    def add_classes(self, entries: list[Path], split: str) -> None:
        """Read ``entries`` (of one folder) as one sub-folder per class; loose files are reported."""
        for path in entries:
            if path.is_dir():
                name = path.name
                self.result.class_dirs.setdefault(name, []).append(self.rel(path))
                for file in self.files(path):
                    self.result.candidates.append(Candidate(file, self.rel(file), name, split))
            else:
                self.result.skipped.append((self.rel(path), "not inside a class folder"))


def _split_dirs(entries: list[Path]) -> dict[str, Path]:
    """Map 'train'/'val'/'test' to the root's split folders (empty if there is no train/)."""
    found: dict[str, Path] = {}
    for path in entries:
        split = SPLIT_ALIASES.get(path.name.lower())
        if split is None or not path.is_dir():
            continue
        if split in found:
            raise InputError(
                f"Both {found[split].name}/ and {path.name}/ exist in {path.parent}; "
                f"keep one {split} folder."
            )
        found[split] = path
    return found if "train" in found else {}


def scan_folder(root: Path) -> ScanResult:
    """Walk a dataset folder and list the candidate image files with their classes.

    Args:
        root: An existing folder; it is resolved, and links may not leave it.

    Returns:
        The candidates, the skipped and ignored entries and whether splits were given.

    Raises:
        InputError: A symbolic link points outside the folder, or a split folder is duplicated.
    """
    root = root.resolve()
    result = ScanResult(root=root, given_splits=False)
    walker = _Walker(result)
    top = walker.entries(root)
    splits = _split_dirs(top)
    if not splits:
        walker.add_classes(top, "")
        return result
    result.given_splits = True
    for path in top:
        if path not in splits.values():
            reason = "folder is not train/, val/ or test/" if path.is_dir() else "not inside a class folder"
            result.skipped.append((walker.rel(path), reason))
    for split in ("train", "val", "test"):
        if split in splits:
            walker.add_classes(walker.entries(splits[split]), split)
    return result
