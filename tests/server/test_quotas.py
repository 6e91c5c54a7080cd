"""What a token holder may ask of the server: job caps (400), per-user quotas of datasets,
bytes and jobs (429), and deleting datasets and jobs (owner only; a queued or running job is
cancelled first; a dataset an active job uses is 409). The app runs in this process without
its lifespan, so no job is ever launched; uploads are still checked in child processes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from tests.conftest import write_colour_folder
from tests.server.conftest import upload_folder
from transfer_automl.server.app import create_app
from transfer_automl.server.config import MB, JobCaps, JobDefaults, Quotas, ServerConfig

CAPS = JobCaps(max_trials=10, max_time_budget_s=600, max_parallel=2)
QUOTAS = Quotas(max_datasets=2, max_stored_bytes=int(0.1 * MB), max_active_jobs=1)


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data = tmp_path_factory.mktemp("quota") / "data"
    config = ServerConfig(data, search_kb=False, caps=CAPS, quotas=QUOTAS,
                          defaults=JobDefaults(max_trials=2, time_budget_s=60))
    app = create_app(config)
    yield app
    app.state.store.close()


def _client(app, user: str) -> TestClient:
    token = app.state.store.create_token(user)
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return write_colour_folder(tmp_path_factory.mktemp("small") / "colours", per_class=3,
                               size=16)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    return write_colour_folder(tmp_path_factory.mktemp("big") / "colours", per_class=3,
                               size=96)


def test_jobs_beyond_the_servers_caps_are_400(app, small):
    client = _client(app, "ann")
    ds = upload_folder(client, small).json()
    for ask, words in [({"n_parallel": 16}, "n_parallel 16 is more than this server allows "
                                            "(2, --cap-parallel)"),
                       ({"executor": "spark"}, "executor 'spark' is not allowed on this server "
                                               "(allowed: local; --allow-executor)"),
                       ({"max_trials": 11}, "max_trials 11 is more than this server allows"),
                       ({"time_budget_s": 601}, "time_budget_s 601 is more than")]:
        response = client.post("/api/jobs", json={"dataset_id": ds["id"], **ask})
        assert response.status_code == 400 and words in response.json()["detail"], ask
    assert not client.get("/api/jobs").json()
    response = client.post("/api/jobs", json={"dataset_id": ds["id"], "n_parallel": 2,
                                              "max_trials": 10, "time_budget_s": 600})
    assert response.status_code == 201 and response.json()["params"]["n_parallel"] == 2
    me = client.get("/api/me").json()
    assert me["caps"] == {"max_trials": 10, "max_time_budget_s": 600, "max_parallel": 2,
                          "executors": ["local"]}
    assert me["usage"]["active_jobs"] == 1 and me["quotas"]["max_active_jobs"] == 1


def test_dataset_quota_and_delete(app, small):
    cara, ben = _client(app, "cara"), _client(app, "ben")
    first, second = (upload_folder(cara, small).json() for _ in range(2))
    third = upload_folder(cara, small)
    assert third.status_code == 429
    assert "2 datasets of at most 2 (--quota-datasets)" in third.json()["detail"]
    assert ben.delete(f"/api/datasets/{first['id']}").status_code == 404  # not ben's
    folder = app.state.config.datasets_dir() / first["id"]
    assert folder.is_dir()
    assert cara.delete(f"/api/datasets/{first['id']}").status_code == 204
    assert not folder.exists() and cara.get(f"/api/datasets/{first['id']}").status_code == 404
    assert cara.delete(f"/api/datasets/{first['id']}").status_code == 404
    assert [d["id"] for d in cara.get("/api/datasets").json()] == [second["id"]]
    assert upload_folder(cara, small).status_code == 201


def test_bytes_quota_counts_what_a_dataset_takes_on_disk(app, small, big):
    dan = _client(app, "dan")
    response = upload_folder(dan, big)
    assert response.status_code == 429 and "(--quota-mb)" in response.json()["detail"]
    datasets = app.state.config.datasets_dir()
    assert not [p for p in datasets.iterdir() if p.name.startswith(".incoming")]
    stored = {p.name for p in datasets.iterdir()}
    assert stored == {d["id"] for u in ("ann", "cara") for d in app.state.store.datasets(u)}
    ok = upload_folder(dan, small).json()
    assert 0 < ok["report"]["stored_bytes"] < QUOTAS.max_stored_bytes
    assert dan.get("/api/me").json()["usage"] == {
        "datasets": 1, "stored_bytes": ok["report"]["stored_bytes"], "active_jobs": 0}


def test_job_quota_and_deleting_jobs_and_their_datasets(app, small):
    eve, store, manager = _client(app, "eve"), app.state.store, app.state.manager
    ds = upload_folder(eve, small).json()
    job = eve.post("/api/jobs", json={"dataset_id": ds["id"]}).json()
    over = eve.post("/api/jobs", json={"dataset_id": ds["id"]})
    assert over.status_code == 429 and "(--quota-jobs)" in over.json()["detail"]
    assert eve.delete(f"/api/datasets/{ds['id']}").status_code == 409  # queued job uses it

    # A running job, with a worker process group of its own.
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              start_new_session=True)
    manager._procs[job["id"]] = worker
    store.update_job(job["id"], status="running", pid=worker.pid)
    job_dir = app.state.config.job_dir(job["id"])
    job_dir.mkdir(parents=True)
    refused = eve.delete(f"/api/datasets/{ds['id']}")
    assert refused.status_code == 409 and job["id"] in refused.json()["detail"]
    assert _client(app, "fay").delete(f"/api/jobs/{job['id']}").status_code == 404
    assert eve.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert worker.poll() is not None, "the running job's worker was not ended first"
    assert eve.get(f"/api/jobs/{job['id']}").status_code == 404 and not job_dir.exists()

    done = eve.post("/api/jobs", json={"dataset_id": ds["id"]}).json()  # room again
    eve.post(f"/api/jobs/{done['id']}/cancel")
    assert eve.delete(f"/api/datasets/{ds['id']}").status_code == 204  # only a finished job
    assert eve.get(f"/api/datasets/{ds['id']}").status_code == 404
    assert eve.get(f"/api/jobs/{done['id']}").json()["dataset_id"] == ds["id"]
    assert eve.get("/api/me").json()["usage"]["datasets"] == 0
    assert eve.delete(f"/api/jobs/{done['id']}").status_code == 204
    assert eve.get("/api/jobs").json() == []
