"""Uploads are checked in a child process, never in the web process, and an image whose
header declares more pixels than the server allows is refused before anything decodes it
(no server needed: the checker is driven directly)."""

from __future__ import annotations

import io
import shutil
import zipfile

import pytest
from PIL import Image

from tests.conftest import write_colour_folder
from tests.server.conftest import huge_png
from transfer_automl.errors import UploadError
from transfer_automl.server.checks import UploadChecker
from transfer_automl.server.config import Limits, ServerConfig
from transfer_automl.server.datasets import incoming_dir
from transfer_automl.server.uploads import Received


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    return write_colour_folder(tmp_path_factory.mktemp("check") / "colours", per_class=3,
                               size=16)


def _folder_upload(config: ServerConfig, dataset_id: str, colours, extra=None) -> Received:
    """A received folder upload, as :func:`receive_upload` leaves it."""
    files = incoming_dir(config, dataset_id) / "files"
    shutil.copytree(colours, files / "colours")
    for name, data in (extra or {}).items():
        (files / name).write_bytes(data)
    n = sum(1 for p in files.rglob("*") if p.is_file())
    return Received(kind="folder", folder=files, n_files=n, top_names={"colours"})


def _zip_upload(config: ServerConfig, dataset_id: str, entries: dict[str, bytes]) -> Received:
    root = incoming_dir(config, dataset_id)
    root.mkdir(parents=True)
    with zipfile.ZipFile(root / "upload.zip", "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return Received(kind="zip", archive=root / "upload.zip", archive_name="up.zip",
                    n_files=len(entries))


def test_uploads_are_checked_in_another_process(tmp_path, colours, monkeypatch):
    """Nothing in this (the web) process may open an image while an upload is checked."""
    config = ServerConfig(tmp_path / "data")
    received = _folder_upload(config, "d1", colours)

    def no_decoding_here(*args, **kwargs):
        raise AssertionError("an image was opened in the web process")

    monkeypatch.setattr(Image, "open", no_decoding_here)
    name, path, report = UploadChecker(config).run("d1", received)
    assert (name, report["class_names"]) == ("colours", ["blue", "green", "red"])
    assert report["n_images"] == 9 and (config.data_dir / path).is_dir()
    assert not incoming_dir(config, "d1").exists()


def test_an_image_over_the_pixel_limit_is_refused_by_its_header(tmp_path, colours):
    config = ServerConfig(tmp_path / "data", limits=Limits(max_image_pixels=100_000_000))
    received = _folder_upload(config, "d2", colours, {"colours/red/huge.png": huge_png()})
    assert (received.folder / "colours/red/huge.png").stat().st_size < 200_000
    with pytest.raises(UploadError) as info:
        UploadChecker(config).run("d2", received)
    detail = info.value.detail
    assert info.value.status == 400
    assert "'colours/red/huge.png' is 12000x12000 = 144000000 pixels" in detail
    assert "limit of 100000000 pixels" in detail and "--max-image-pixels" in detail
    assert str(tmp_path) not in detail


def test_the_pixel_limit_is_the_servers_setting(tmp_path, colours):
    big = io.BytesIO()
    Image.new("RGB", (40, 30)).save(big, format="PNG")
    entries = {f"colours/{p.relative_to(colours).as_posix()}": p.read_bytes()
               for p in sorted(colours.rglob("*.png"))}
    entries["colours/red/big.png"] = big.getvalue()
    small = ServerConfig(tmp_path / "a", limits=Limits(max_image_pixels=1000))
    with pytest.raises(UploadError) as info:
        UploadChecker(small).run("d3", _zip_upload(small, "d3", entries))
    assert "'colours/red/big.png' is 40x30 = 1200 pixels" in info.value.detail
    roomy = ServerConfig(tmp_path / "b", limits=Limits(max_image_pixels=1200))
    _, _, report = UploadChecker(roomy).run("d4", _zip_upload(roomy, "d4", entries))
    assert report["n_images"] == 10


def test_a_zip_entry_with_a_control_character_is_400(tmp_path, colours):
    config = ServerConfig(tmp_path / "data")
    entries = {f"colours/{p.relative_to(colours).as_posix()}": p.read_bytes()
               for p in sorted(colours.rglob("*.png"))}
    entries["colours/red/de\x7fl.png"] = entries["colours/red/0.png"]
    with pytest.raises(UploadError) as info:
        UploadChecker(config).run("d5", _zip_upload(config, "d5", entries))
    assert info.value.status == 400 and "control character" in info.value.detail


def test_at_most_max_checks_run_at_once(tmp_path):
    import asyncio
    import threading

    checker = UploadChecker(ServerConfig(tmp_path / "data", max_checks=2))
    state = {"running": 0, "peak": 0}
    lock, release = threading.Lock(), threading.Event()

    def fake_run(dataset_id, received):  # stands in for the child process
        with lock:
            state["running"] += 1
            state["peak"] = max(state["peak"], state["running"])
        release.wait(30)
        with lock:
            state["running"] -= 1
        return dataset_id, "", {}

    checker.run = fake_run

    async def five_uploads():
        tasks = [asyncio.create_task(checker.check(f"d{i}", Received())) for i in range(5)]
        while state["running"] < 2:  # the first two are in; the other three must wait
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        assert state["running"] == 2
        release.set()
        return [name for name, _, _ in await asyncio.gather(*tasks)]

    assert asyncio.run(five_uploads()) == [f"d{i}" for i in range(5)]
    assert state["peak"] == 2
