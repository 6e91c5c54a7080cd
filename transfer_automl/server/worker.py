"""One job in its own process: ``python -m transfer_automl.server.worker --kb URL --job ID``.

The worker runs the same :func:`~transfer_automl.api.fit_auto` as the CLI, so TensorFlow never
loads in the web process and a cancel can end the whole process group. It publishes progress
snapshots into the job's row, writes the exported model as ``model.zip`` in the job folder
and records the outcome. A job whose run folder holds a resumable run (a server restart
interrupted it) continues with ``fit_auto(resume=RUN_ID)`` instead of starting over.

The worker ends itself (and its trial processes) when the server that started it dies, so a
restarted server never finds two workers writing one run.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

from knowledge_base.engine import now
from knowledge_base.records import clean_json
from transfer_automl.errors import TransferAutoMLError
from transfer_automl.server.files import private_umask
from transfer_automl.server.store import ServerStore

log = logging.getLogger("transfer_automl.server.worker")


def space_preset(name: str):
    """The search space a job asked for by name."""
    from transfer_automl.demo import demo_space
    from transfer_automl.space import default_space

    if name == "demo":
        return demo_space()
    if name == "quick":  # frozen-backbone heads only: seconds per trial on cached features
        return default_space(["efficientnet_lite0"]).fix(
            resolution=128, unfrozen_blocks=0, augment=0.0).restrict(epochs=(5, 10))
    return None  # fit_auto's default space


def resumable_run(runs_dir: Path) -> str | None:
    """The id of the run a previous attempt left in ``runs_dir``, if it can be resumed."""
    from transfer_automl.run import MANIFEST, SETTINGS

    if not runs_dir.is_dir():
        return None
    runs = sorted(p.name for p in runs_dir.iterdir()
                  if (p / SETTINGS).is_file() and (p / MANIFEST).is_file())
    return runs[-1] if runs else None


def zip_model(model_dir: Path, out: Path) -> Path:
    """Zip an exported model folder into ``out`` (written aside, then renamed)."""
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                zf.write(path, Path("model") / path.relative_to(model_dir))
    os.replace(tmp, out)
    return out


def _watch_parent(parent: int) -> None:
    """End this process group once the server that started it is gone."""
    while os.getppid() == parent:
        time.sleep(1.0)
    log.warning("server process %d is gone; stopping this job's processes", parent)
    os.killpg(os.getpgrp(), signal.SIGKILL)


class JobRunner:
    """Runs one job of ``store`` to its end.

    Args:
        store: the server's state.
        job_id: the job to run.
        data_dir: the server's data directory.
        cache_dir: shared backbone and feature cache (None: the library default).
        kb: knowledge base the search uses, or False for none.
    """

    def __init__(self, store: ServerStore, job_id: str, data_dir: Path,
                 cache_dir: Path | None, kb: Any) -> None:
        self.store, self.job_id, self.data_dir = store, job_id, data_dir
        self.cache_dir, self.kb = cache_dir, kb
        self.job_dir = data_dir / "jobs" / job_id
        self.runs_dir = self.job_dir / "runs"
        self._run_id: str | None = None

    def run(self) -> int:
        """Run the search; returns the process exit code (0: complete)."""
        job = self.store.job(self.job_id)
        if job is None:
            log.error("no job %s", self.job_id)
            return 2
        try:
            result = self._fit(job)
        except (TransferAutoMLError, ValueError) as exc:
            return self._fail(str(exc))
        except Exception as exc:  # an unexpected crash: still recorded on the job
            log.exception("job %s crashed", self.job_id)
            return self._fail(f"{type(exc).__name__}: {exc}")
        self.store.update_job(self.job_id, only_if_status=("running",), status="complete",
                              result=result, finished=now(), pid=None)
        return 0

    def _fail(self, reason: str) -> int:
        self.store.update_job(self.job_id, only_if_status=("running",), status="failed",
                              error=reason, finished=now(), pid=None)
        return 1

    def _fit(self, job: dict[str, Any]) -> dict[str, Any]:
        from transfer_automl.api import fit_auto, resume as resume_run
        from transfer_automl.options import SearchOptions, TrackingOptions
        from transfer_automl.server.config import Limits
        from transfer_automl.server.datasets import load
        from transfer_automl.server.progress import Progress

        p = job["params"]
        resume = resumable_run(self.runs_dir)
        if resume is None:
            shutil.rmtree(self.runs_dir, ignore_errors=True)  # a run killed before it began
        else:
            log.info("job %s: resuming run %s", self.job_id, resume)
            self._run_id = resume
            self.store.update_job(self.job_id, run_id=resume)
        progress = Progress(p["max_trials"], self._publish, time_budget_s=p["time_budget_s"],
                            n_parallel=p.get("n_parallel", 1))
        dataset = None
        if resume is None:
            meta = self.store.dataset(job["dataset_id"])
            # The upload passed the server's limits already; here they must not refuse it.
            unlimited = Limits(max_files=10**9, max_unzipped_bytes=2**62)
            dataset = load(self.data_dir / meta["path"],
                           self.data_dir / "datasets" / meta["id"] / "work", unlimited,
                           seed=p["seed"])
        executor = (p.get("spark_master") or "spark") if p["executor"] == "spark" else "local"
        kb = self.kb if p.get("use_kb", True) else False
        tracking = TrackingOptions(runs_dir=self.runs_dir, trackers=(progress,))
        if resume is None:
            search = SearchOptions(space=space_preset(p["space"]), cv_folds=p["cv_folds"],
                                   n_parallel=p["n_parallel"])
            result = fit_auto(dataset, max_trials=p["max_trials"],
                              time_budget_s=p["time_budget_s"], executor=executor, kb=kb,
                              seed=p["seed"], cache_dir=self.cache_dir, search=search,
                              tracking=tracking)
        else:
            result = resume_run(resume, executor=executor, kb=kb, cache_dir=self.cache_dir,
                                tracking=tracking)
        zip_model(Path(result.model.path), self.job_dir / "model.zip")
        return clean_json({
            "run_id": result.run_id, "best_score": result.best_score,
            "test_score": result.test_score, "best_config": result.best_config,
            "test_report": result.test_report.to_dict() if result.test_report else None,
            "class_names": list(result.model.class_names),
            "ensemble": result.ensemble.to_dict() if result.ensemble is not None else None,
            "leaderboard": result.leaderboard, "group": result.group,
            "explanation": result.explanation, "timings": result.timings})

    def _publish(self, snapshot: dict[str, Any]) -> None:
        values: dict[str, Any] = {"progress": clean_json(snapshot)}
        if self._run_id is None:
            self._run_id = resumable_run(self.runs_dir)
            if self._run_id:
                values["run_id"] = self._run_id
        self.store.update_job(self.job_id, only_if_status=("running",), **values)


def main(argv: list[str] | None = None) -> int:
    """Command line of the worker process (started by the server, not by users)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", required=True, help="KB holding the server's job state")
    parser.add_argument("--job", required=True, help="job id")
    parser.add_argument("--data-dir", required=True, type=Path)
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument("--search-kb", default="", help="KB the search uses ('' for none)")
    parser.add_argument("--parent", type=int, default=None, help="pid of the server")
    args = parser.parse_args(argv)
    private_umask()  # as the server's own: runs, logs and models are owner-only
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if args.parent is not None:
        threading.Thread(target=_watch_parent, args=(args.parent,), daemon=True).start()
    store = ServerStore(args.kb)
    try:
        return JobRunner(store, args.job, args.data_dir, args.cache_dir,
                         args.search_kb or False).run()
    finally:
        store.close()


if __name__ == "__main__":
    raise SystemExit(main())
