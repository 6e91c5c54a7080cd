"""Choosing the executors' Python, the master of a search and the metrics port, without
starting Spark."""

import socket
import sys

import pytest

from transfer_automl.errors import InputError, TrialSuperseded
from transfer_automl.executors import LocalExecutor, make_executor
from transfer_automl.executors._spark_metrics import MetricsServer, SocketReporter, metrics_port
from transfer_automl.executors.spark import SparkExecutor, _Trial
from transfer_automl.executors.spark_session import executor_python, runs_here
from transfer_automl.submit.spark_main import _with_master
from transfer_automl.trial import EpochMetrics, TrialSpec


@pytest.mark.parametrize("master, here", [
    ("local[*]", True), ("local[2]", True), ("local-cluster[2,1,1024]", True),
    ("spark://127.0.0.1:7077", True), ("spark://localhost:7077", True),
    (f"spark://{socket.gethostname()}:7077", True),
    ("spark://10.255.255.1:7077", False), ("spark://127.0.0.1:7077,10.255.255.1:7077", False),
    ("yarn", False), ("k8s://https://api:6443", False)])
def test_masters_that_run_executors_here(master, here):
    assert runs_here(master) is here


def test_executor_python_is_the_drivers_only_where_executors_run_here(monkeypatch):
    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    assert executor_python("local[2]") == sys.executable
    assert executor_python("spark://127.0.0.1:7077") == sys.executable
    assert executor_python("spark://10.255.255.1:7077") is None  # Spark's default python3
    assert executor_python("yarn", {"spark.pyspark.python": "./env/bin/python"}) \
        == "./env/bin/python"
    monkeypatch.setenv("PYSPARK_PYTHON", "/opt/py/bin/python")
    assert executor_python("spark://10.255.255.1:7077") == "/opt/py/bin/python"
    assert executor_python("local[2]") == "/opt/py/bin/python"
    assert executor_python("local[2]", {"spark.pyspark.python": "/x"}) == "/x"


def test_spark_master_argument_selects_spark():
    executor = make_executor("local", spark_master="spark://127.0.0.1:7077")
    assert isinstance(executor, SparkExecutor)
    assert executor.spark_master == "spark://127.0.0.1:7077"
    assert make_executor("spark", spark_master="local[2]").spark_master == "local[2]"
    assert isinstance(make_executor("local"), LocalExecutor)
    with pytest.raises(InputError, match="spark_master: expected a Spark master URL"):
        make_executor("local", spark_master="127.0.0.1:7077")
    with pytest.raises(InputError, match="does not go with"):
        make_executor("local[2]", spark_master="spark://127.0.0.1:7077")


def test_submitted_search_commands_run_on_the_submitted_master():
    url = "spark://h:7077"
    assert _with_master(["fit", "data", "--max-trials", "2"], url) == \
        ["fit", "data", "--max-trials", "2", "--spark-master", url]
    assert _with_master(["-v", "resume", "r1"], url)[-2:] == ["--spark-master", url]
    assert _with_master(["fit", "d", "--spark-master=local[2]"], url) == \
        ["fit", "d", "--spark-master=local[2]"]
    assert _with_master(["kb", "groups"], url) == ["kb", "groups"]


def test_metrics_port_from_argument_or_environment(monkeypatch):
    monkeypatch.delenv("TRANSFER_AUTOML_METRICS_PORT", raising=False)
    assert metrics_port() == 0
    assert metrics_port(40123) == 40123
    monkeypatch.setenv("TRANSFER_AUTOML_METRICS_PORT", "40124")
    assert metrics_port() == 40124
    monkeypatch.setenv("TRANSFER_AUTOML_METRICS_PORT", "port")
    with pytest.raises(InputError, match="TRANSFER_AUTOML_METRICS_PORT"):
        metrics_port()
    with socket.socket() as s:
        s.bind(("", 0))
        s.listen()
        busy = s.getsockname()[1]
        with pytest.raises(InputError, match=f"metrics port {busy}"):
            MetricsServer("127.0.0.1", "t", lambda m, a: None, port=busy)


def _epoch(epoch):
    return EpochMetrics("t000", epoch, 1.0, 0.5, 1.0, 0.1 * epoch, 0.01)


def test_epochs_of_a_superseded_attempt_are_dropped_and_told_to_stop(caplog):
    executor = SparkExecutor("local[2]")
    trial = _Trial(TrialSpec("t000", 0, {}, "default", 0), "group", 0.0, attempt=1)
    executor._trials["t000"] = trial
    assert executor._on_metrics(_epoch(1), (1, 0))["stop"] is None
    assert executor._on_metrics(_epoch(2), (1, 0))["stop"] is None
    # Spark re-ran the task after losing its executor: the trial starts over
    assert executor._on_metrics(_epoch(1), (1, 1))["stop"] is None
    assert "started over" in caplog.text
    # the first task's process, still running somewhere, is told to stop
    assert executor._on_metrics(_epoch(3), (1, 0))["stop"].startswith(TrialSuperseded.PREFIX)
    # an attempt the executor did not start (here: a number it has not reached)
    assert "superseded" in executor._on_metrics(_epoch(3), (2, 1))["stop"]
    events = executor.poll(0)
    assert [e.epoch for e in events] == [1, 2]  # only new epochs reach the search


def test_reporter_sends_its_attempts():
    seen = []
    server = MetricsServer("127.0.0.1", "secret", lambda m, a: seen.append(a))
    try:
        reporter = SocketReporter(server.address, "secret", attempt=2, task_attempt=1)
        reporter(_epoch(1))
        reporter.close()
    finally:
        server.close()
    assert seen == [(2, 1)]


def test_command_line_spark_master_implies_the_spark_executor():
    import typer

    from transfer_automl.cli.common import executor_arg

    assert executor_arg(None, None) == "local"
    assert executor_arg(None, "spark://h:7077") == "spark://h:7077"
    assert executor_arg("spark", None) == "spark"
    assert executor_arg("spark", "local[2]") == "local[2]"
    with pytest.raises(typer.BadParameter, match="does not go with --executor local"):
        executor_arg("local", "spark://h:7077")


def test_reporter_of_a_superseded_attempt_raises_superseded():
    server = MetricsServer("127.0.0.1", "s", lambda m, a: f"{TrialSuperseded.PREFIX}newer one")
    try:
        reporter = SocketReporter(server.address, "s")
        with pytest.raises(TrialSuperseded):
            reporter(_epoch(1))
        reporter.close()
    finally:
        server.close()


def test_live_changes_reach_the_trial_with_its_next_report_or_poll():
    executor = SparkExecutor("local[2]")
    executor._trials["t000"] = _Trial(TrialSpec("t000", 0, {}, "default", 0), "g", 0.0,
                                      attempt=1)
    assert executor.tune("t000", {"learning_rate": 1e-4})
    assert not executor.tune("t999", {"learning_rate": 1e-4})
    assert executor._on_metrics(_epoch(1), (1, 0)) == {"stop": None,
                                                        "tune": {"learning_rate": 1e-4}}
    assert executor._on_metrics(_epoch(2), (1, 0))["tune"] is None  # handed over once
    executor.tune("t000", {"momentum": 0.8})
    assert executor._on_poll("t000", (1, 0)) == {"tune": {"momentum": 0.8}}


def test_socket_reporter_returns_changes_and_polls():
    replies = {"t000": {"stop": None, "tune": {"epochs_left": 3}}}
    server = MetricsServer("127.0.0.1", "s", lambda m, a: replies[m.trial_id],
                           on_poll=lambda t, a: {"tune": {"learning_rate": 0.5}})
    try:
        reporter = SocketReporter(server.address, "s")
        assert reporter.poll() is None  # no trial yet
        assert reporter(_epoch(1)) == {"epochs_left": 3}
        assert reporter.poll() == {"learning_rate": 0.5}
        reporter.close()
    finally:
        server.close()
