"""Two writers at once lose nothing; a writer killed mid-run leaves the KB consistent."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3

import pytest

from .kb_workers import trial_payload, write_trials, write_until_killed
from knowledge_base import KnowledgeBase

N_TRIALS = 200


def test_two_processes_writing_at_once_lose_nothing(kb_url):
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    workers = [ctx.Process(target=write_trials, args=(kb_url, w, N_TRIALS, barrier))
               for w in (0, 1)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(timeout=120)
    assert [p.exitcode for p in workers] == [0, 0]

    with KnowledgeBase(kb_url) as kb:
        [ds] = kb.datasets()  # both added the same fingerprint: stored once
        assert {r.id: r.status for r in kb.runs()} == {"run-0": "complete", "run-1": "complete"}
        trials = kb.trials(dataset_id=ds.id)
        assert len(trials) == 2 * N_TRIALS
        for worker in (0, 1):
            mine = [t for t in trials if t.run_id == f"run-{worker}"]
            assert [t.number for t in mine] == list(range(N_TRIALS))
            for t in mine:
                expected = trial_payload(worker, t.number)
                assert (t.trial_id, t.status, t.score, t.config, t.metrics) == (
                    expected["trial_id"], "complete", expected["score"], expected["config"],
                    expected["metrics"])


def test_killed_writer_leaves_a_consistent_kb(kb_url):
    ctx = mp.get_context("spawn")
    acks = ctx.Queue()
    child = ctx.Process(target=write_until_killed, args=(kb_url, acks))
    child.start()
    committed = -1
    try:
        assert acks.get(timeout=60) == -1  # dataset and run are in
        while committed < 40:
            committed = acks.get(timeout=60)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    while not acks.empty():  # commits acknowledged between our last read and the kill
        committed = max(committed, acks.get(timeout=5))

    if "://" not in kb_url:
        with sqlite3.connect(kb_url) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with KnowledgeBase(kb_url) as kb:
        [run] = kb.runs()
        assert (run.id, run.status, run.finished, run.best_trial_id) == ("doomed", "running",
                                                                          None, None)
        trials = kb.trials(run_id="doomed")
        # Everything acknowledged is there; at most the one in flight may also have landed.
        assert committed + 1 <= len(trials) <= committed + 2
        assert [t.number for t in trials] == list(range(len(trials)))
        for t in trials:
            expected = trial_payload(0, t.number)
            assert (t.config, t.score, t.metrics, t.status) == (
                expected["config"], expected["score"], expected["metrics"], "complete")
        # The KB stays writable: the run can be closed by whoever cleans up.
        kb.finish_run("doomed", "interrupted")
        assert kb.runs(status="interrupted")[0].id == "doomed"


def test_opening_a_new_sqlite_kb_waits_for_another_writers_lock(tmp_path):
    """Switching a new file to WAL needs a lock SQLite does not wait for by itself."""
    import threading

    from knowledge_base.engine import make_engine, resolve_url

    path = tmp_path / "kb.sqlite"
    locked, release = threading.Event(), threading.Event()

    def hold_a_write_lock():
        conn = sqlite3.connect(path, isolation_level=None)  # a new file, rollback journal
        conn.execute("CREATE TABLE other_writer (x INTEGER)")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO other_writer VALUES (1)")
        locked.set()
        release.wait(timeout=30)
        conn.execute("COMMIT")
        conn.close()

    holder = threading.Thread(target=hold_a_write_lock)
    holder.start()
    assert locked.wait(timeout=30)
    threading.Timer(0.5, release.set).start()
    engine = make_engine(resolve_url(path))
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    holder.join(timeout=30)
    engine.dispose()
