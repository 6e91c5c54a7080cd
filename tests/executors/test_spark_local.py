"""SparkExecutor on ``local[2]``: the executor contract through ``run_search``, with a cheap
picklable trial function, plus one run of the real ``TrialRunner``."""

import os
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

# Pytest imports this file under a name the Spark workers cannot import: ship it by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

MODES = ("ok", "raise", "hang")
SPACE = SearchSpace((Choice("mode", MODES), Float("sleep", 0.0, 120.0),
                     Float("epochs", 1, 100), Float("n", 0, 1000)),
                    {"mode": "ok", "sleep": 0.2, "epochs": 3, "n": 0})


def fake_trial(spec, context, reporter):
    """Sleeps per epoch and reports; "raise" raises, "hang" writes its pid and sleeps long."""
    config = spec.config
    if config["mode"] == "raise":
        raise ValueError("boom")
    if config["mode"] == "hang":
        Path(context.run_dir, f"{spec.trial_id}.pid").write_text(str(os.getpid()))
        time.sleep(config["sleep"])
    history = []
    for epoch in range(1, int(config["epochs"]) + 1):
        time.sleep(config["sleep"])
        metrics = EpochMetrics(spec.trial_id, epoch, 1.0, 0.5, 1.0, 0.1 * epoch, config["sleep"])
        history.append(metrics)
        reporter(metrics)
    return TrialResult(spec.trial_id, TrialState.COMPLETE, score=history[-1].val_accuracy,
                       best_epoch=len(history), history=tuple(history), artifact="none",
                       extra={"pid": os.getpid()})


@pytest.fixture(scope="module")
def spark():
    from transfer_automl.executors.spark_session import default_conf, get_or_create

    session, created = get_or_create("local[2]", defaults=default_conf())
    yield session
    if created:
        session.stop()


def _study(*configs):
    study = Study(SPACE, seed=0)
    for i, config in enumerate(configs):
        study.enqueue({**config, "n": i})
    return study


def _search(spark, tmp_path, study, budget, n_slots=None, on_event=None):
    events = []

    def record(event):
        events.append((event.kind, event.trial.spec.trial_id, time.monotonic()))
        if on_event:
            on_event(event)

    executor = SparkExecutor("local[2]", n_slots=n_slots, trial_fn=fake_trial)
    context = TrialContext("unused.json", str(tmp_path), "", "")
    run_search(study, executor, context, budget, record, poll_s=0.1)
    return executor, events


def test_session_is_quiet_and_reuses_workers(spark):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.ui.showConsoleProgress") == "false"  # the search prints progress
    assert conf.get("spark.python.worker.reuse") == "true"


def test_all_trials_finish_with_live_metrics_and_reused_workers(spark, tmp_path):
    study = _study(*[{"mode": "ok"}] * 6)
    executor, events = _search(spark, tmp_path, study, Budget(6, 120))
    assert executor.n_slots == 2  # local[2]: the default parallelism
    assert not executor.created_session_
    assert [r.state for r in study.trials.values()] == [TrialState.COMPLETE] * 6
    for trial_id in study.trials:
        epochs = [t for kind, tid, t in events if kind == "epoch" and tid == trial_id]
        [done] = [t for kind, tid, t in events if kind == "finished" and tid == trial_id]
        assert len(epochs) == 3 and max(epochs) < done  # seen while the trial ran
    running, most = 0, 0
    for kind, _, _ in events:
        running += {"started": 1, "finished": -1}.get(kind, 0)
        most = max(most, running)
    assert most == 2
    pids = {r.result.extra["pid"] for r in study.trials.values()}
    assert len(pids) < 6  # Python workers were reused across trials


def test_stop_prunes_with_its_reason_and_frees_the_slot(spark, tmp_path):
    study = _study({"mode": "ok", "epochs": 60, "sleep": 0.25}, {"mode": "ok"}, {"mode": "ok"})
    holder = {}

    def prune_t000(event):
        if event.kind == "epoch" and event.trial.spec.trial_id == "t000" \
                and len(event.trial.epochs) == 2:
            holder["executor"].stop("t000", "pruned by the test")

    executor = SparkExecutor("local[2]", n_slots=1, trial_fn=fake_trial)
    holder["executor"] = executor
    run_search(study, executor, TrialContext("unused.json", str(tmp_path), "", ""),
               Budget(3, 120), lambda e: prune_t000(e), poll_s=0.1)
    first = study.trials["t000"]
    assert first.state == TrialState.PRUNED
    assert first.result.reason == "pruned by the test"
    assert len(first.epochs) <= 4
    # The trial itself stopped (its own history ends within two epochs of the stop), and the
    # slot went to the next trials; no wall-clock bound, which a loaded machine breaks.
    assert [study.trials[t].state for t in ("t001", "t002")] == [TrialState.COMPLETE] * 2


def test_raising_trial_is_failed_with_its_reason(spark, tmp_path):
    study = _study({"mode": "raise"}, {"mode": "ok"}, {"mode": "ok"})
    _search(spark, tmp_path, study, Budget(3, 120))
    failed = study.trials["t000"]
    assert failed.state == TrialState.FAILED
    assert failed.result.reason == "ValueError: boom"
    assert [study.trials[t].state for t in ("t001", "t002")] == [TrialState.COMPLETE] * 2


def test_trial_timeout_cancels_the_job_and_frees_the_slot(spark, tmp_path):
    study = _study({"mode": "hang", "sleep": 100}, {"mode": "ok"}, {"mode": "ok"})
    start = time.monotonic()
    # The timeout applies to every trial: after the kill, the next one starts a fresh
    # Python worker, which takes seconds on a busy machine; 10 s leaves room for that.
    _search(spark, tmp_path, study, Budget(3, 120, trial_timeout_s=10), n_slots=1)
    hung = study.trials["t000"]
    assert hung.state == TrialState.FAILED and "timed out" in hung.result.reason
    assert [study.trials[t].state for t in ("t001", "t002")] == [TrialState.COMPLETE] * 2
    assert time.monotonic() - start < 60
    # The cancelled task's Python worker is gone and no job is left running.
    pid = int((tmp_path / "t000.pid").read_text())
    deadline = time.monotonic() + 15
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(pid)
    tracker = spark.sparkContext.statusTracker()
    while tracker.getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not tracker.getActiveJobsIds()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its parent counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def test_bad_arguments_say_what_was_wrong(spark, tmp_path):
    from transfer_automl.errors import InputError

    context = TrialContext("unused.json", str(tmp_path), "", "")
    with pytest.raises(InputError, match="n_slots"):
        SparkExecutor(n_slots=0).start(context)
    with pytest.raises(InputError, match="retries"):
        SparkExecutor(retries=-1).start(context)


@pytest.mark.slow
def test_real_trial_runner_through_spark(spark, tmp_path, cache_root, colour_folder):
    from transfer_automl.data import load_dataset
    from transfer_automl.space import default_space
    from transfer_automl.trial import TrialSpec

    data = load_dataset(colour_folder, workdir=tmp_path / "datasets")
    manifest = data.save_manifest(tmp_path / "dataset.json")
    context = TrialContext(str(manifest), str(tmp_path), str(tmp_path / "features"),
                           str(cache_root / "backbones"))
    executor = SparkExecutor("local[2]", n_slots=1)
    executor.start(context)
    results, epochs = [], []
    try:
        for i, lr in enumerate((1e-2, 3e-3)):
            config = {**default_space().default, "resolution": 64, "epochs": 2,
                      "learning_rate": lr, "optimizer": "adam"}
            executor.submit(TrialSpec(f"r{i}", i, config, "test", seed=0))
            while len(results) == i:
                for event in executor.poll(1.0):
                    (results if isinstance(event, TrialResult) else epochs).append(event)
    finally:
        executor.close()
    for result in results:
        assert result.state == TrialState.COMPLETE, result.reason
        assert result.fidelity == "features"
        assert Path(result.artifact).exists()
    assert [(m.trial_id, m.epoch) for m in epochs] == [("r0", 1), ("r0", 2), ("r1", 1), ("r1", 2)]
    assert results[1].extra["cache_hit"] == 1.0
