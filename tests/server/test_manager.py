"""The job manager without a web server: a worker that fails records why, jobs left running
by a dead server are requeued first, and a queued job cancels without a process."""

from __future__ import annotations

import time

import pytest

from transfer_automl.server.config import JobDefaults, ServerConfig
from transfer_automl.server.jobs import JobManager
from transfer_automl.server.store import ServerStore

PARAMS = {**vars(JobDefaults(max_trials=1, space="quick", cv_folds=0)), "use_kb": False}


@pytest.fixture
def setup(tmp_path):
    config = ServerConfig(tmp_path / "data", search_kb=False)
    config.data_dir.mkdir()
    store = ServerStore(config.kb)
    store.add_dataset("d1", "ann", "gone", "folder", "datasets/d1/files", {})
    yield config, store
    store.close()


def _wait_status(store: ServerStore, job_id: str, statuses: tuple[str, ...], timeout=60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.job(job_id)
        if job["status"] in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {store.job(job_id)['status']}")


def test_a_failing_worker_records_the_reason(setup):
    config, store = setup
    store.add_job("j1", "ann", "d1", PARAMS)  # its files are missing on disk
    manager = JobManager(config, store, poll_s=0.1)
    manager.start()
    try:
        job = _wait_status(store, "j1", ("failed", "complete"))
    finally:
        manager.shutdown()
    assert job["status"] == "failed" and "does not exist" in job["error"]
    assert job["attempts"] == 1 and job["finished"] and job["pid"] is None
    assert (config.job_dir("j1") / "worker.log").is_file()


def test_jobs_left_running_are_requeued_first(setup):
    config, store = setup
    store.add_job("old", "ann", "d1", PARAMS)
    store.add_job("new", "ann", "d1", PARAMS)
    store.update_job("new", status="running", attempts=1, pid=2**22 + 7)  # not our worker
    manager = JobManager(config, store)
    assert manager.recover() == ["new"]
    job = store.job("new")
    assert job["status"] == "queued" and job["attempts"] == 1 and job["pid"] is None
    assert [j["id"] for j in manager.queue()] == ["new", "old"]
    assert manager.recover() == []


def test_a_queued_job_cancels_without_a_process(setup):
    config, store = setup
    store.add_job("q", "ann", "d1", PARAMS)
    job = JobManager(config, store).cancel("q")
    assert job["status"] == "cancelled" and job["error"] == "cancelled by the user"
    assert not config.job_dir("q").exists()


def test_cancelling_a_running_job_closes_its_knowledge_base_run(tmp_path):
    from knowledge_base import KnowledgeBase

    config = ServerConfig(tmp_path / "data", search_kb=True)
    config.data_dir.mkdir()
    store = ServerStore(config.kb)
    try:
        store.add_dataset("d1", "ann", "gone", "folder", "datasets/d1/files", {})
        with KnowledgeBase(config.kb) as kb:
            ds = kb.add_dataset("d1", "fp-d1", [1.0, 0.0])
            for run in ("r-cancelled", "r-done"):
                kb.start_run(run, ds)
                kb.record_trial(run, {"trial_id": "t000", "status": "complete", "score": 0.9})
                kb.record_trial(run, {"trial_id": "t001"})  # running when the job ends
            kb.finish_run("r-done", "complete")
        store.add_job("j", "ann", "d1", {**PARAMS, "use_kb": True})
        store.update_job("j", status="running", run_id="r-cancelled")
        assert JobManager(config, store).cancel("j")["status"] == "cancelled"
        assert not store.interrupt_run("r-done", "late")  # a finished run stays as it is
        with KnowledgeBase(config.kb) as kb:
            runs = {r.id: r.status for r in kb.runs()}
            trials = {(t.run_id, t.trial_id): (t.status, t.reason) for t in kb.trials()}
        assert runs == {"r-cancelled": "interrupted", "r-done": "complete"}
        assert trials[("r-cancelled", "t000")][0] == "complete"
        assert trials[("r-cancelled", "t001")] == ("failed", "job cancelled by the user")
        assert trials[("r-done", "t001")][0] == "running"
    finally:
        store.close()
