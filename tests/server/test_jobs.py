"""Jobs through a real server process: upload, start, live events, leaderboard, download,
cancel, and a server restart in the middle of a search that the job survives."""

from __future__ import annotations

import io
import json
import signal
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import write_colour_folder
from tests.server.conftest import Server, read_events, upload_folder, wait_for


def _running_pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def alice(job_server):
    with job_server.client(job_server.tokens["alice"]) as client:
        yield client


@pytest.fixture(scope="module")
def dataset(alice, tmp_path_factory):
    folder = write_colour_folder(tmp_path_factory.mktemp("upload") / "colours", per_class=8)
    response = upload_folder(alice, folder)
    assert response.status_code == 201, response.text
    return response.json()


def test_upload_reports_the_dataset(dataset, alice):
    report = dataset["report"]
    assert dataset["kind"] == "folder" and dataset["name"] == "colours"
    assert report["class_names"] == ["blue", "green", "red"]
    assert report["n_images"] == 24 and report["splits"]["train"] == 18
    assert "path" not in dataset and "/" not in report["source"]  # no server paths leak
    assert [d["id"] for d in alice.get("/api/datasets").json()] == [dataset["id"]]


def test_job_runs_streams_progress_and_exports_a_model(dataset, alice):
    job = alice.post("/api/jobs", json={"dataset_id": dataset["id"], "seed": 1}).json()
    assert job["status"] == "queued" and job["params"]["max_trials"] == 2
    assert job["params"]["space"] == "quick" and job["params"]["seed"] == 1

    events = read_events(alice, job["id"])
    kinds = [k for k, _ in events]
    assert kinds[-1] == "end" and events[-1][1] == {"status": "complete"}
    snapshots = [data for kind, data in events if kind == "job"]
    assert "running" in [s["status"] for s in snapshots]
    progress = [s["progress"] for s in snapshots if s["progress"]]
    assert any(p["n_running"] == 1 for p in progress)  # a trial seen while it ran
    final = snapshots[-1]
    assert final["status"] == "complete" and final["run_id"]
    curve = final["progress"]["curve"]
    assert [p["n"] for p in curve] == [1, 2]
    assert all(p["best"] >= (p["score"] or 0) for p in curve)
    rows = final["progress"]["trials"]
    assert {r["trial"] for r in rows} == {"t000", "t001"}
    assert all(r["status"] in ("complete", "pruned") and r["diagnosis"] for r in rows)

    result = final["result"]
    assert result["best_score"] >= 0.6 and result["run_id"] == final["run_id"]
    board = alice.get(f"/api/jobs/{job['id']}/leaderboard").json()
    assert len(board) == 2 and board[0]["score"] == result["best_score"]
    group = alice.get(f"/api/jobs/{job['id']}/group").json()
    assert group["group"] is None and "knowledge base" in group["message"]
    listed = alice.get("/api/jobs").json()
    assert listed[0]["id"] == job["id"] and "trials" not in listed[0]["progress"]

    model = alice.get(f"/api/jobs/{job['id']}/model")
    assert model.status_code == 200 and model.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(model.content)) as zf:
        names = set(zf.namelist())
        assert {"model/saved_model.pb", "model/labels.json", "model/metadata.json"} <= names
        assert json.loads(zf.read("model/labels.json")) == ["blue", "green", "red"]
        assert json.loads(zf.read("model/metadata.json"))["run_id"] == result["run_id"]


def test_cancel_ends_the_worker_and_its_processes(dataset, alice):
    job = alice.post("/api/jobs", json={"dataset_id": dataset["id"], "max_trials": 50,
                                        "space": "demo"}).json()
    wait_for(alice, job["id"], lambda j: j["status"] == "running" and
                       j["progress"].get("n_running"), what="running trial", timeout=180)
    assert alice.get(f"/api/jobs/{job['id']}/model").status_code == 409  # no model yet
    # a live change of the running trial reaches its search (which may already have moved
    # on to the next trial: then it says so)
    running = [r["trial"] for r in alice.get(f"/api/jobs/{job['id']}").json()["progress"]
               ["trials"] if r["status"] == "running"]
    tuned = alice.post(f"/api/jobs/{job['id']}/trials/{running[0]}/tune",
                       json={"learning_rate": 0.001, "epochs_left": 2})
    assert tuned.status_code == 200, tuned.text
    assert tuned.json()["status"] in ("sent", "applied", "rejected"), tuned.json()
    assert running[0] in tuned.json()["detail"] or tuned.json()["status"] == "applied"
    bad = alice.post(f"/api/jobs/{job['id']}/trials/{running[0]}/tune",
                     json={"learning_rate": 0.001, "stop": True})
    assert bad.status_code == 422
    worker = _worker_pid(job["id"])
    response = alice.post(f"/api/jobs/{job['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    deadline = time.monotonic() + 10
    while _running_pid_alive(worker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _running_pid_alive(worker)
    # SIGKILLed trial processes take a moment to be torn down on a loaded machine
    while _group_members(worker) and time.monotonic() < deadline + 5:
        time.sleep(0.2)
    assert not _group_members(worker), "trial processes survived the cancel"
    time.sleep(1.5)  # a late write by the dying worker must not revive the job
    assert alice.get(f"/api/jobs/{job['id']}").json()["status"] == "cancelled"
    again = alice.post(f"/api/jobs/{job['id']}/cancel").json()
    assert again["status"] == "cancelled"
    late = alice.post(f"/api/jobs/{job['id']}/trials/t000/tune", json={"stop": True})
    assert late.status_code == 409 and "not running" in late.json()["detail"]


def _worker_pid(job_id: str) -> int:
    """The worker's pid, read from /proc (the API does not expose pids)."""
    for stat in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmd = stat.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"transfer_automl.server.worker" in cmd and job_id.encode() in cmd:
            return int(stat.parent.name)
    raise AssertionError(f"no worker process of job {job_id}")


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().split(")")[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


def test_jobs_resume_or_run_after_the_server_is_killed(server_root, cache_root, colour_folder):
    from tests.server.conftest import FAST_JOBS, create_token

    data = server_root / "restart-data"
    data.mkdir()
    token = create_token(data, "carol")
    server = Server(data, [*FAST_JOBS, "--cache-dir", str(cache_root)]).start()
    try:
        with server.client(token) as client:
            ds = upload_folder(client, colour_folder).json()
            job = client.post("/api/jobs", json={"dataset_id": ds["id"], "max_trials": 3}).json()
            queued = client.post("/api/jobs", json={"dataset_id": ds["id"]}).json()
            before = wait_for(client, job["id"], lambda j: j["progress"].get("n_finished", 0) >= 1,
                              what="finished trial")
            assert client.get(f"/api/jobs/{queued['id']}").json()["status"] == "queued"
        server.stop(signal.SIGKILL)  # no chance to clean up: the worker must notice alone
        first = {r["trial"]: r for r in before["progress"]["trials"] if r["status"] != "running"}

        server.start()
        with server.client(token) as client:
            done = wait_for(client, job["id"], lambda j: j["status"] == "complete",
                            what="completion")
            # The job queued behind it (--max-jobs 1) runs next, then is not needed any more.
            wait_for(client, queued["id"], lambda j: j["status"] in ("running", "complete"),
                     what="start of the queued job")
            assert client.post(f"/api/jobs/{queued['id']}/cancel").status_code == 200
        assert done["run_id"] == before["run_id"]  # the same run, resumed
        assert done["attempts"] == 2
        board = {r["trial"]: r for r in done["result"]["leaderboard"]}
        assert len(board) == 3
        for trial_id, row in first.items():  # trials finished before the kill were kept
            assert board[trial_id]["score"] == row["score"]
            assert board[trial_id]["cost_s"] == row["cost_s"]
        log = (data / "jobs" / job["id"] / "worker.log").read_text()
        assert f"resuming run {before['run_id']}" in log
    finally:
        server.stop()
