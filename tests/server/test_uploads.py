"""Client file names are checked before they become paths (no server needed)."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from transfer_automl.server.uploads import UploadError, safe_relative_path


@pytest.mark.parametrize("name, expected", [
    ("colours/red/0.png", ("colours", "red", "0.png")),
    ("./a//b/./c.png", ("a", "b", "c.png")),
    (".hidden/x.png", (".hidden", "x.png")),
])
def test_relative_paths_are_kept(name, expected):
    assert safe_relative_path(name) == PurePosixPath(*expected)


@pytest.mark.parametrize("name", [
    "", "/", "/etc/passwd", "../x.png", "a/../../x.png", "a/..", "C:/x.png", "c:x.png",
    "a\\..\\x.png", "a/\0b.png", "a/\nb.png", "./.", "/".join(["d"] * 20) + "/x.png",
    "a/" + "n" * 300 + ".png"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(UploadError) as info:
        safe_relative_path(name)
    assert info.value.status == 400 and info.value.detail
