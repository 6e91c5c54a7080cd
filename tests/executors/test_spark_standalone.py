"""The cluster path end to end: a standalone master and two workers started by
``transfer-automl cluster start``, a search with ``spark_master="spark://..."`` that loses a
worker mid-search, ``transfer-automl fit --spark-master``, ``spark-submit`` of the package's
entry point, and ``cluster stop``."""

import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pyspark")

from typer.testing import CliRunner  # noqa: E402

from knowledge_base import KnowledgeBase  # noqa: E402
from transfer_automl import fit_auto  # noqa: E402
from transfer_automl.cli import app  # noqa: E402
from transfer_automl.executors.standalone import StandaloneCluster  # noqa: E402
from transfer_automl.options import SearchOptions, TrackingOptions  # noqa: E402
from transfer_automl.pruners import Pruner  # noqa: E402
from transfer_automl.space import default_space  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("java") is None, reason="needs java")]

CLI = [sys.executable, "-m", "transfer_automl.cli"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A master and two 1-core workers, started and stopped through the command line."""
    folder = tmp_path_factory.mktemp("cluster")
    started = subprocess.run([*CLI, "cluster", "start", "--workers", "2", "--cores", "1",
                              "--memory", "2g", "--port", "0", "--dir", str(folder)],
                             capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip().splitlines()[-1]
    assert url.startswith("spark://127.0.0.1:")
    yield StandaloneCluster.load(folder)
    stopped = subprocess.run([*CLI, "cluster", "stop", "--dir", str(folder)],
                             capture_output=True, text=True, timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    assert not (folder / "state.json").exists()


class NeverStop(Pruner):
    """Lets every trial run all its epochs (the tiny dataset would stall them early)."""

    def prune(self, trial, finished):
        return None


def _space():
    # augmented trials (a backbone pass per step) of 20 epochs last long enough that both
    # workers run one when worker 1 is killed
    return default_space().fix(resolution=64, epochs=20, optimizer="adam", n_dense=1,
                               augment=1.0)


def test_search_on_the_cluster_survives_a_killed_worker(cluster, cache_root, colour_folder,
                                                        tmp_path, caplog):
    kb_url = f"sqlite:///{tmp_path / 'kb.sqlite'}"
    running, killed = set(), []

    def kill_worker_when_both_busy(event):
        if event.trial is None:
            return
        trial = event.trial.spec.trial_id
        if event.kind == "epoch" and event.trial.epochs[-1].epoch >= 2:
            running.add(trial)
        elif event.kind == "finished":
            running.discard(trial)
        if len(running) >= 2 and not killed:  # one of the two runs on worker 1
            killed.append(trial)
            cluster.kill_worker(1)  # the worker, its executor and Python workers

    caplog.set_level(logging.WARNING, logger="transfer_automl.executors.spark")
    result = fit_auto(colour_folder, spark_master=cluster.master_url, max_trials=4,
                      time_budget_s=600, kb=kb_url, cache_dir=cache_root,
                      search=SearchOptions(space=_space(), multi_fidelity=False,
                                           warm_start="none", pruner=NeverStop()),
                      tracking=TrackingOptions(runs_dir=tmp_path / "runs",
                                               trackers=(kill_worker_when_both_busy,)))
    assert killed, "two trials never ran at once"
    assert cluster.alive_workers() == 1
    # the trial on the lost worker ran again on the other one (or failed, with a reason)
    rows = {row["trial"]: row for row in result.leaderboard if row["trial"].startswith("t")}
    assert len(rows) == 4
    for row in rows.values():
        assert row["status"] in ("complete", "pruned") or row["reason"], row
    restarted = [r.getMessage() for r in caplog.records if "started over" in r.getMessage()
                 or "lost its worker" in r.getMessage()]
    assert restarted, "no trial was re-run after the worker was lost"
    assert result.test_score is not None
    # nothing lost in the knowledge base: every trial of the run is there
    kb = KnowledgeBase(kb_url)
    try:
        recorded = {t.trial_id: t.status for t in kb.trials(run_id=result.run_id)}
        assert {t: recorded.get(t) for t in rows} == {t: r["status"] for t, r in rows.items()}
    finally:
        kb.close()
    cluster.start_worker(1)
    deadline = time.monotonic() + 120
    while cluster.alive_workers() < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert cluster.alive_workers() == 2


def test_fit_command_takes_a_spark_master(cluster, cache_root, colour_folder, tmp_path):
    out = tmp_path / "model"
    result = CliRunner().invoke(app, [
        "fit", str(colour_folder), "--spark-master", cluster.master_url, "--max-trials", "2",
        "--time-budget", "300", "--no-kb", "--cache-dir", str(cache_root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{cluster.master_url} executor" in result.output
    assert (out / "saved_model.pb").exists()


def test_spark_submit_runs_a_search_on_the_cluster(cluster, cache_root, colour_folder,
                                                   tmp_path):
    from transfer_automl.executors.standalone import spark_home
    from transfer_automl.submit import ENTRY_POINT

    out = tmp_path / "model"
    submitted = subprocess.run(
        [str(spark_home() / "bin" / "spark-submit"), "--master", cluster.master_url,
         "--conf", f"spark.pyspark.python={sys.executable}", str(ENTRY_POINT),
         "fit", str(colour_folder), "--max-trials", "2", "--time-budget", "300", "--no-kb",
         "--cache-dir", str(cache_root), "--out", str(out)],
        capture_output=True, text=True, timeout=600,
        env={**_env(), "PYSPARK_DRIVER_PYTHON": sys.executable})
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert f"({cluster.master_url} executor)" in submitted.stdout + submitted.stderr
    assert json.loads((out / "metadata.json").read_text())["run_id"]
    assert (out / "saved_model.pb").exists()


def _env():
    import os

    return dict(os.environ)
