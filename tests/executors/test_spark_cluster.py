"""SparkExecutor on ``local-cluster[2,1,1024]``: separate executor JVMs, so worker and executor
deaths can be staged. pyspark's pip package runs local-cluster with its own layout as SPARK_HOME."""

import os
import signal
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("pyspark")

from pyspark import cloudpickle  # noqa: E402

from transfer_automl.trial import TrialContext  # noqa: E402
from transfer_automl.executors.spark import SparkExecutor  # noqa: E402
from transfer_automl.search import Budget, run_search  # noqa: E402
from transfer_automl.space import Choice, Float, SearchSpace  # noqa: E402
from transfer_automl.study import Study  # noqa: E402
from transfer_automl.trial import EpochMetrics, TrialResult, TrialState  # noqa: E402

pytestmark = pytest.mark.slow

# Pytest imports this file under a name the Spark workers cannot import: ship it by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

MASTER = "local-cluster[2,1,1024]"
SPACE = SearchSpace((Choice("mode", ("ok", "crash_once", "crash", "kill_executor")),
                     Float("n", 0, 1000)), {"mode": "ok", "n": 0})


def _first_attempt(spec, context) -> bool:
    """True only the first time this trial runs (marker files in the run directory)."""
    marker = Path(context.run_dir, f"{spec.trial_id}.attempted")
    if marker.exists():
        return False
    marker.write_text(str(os.getpid()))
    return True


def _executor_jvm_pid() -> int:
    """The executor JVM above this Python worker (worker -> pyspark daemon -> JVM)."""
    pid = os.getppid()
    for _ in range(3):
        if b"CoarseGrainedExecutorBackend" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
        pid = int(Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[1])
    raise RuntimeError("no executor JVM above this worker")


def cluster_trial(spec, context, reporter):
    mode = spec.config["mode"]
    reporter(EpochMetrics(spec.trial_id, 1, 1.0, 0.5, 1.0, 0.5, 0.0))
    if mode == "crash" or (mode == "crash_once" and _first_attempt(spec, context)):
        os.kill(os.getpid(), signal.SIGKILL)  # the Python worker dies mid-trial
    if mode == "kill_executor" and _first_attempt(spec, context):
        jvm = _executor_jvm_pid()
        Path(context.run_dir, f"{spec.trial_id}.jvm").write_text(str(jvm))
        os.kill(jvm, signal.SIGKILL)  # the whole executor is lost
        time.sleep(60)
    time.sleep(0.3)
    metrics = EpochMetrics(spec.trial_id, 2, 1.0, 0.5, 1.0, 0.6, 0.3)
    reporter(metrics)
    return TrialResult(spec.trial_id, TrialState.COMPLETE, score=0.6, best_epoch=2,
                       artifact="none",
                       extra={"pid": os.getpid(), "jvm": _executor_jvm_pid()})


@pytest.fixture(scope="module")
def cluster():
    from transfer_automl.executors.spark_session import default_conf, get_or_create

    session, created = get_or_create(MASTER, {"spark.executor.memory": "512m"},
                                     defaults=default_conf())
    deadline = time.monotonic() + 120
    sc = session.sparkContext
    while sc._jsc.sc().getExecutorIds().size() < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    yield session
    if created:
        session.stop()


def _run(tmp_path, *modes):
    study = Study(SPACE, seed=0)
    for i, mode in enumerate(modes):
        study.enqueue({"mode": mode, "n": i})
    executor = SparkExecutor(MASTER, trial_fn=cluster_trial)
    epochs = []
    run_search(study, executor, TrialContext("unused.json", str(tmp_path), "", ""),
               Budget(len(modes), 300),
               lambda e: epochs.append(e.trial.spec.trial_id) if e.kind == "epoch" else None,
               poll_s=0.1)
    return study, epochs


def test_killed_python_worker_is_retried_and_the_search_completes(cluster, tmp_path):
    study, epochs = _run(tmp_path, "crash_once", "ok", "ok")
    assert [r.state for r in study.trials.values()] == [TrialState.COMPLETE] * 3
    assert (tmp_path / "t000.attempted").exists()
    assert epochs.count("t000") == 2  # epoch 1 of the retry is not reported twice


def test_worker_dying_on_every_attempt_is_failed_with_a_reason(cluster, tmp_path):
    study, _ = _run(tmp_path, "crash", "ok")
    failed = study.trials["t000"]
    assert failed.state == TrialState.FAILED
    assert "Python worker exited unexpectedly" in failed.result.reason
    assert "gave up after 2 attempts" in failed.result.reason
    assert study.trials["t001"].state == TrialState.COMPLETE


def test_lost_executor_is_retried_elsewhere(cluster, tmp_path):
    study, _ = _run(tmp_path, "kill_executor", "ok", "ok")
    states = {t: r.state for t, r in study.trials.items()}
    assert states == dict.fromkeys(("t000", "t001", "t002"), TrialState.COMPLETE), \
        {t: r.result.reason for t, r in study.trials.items()}
    killed = int((tmp_path / "t000.jvm").read_text())
    assert study.trials["t000"].result.extra["jvm"] != killed  # ran on another executor
