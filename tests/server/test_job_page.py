"""The live job page in headless Chromium, fed by a made-up search (no training, seconds):
learning curves that grow epoch by epoch, a fitted and labelled best-so-far chart, trial
configurations, parameters against score and their importance, the exported model's test
report, confusion matrix and ensemble, time left, settings, re-run and delete; the jobs list,
the form's defaults and the API docs page. A full-page screenshot is kept."""

from __future__ import annotations

import json

import pytest

from knowledge_base.engine import now
from tests.server.cdp import find_browser, text
from tests.server.conftest import create_token
from tests.server.feed import CLASSES, PLAN, FakeSearch, running_job
from transfer_automl.server.datasets import new_id
from transfer_automl.server.store import ServerStore
from transfer_automl.trial import TrialState

pytestmark = pytest.mark.skipif(
    find_browser() is None, reason="no chromium on PATH (tests/server/install_chromium.sh)")

REPORT = {"summary": "90 images in 3 classes", "n_images": 90, "n_classes": 3,
          "class_names": CLASSES, "splits": {"train": 54, "val": 18, "test": 18},
          "skipped": [], "stored_bytes": 0}
DIVERGING = "diverging: lower the learning rate"


def count(browser, selector: str) -> int:
    return browser.eval(f"document.querySelectorAll({json.dumps(selector)}).length")


def attr(browser, selector: str, name: str):
    return browser.eval(f"document.querySelector({json.dumps(selector)})"
                        f".getAttribute({json.dumps(name)})")


@pytest.fixture
def store(job_server):
    s = ServerStore(str(job_server.data_dir / "kb.sqlite"))
    yield s
    s.close()


def test_the_job_page_follows_a_search_live_and_shows_its_result(job_server, store, browser,
                                                                 tmp_path):
    token = create_token(job_server.data_dir, "erin")
    dataset = store.add_dataset(new_id(), "erin", "flowers", "folder", "datasets/none", REPORT)
    with job_server.client(token) as client:
        defaults = client.get("/api/me").json()["defaults"]
    params = {**defaults, "max_trials": 10, "seed": 3, "use_kb": False}
    job_id = new_id()
    running_job(store, job_id, "erin", dataset["id"], params)
    search = FakeSearch(lambda snap: store.update_job(job_id, progress=snap), max_trials=10)

    browser.open(job_server.url + "/")
    browser.type_into("#token", token)
    browser.eval("document.getElementById('save-token').click()")
    browser.wait(f"{text('#user')}.includes('signed in as erin')", what="sign-in")
    # The form shows the server's defaults (serve --max-trials 2 --space quick).
    assert attr(browser, "#max-trials", "placeholder") == "default 2"
    assert "server default (quick)" in browser.eval(text("#space"))
    assert "2 trials" in browser.eval(text("#defaults"))

    browser.eval(f"location.hash = '#/jobs/{job_id}'")
    first = search.start()
    search.epoch(first, 0.88)
    search.epoch(first, 0.90)
    browser.wait(f"{attr_js('#curves', 'data-points')} === '2'", what="first epochs")
    search.epoch(first, 0.93)  # one more epoch of the running trial reaches the page live
    browser.wait(f"{attr_js('#curves', 'data-points')} === '3'", what="live epoch")
    assert count(browser, "#curves polyline.live") == 1
    assert browser.eval(text("#curves .x-title")) == "epoch"
    assert browser.eval(text("#curves .y-title")) == "validation accuracy"
    assert "running" in browser.eval(text(f"#trials-body tr[data-trial='{first}']"))
    assert "ETA" in browser.eval(text("#job-time")) and "budget left" in browser.eval(
        text("#job-time"))
    running_shot = browser.screenshot(tmp_path / "running-job-page.png")
    assert running_shot.stat().st_size > 20_000

    search.finish(first)
    for i in range(7):
        search.trial([0.89, 0.90 + 0.01 * i])
    pruned = search.trial([0.91, 0.92, 0.9], losses=[0.5, 2.0, 9.0], state=TrialState.PRUNED,
                          reason=DIVERGING)  # its diagnosis: diverging too
    browser.wait(f"{attr_js('#chart', 'data-points')} === '9'", what="nine finished trials")
    browser.wait(f"{attr_js('#importance', 'data-params')} > 0", what="importance")

    # Best so far: labelled axes, y fitted to the 0.90-0.97 scores rather than 0-1.
    assert browser.eval(text("#chart .x-title")) == "finished trials"
    assert browser.eval(text("#chart .y-title")) == "validation accuracy"
    assert float(attr(browser, "#chart", "data-y-min")) > 0.8
    assert float(attr(browser, "#chart", "data-y-max")) < 1.0
    # Every trial's configuration: one line, the whole of it on hover and on expanding.
    assert "configuration" in browser.eval(text("#trials thead"))
    assert count(browser, "#trials-body td.config details summary") == 9
    assert "learning_rate" in attr(browser, "#trials-body td.config", "title")
    assert "@128px" in browser.eval(text("#trials-body td.config summary"))
    # A pruner's verdict that is also the diagnosis is said once.
    rows = search.progress.snapshot(search.study, 0)["trials"]
    assert next(r for r in rows if r["trial"] == pruned)["diagnosis"] == DIVERGING
    assert browser.eval(text(f"#trials-body tr[data-trial='{pruned}']")).count("diverging") == 1
    assert int(attr(browser, "#slices", "data-params")) >= 2
    assert count(browser, "#slices svg.slice-chart circle") >= 18

    store.update_job(job_id, status="complete", finished=now(),
                     result=search.result(ensemble={"t007": 0.6, "t006": 0.4}))
    browser.wait(f"{text('#job-status')} === 'complete'", what="completion")
    assert not browser.eval("document.getElementById('result-box').hidden")
    summary = browser.eval(text("#test-summary"))
    assert "0.9333 on 30 test images" in summary and "95% interval 0.787–0.982" in summary
    assert count(browser, "#per-class tr") == 4
    assert count(browser, "#confusion tr") == 4 and count(browser, "#confusion td.cell") == 9
    assert browser.eval(text("#confusion td.diag")) == "10"
    assert count(browser, "#ensemble-body tr") == 2
    assert "0.600" in browser.eval(text("#ensemble-body tr[data-member='t007']"))
    assert browser.eval(text("#settings-body tr[data-setting='max_trials'] td")) == "10"
    assert browser.eval(text("#settings-body tr[data-setting='seed'] td")) == "3"
    assert browser.eval("document.body.innerText.split(%s).length - 1" % json.dumps(PLAN)) == 1
    assert browser.eval(text("#job-time")).startswith("took")
    assert not browser.eval("document.getElementById('rerun-btn').disabled")
    assert browser.eval("document.getElementById('error').hidden")

    shot = browser.screenshot(tmp_path / "live-job-page.png", full_page=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    print(f"screenshot: {shot}")

    # The jobs list: test accuracy and duration.
    browser.eval("location.hash = '#/'")
    row = f"[data-job-id='{job_id}']"
    browser.wait(f"{text(row + ' .test-acc')} === '0.9333'", what="test accuracy in the list")
    assert browser.eval(text(f"{row} .duration")) not in ("", "-")

    # Re-run: a new job of the same dataset and settings; then delete that one.
    browser.eval(f"location.hash = '#/jobs/{job_id}'")
    browser.wait(shows(job_id), what="job page again")
    browser.eval("document.getElementById('rerun-btn').click()")
    again = browser.wait(f"(m => m && m[1] !== '{job_id}' && m[1])"
                         "(location.hash.match(/^#\\/jobs\\/(\\w+)$/))", what="re-run job page")
    with job_server.client(token) as client:
        rerun = client.get(f"/api/jobs/{again}").json()
        assert rerun["dataset_id"] == dataset["id"]
        assert {k: rerun["params"][k] for k in params} == params
        browser.wait(shows(again), what="re-run shown")
        browser.eval("document.getElementById('delete-btn').click()")
        assert "again" in browser.eval(text("#delete-btn"))  # asks before it deletes
        browser.eval("document.getElementById('delete-btn').click()")
        browser.wait("location.hash === '#/'", what="back to the jobs after delete")
        assert client.get(f"/api/jobs/{again}").status_code == 404
        assert client.get(f"/api/jobs/{job_id}").status_code == 200

        # Delete the dataset from the form (its finished job keeps its result).
        browser.wait(f"document.getElementById('dataset-select').value === '{dataset['id']}'",
                     what="dataset in the form")
        browser.eval("document.getElementById('delete-dataset-btn').click()")
        browser.eval("document.getElementById('delete-dataset-btn').click()")
        browser.wait("document.getElementById('dataset-select').options.length === 0",
                     what=f"dataset deleted ({browser.eval(text('#error'))})")
        assert client.get(f"/api/datasets/{dataset['id']}").status_code == 404
        assert client.get(f"/api/jobs/{job_id}").json()["result"]["test_score"] == 0.9333

    # The API docs are served (offline: drawn from the OpenAPI spec).
    browser.open(job_server.url + "/docs")
    browser.wait("Number(document.body.getAttribute('data-endpoints')) > 10", what="API docs")
    assert count(browser, "[data-path='/api/jobs/{job_id}'][data-method='delete']") == 1
    assert browser.screenshot(tmp_path / "api-docs.png").stat().st_size > 20_000


def shows(job_id: str) -> str:
    """A JavaScript expression: the job page shows (has rendered) ``job_id``."""
    return f"document.getElementById('job').getAttribute('data-job-id') === '{job_id}'"


def attr_js(selector: str, name: str) -> str:
    return (f"(document.querySelector({json.dumps(selector)}) || {{getAttribute: () => null}})"
            f".getAttribute({json.dumps(name)})")


def test_a_running_trial_is_retuned_from_the_job_page(job_server, store, browser):
    """The live-change control sends the change through the API into the run's control
    folder; a stand-in for the search's driver answers it, and the page shows the answer."""
    import threading

    from transfer_automl import tuning

    token = create_token(job_server.data_dir, "frank")
    dataset = store.add_dataset(new_id(), "frank", "flowers", "folder", "datasets/none", REPORT)
    job_id, run_id = new_id(), "20261202-000000-abcdef"
    running_job(store, job_id, "frank", dataset["id"], {"max_trials": 4, "use_kb": False},
                run_id=run_id)
    run_dir = job_server.data_dir / "jobs" / job_id / "runs" / run_id
    run_dir.mkdir(parents=True)
    search = FakeSearch(lambda snap: store.update_job(job_id, progress=snap), max_trials=4)
    taken, done = [], threading.Event()

    def driver():  # what run_search does with a ControlInbox between polls
        inbox = tuning.ControlInbox(run_dir)
        while not done.wait(0.1):
            for request in inbox.take():
                taken.append(request)
                if request.stop:
                    inbox.answer(request.request_id, "stopping",
                                 f"{request.trial_id} stops after its current epoch")
                else:
                    inbox.answer(request.request_id, "applied",
                                 f"learning_rate={request.changes['learning_rate']:g} "
                                 f"from epoch 3", 3)

    thread = threading.Thread(target=driver, daemon=True)
    thread.start()
    try:
        browser.open(job_server.url + "/")
        browser.type_into("#token", token)
        browser.eval("document.getElementById('save-token').click()")
        browser.wait(f"{text('#user')}.includes('signed in as frank')", what="sign-in")
        browser.eval(f"location.hash = '#/jobs/{job_id}'")
        trial = search.start()
        search.epoch(trial, 0.80)
        browser.wait("!document.getElementById('tune-form').hidden", what="live-change control")
        assert browser.eval("document.getElementById('tune-trial').value") == trial
        browser.type_into("#tune-lr", "0.0005")
        browser.eval("document.getElementById('tune-btn').click()")
        browser.wait(f"{text('#tune-answer')}.includes('applied')", what="the search's answer")
        assert "from epoch 3" in browser.eval(text("#tune-answer"))
        assert [(r.trial_id, r.changes) for r in taken] == [(trial, {"learning_rate": 0.0005})]
        # the live monitor: a flat curve turns the light green and suggests a stop, which
        # one click accepts
        assert attr(browser, f"#trials-body tr[data-trial='{trial}'] .light", "class") \
            == "light light-grey"  # one epoch: too short to tell
        for _ in range(4):
            search.epoch(trial, 0.80)
        browser.wait(f"document.querySelector(\"#trials-body tr[data-trial='{trial}'] "
                     f"button.accept-stop\") !== null", what="stop suggestion")
        row = browser.eval(text(f"#trials-body tr[data-trial='{trial}']"))
        assert "converged" in row and "its best epoch is kept" in row
        assert attr(browser, f"#trials-body tr[data-trial='{trial}'] .light", "class") \
            == "light light-green"
        browser.eval("document.querySelector('button.accept-stop').click()")
        browser.wait(f"{text('#tune-answer')}.includes('stopping')", what="stop accepted")
        assert taken[-1].trial_id == trial and taken[-1].stop
        search.finish(trial, TrialState.COMPLETE)
        browser.wait("document.getElementById('tune-form').hidden", what="control hidden")
    finally:
        done.set()
        thread.join(5)
