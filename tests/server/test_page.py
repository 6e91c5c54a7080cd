"""The web page end to end in headless Chromium: token, folder upload, start a job, follow it
live to the end, download the model, and keep a screenshot."""

from __future__ import annotations

import json
import time
import zipfile

import pytest

from tests.conftest import write_colour_folder
from tests.server.cdp import find_browser, text as _text
from tests.server.conftest import create_token

BROWSER = find_browser()
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="no chromium on PATH (apt-get install chromium; .ci/run does)")


def test_upload_start_follow_and_download_in_the_browser(job_server, browser, tmp_path):
    token = create_token(job_server.data_dir, "dora")
    folder = write_colour_folder(tmp_path / "photos" / "colours", per_class=6)
    browser.open(job_server.url + "/")
    assert "no token" in browser.eval(_text("#user"))

    browser.type_into("#token", token)
    browser.eval("document.getElementById('save-token').click()")
    browser.wait(f"{_text('#user')}.includes('signed in as dora')", what="sign-in")
    assert browser.eval("localStorage.getItem('transfer-automl-token')") == token

    browser.set_files("#folder-input", [str(folder)])  # the folder picker (webkitdirectory)
    browser.wait(f"{_text('#upload-status')}.startsWith('uploaded')", timeout=60,
                 what=f"upload (error: {browser.eval(_text('#error'))})")
    assert "18 images in 3 classes" in browser.eval(_text("#report"))
    assert browser.eval("document.getElementById('upload-progress').value") == 1

    assert browser.eval("document.getElementById('dataset-select').selectedOptions[0]"
                        ".textContent").startswith("colours (18 images")
    browser.type_into("#max-trials", "1")
    browser.eval("document.getElementById('start-btn').click()")
    job_id = browser.wait("(location.hash.match(/^#\\/jobs\\/(\\w+)$/) || [])[1]",
                          what="job page")
    browser.wait(f"{_text('#job-status')} === 'complete'", timeout=240,
                 what=f"job completion ({browser.eval(_text('#job-message'))})")
    assert browser.eval("document.getElementById('chart').getAttribute('data-points')") == "1"
    assert browser.eval("document.querySelectorAll('#chart circle').length") == 1
    assert browser.eval("document.querySelectorAll('#trials-body tr').length") == 1
    assert "test accuracy" in browser.eval(_text("#job-summary"))
    assert browser.eval("document.getElementById('error').hidden")

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    browser.allow_downloads(downloads)
    browser.eval("document.getElementById('download-btn').click()")
    target = downloads / f"model-{job_id}.zip"
    deadline = time.monotonic() + 60
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    with zipfile.ZipFile(target) as zf:
        assert json.loads(zf.read("model/labels.json")) == ["blue", "green", "red"]

    shot = browser.screenshot(tmp_path / "job-page.png")
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")

    browser.eval("location.hash = '#/'")
    browser.wait(f"document.querySelector('[data-job-id=\"{job_id}\"]') !== null",
                 what="job list row")
