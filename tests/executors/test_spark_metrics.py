"""The metrics channel and Spark error reading, without Spark."""

import socket

import pytest

from transfer_automl.errors import TrialPruned
from transfer_automl.executors._spark_metrics import MetricsServer, SocketReporter
from transfer_automl.executors.spark_session import failure_reason, looks_lost
from transfer_automl.trial import EpochMetrics


def _epoch(epoch, trial_id="t000"):
    return EpochMetrics(trial_id, epoch, 1.0, 0.5, 1.0, 0.1 * epoch, 0.01)


@pytest.fixture
def server():
    seen, stops = [], {}

    def on_metrics(m, attempt):
        seen.append(m)
        return stops.get(m.trial_id)

    srv = MetricsServer("127.0.0.1", "secret", on_metrics)
    yield srv, seen, stops
    srv.close()


def test_epochs_reach_the_driver_and_a_stop_reply_raises(server):
    srv, seen, stops = server
    reporter = SocketReporter(srv.address, "secret")
    reporter(_epoch(1))
    reporter(_epoch(2))
    stops["t000"] = "pruned: below median"
    with pytest.raises(TrialPruned, match="below median"):
        reporter(_epoch(3))
    reporter.close()
    assert [m.epoch for m in seen] == [1, 2, 3]
    assert seen[0] == _epoch(1)


def test_wrong_token_is_ignored(server):
    srv, seen, _ = server
    reporter = SocketReporter(srv.address, "not-the-secret", timeout_s=5)
    reporter(_epoch(1))  # best effort: no exception, nothing delivered
    assert seen == []


def test_unreachable_driver_does_not_break_the_trial():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    reporter = SocketReporter(("127.0.0.1", port), "secret", timeout_s=2)
    reporter(_epoch(1))
    reporter.close()


def test_server_close_is_idempotent():
    srv = MetricsServer("127.0.0.1", "t", lambda m, a: None)
    srv.close()
    srv.close()


SPARK_CRASH = """An error occurred while calling o56.collectAndServe.
: org.apache.spark.SparkException: Job aborted due to stage failure: Task 0 in stage 2.0 failed \
1 times, most recent failure: Lost task 0.0 in stage 2.0 (TID 2) (10.0.0.5 executor 0): \
org.apache.spark.SparkException: Python worker exited unexpectedly (crashed): 
\tat org.apache.spark.api.python.BasePythonRunner"""


def test_failure_reason_reads_the_task_error():
    reason = failure_reason(Exception(SPARK_CRASH))
    assert reason.startswith("Python worker exited unexpectedly (crashed)")
    assert "out of memory" in reason
    assert looks_lost(Exception(SPARK_CRASH))
    lost = "most recent failure: Lost task 0.0 in stage 1.0 (TID 1) (h executor 1): " \
           "ExecutorLostFailure (executor 1 exited caused by one of the running tasks)"
    assert looks_lost(Exception(lost))
    assert not looks_lost(Exception("Job 6 cancelled part of cancelled job group g"))


def test_importing_executors_does_not_import_pyspark():
    import subprocess
    import sys

    code = ("import sys, transfer_automl.executors as e; assert 'pyspark' not in sys.modules; "
            "e.SparkExecutor; assert 'pyspark' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)
