"""A Spark standalone cluster on this machine, started from the pyspark package's own launcher.

``spark-class org.apache.spark.deploy.master.Master`` and ``...deploy.worker.Worker`` are what
``sbin/start-master.sh`` and ``sbin/start-worker.sh`` run on a real cluster; the pip package of
pyspark ships ``bin/spark-class`` and the jars but not ``sbin``, so this module runs the same
classes directly. Each daemon gets its own process group, so stopping (or killing) a worker
takes its executors and their Python workers with it, as losing a machine does.

The cluster's state (master URL, process ids, log files) is kept in ``state.json`` of its
folder, so ``transfer-automl cluster stop`` finds what ``cluster start`` started.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transfer_automl.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["StandaloneCluster", "spark_home"]

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
STATE_FILE = "state.json"


def spark_home() -> Path:
    """The installed pyspark package, which is a Spark distribution (``bin/``, ``jars/``)."""
    import pyspark

    home = Path(pyspark.__file__).resolve().parent
    if not (home / "bin" / "spark-class").is_file():
        raise InputError(f"pyspark at {home} has no bin/spark-class: cannot start a cluster")
    return home


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


@dataclass
class _Daemon:
    role: str  # "master" or "worker-<n>"
    pid: int
    log: str


@dataclass
class StandaloneCluster:
    """A standalone master and ``workers`` workers on this machine.

    Args:
        workdir: folder of the cluster's logs, worker scratch space and ``state.json``.
        workers: number of workers.
        cores: cores each worker offers (one trial per core with ``spark.task.cpus=1``).
        memory: memory each worker offers its executors (Spark's size syntax, e.g. ``"2g"``);
            at least the executors' ``spark.executor.memory`` (1g by default).
        host: address the daemons bind to and the master URL names.
        port: the master's port; 0 picks a free one.
        webui_port: the master's web UI (its ``/json/`` status is how readiness is checked);
            0 picks a free one.
    """

    workdir: str | os.PathLike
    workers: int = 2
    cores: int = 1
    memory: str = "2g"
    host: str = "127.0.0.1"
    port: int = 0
    webui_port: int = 0
    daemons: list[_Daemon] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir)
        for name in ("workers", "cores"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name}: expected an integer >= 1, got {value!r}")
        if not isinstance(self.memory, str) or not self.memory[:-1].isdigit() \
                or self.memory[-1].lower() not in "mg":
            raise InputError(f"memory: expected a size such as '2g' or '1536m', "
                             f"got {self.memory!r}")

    # ---- the master URL and status -------------------------------------------------------

    @property
    def master_url(self) -> str:
        return f"spark://{self.host}:{self.port}"

    def status(self) -> dict:
        """The master's own status (``/json/``): ``status``, ``aliveworkers``, ``workers``,
        ``activeapps``, ..."""
        url = f"http://{self.host}:{self.webui_port}/json/"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.load(response)

    def alive_workers(self) -> int:
        try:
            return int(self.status().get("aliveworkers", 0))
        except (OSError, ValueError, urllib.error.URLError):
            return 0

    # ---- starting and stopping -----------------------------------------------------------

    def start(self, timeout_s: float = 120) -> str:
        """Start the master and the workers, wait until every worker has registered, and
        return the master URL. Logs go to ``workdir/logs``."""
        if self.daemons:
            raise RuntimeError(f"the cluster in {self.workdir} is already started")
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            raise InputError("cannot start a Spark cluster: no java on PATH and no JAVA_HOME")
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        self.port = self.port or _free_port(self.host)
        self.webui_port = self.webui_port or _free_port(self.host)
        try:
            self._launch("master", MASTER_CLASS, "--host", self.host, "--port", str(self.port),
                         "--webui-port", str(self.webui_port))
            self._wait(lambda: self._master_alive(), timeout_s, "the master to start")
            for n in range(1, self.workers + 1):
                self.start_worker(n)
            self._wait(lambda: self.alive_workers() >= self.workers, timeout_s,
                       f"{self.workers} workers to register")
        except BaseException:
            self.stop()
            raise
        self.save()
        log.info("Spark standalone cluster at %s: %d workers x %d cores, %s each (logs in %s)",
                 self.master_url, self.workers, self.cores, self.memory, self.workdir / "logs")
        return self.master_url

    def start_worker(self, n: int) -> None:
        """Start worker ``n`` (again, after :meth:`kill_worker`); it registers with the
        master on its own."""
        scratch = self.workdir / f"worker-{n}"
        scratch.mkdir(parents=True, exist_ok=True)
        self.daemons = [d for d in self.daemons if d.role != f"worker-{n}"]
        self._launch(f"worker-{n}", WORKER_CLASS, self.master_url, "--host", self.host,
                     "--cores", str(self.cores), "--memory", self.memory,
                     "--work-dir", str(scratch), "--webui-port", "0")
        self.save()

    def _launch(self, role: str, main_class: str, *args: str) -> None:
        home = spark_home()
        logfile = self.workdir / "logs" / f"{role}.log"
        env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": self.host,
               "SPARK_NO_DAEMONIZE": "1"}
        with open(logfile, "ab") as out:
            process = subprocess.Popen(
                [str(home / "bin" / "spark-class"), main_class, *args], env=env,
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)  # own process group: its executors die with it
        self.daemons.append(_Daemon(role, process.pid, str(logfile)))

    def _master_alive(self) -> bool:
        try:
            return self.status().get("status") == "ALIVE"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            dead = [d for d in self.daemons if not _alive(d.pid)]
            if dead:
                tail = Path(dead[0].log).read_text(errors="replace")[-2000:]
                raise RuntimeError(f"Spark {dead[0].role} exited while waiting for {what}; "
                                   f"the end of {dead[0].log}:\n{tail}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s:.0f} s for {what} "
                                   f"(logs in {self.workdir / 'logs'})")
            time.sleep(0.5)

    def kill_worker(self, n: int, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to worker ``n``'s process group: the worker, its executors and their
        Python workers, as if its machine went down."""
        daemon = self._daemon(f"worker-{n}")
        _signal_group(daemon.pid, sig)

    def stop(self, timeout_s: float = 20) -> None:
        """Stop workers, then the master (SIGTERM, then SIGKILL after ``timeout_s``).
        Idempotent."""
        order = sorted(self.daemons, key=lambda d: d.role == "master")
        for daemon in order:
            _signal_group(daemon.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for daemon in order:
            while _alive(daemon.pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            _signal_group(daemon.pid, signal.SIGKILL)
        self.daemons = []
        state = self.workdir / STATE_FILE
        if state.exists():
            state.unlink()

    def _daemon(self, role: str) -> _Daemon:
        for daemon in self.daemons:
            if daemon.role == role:
                return daemon
        raise InputError(f"no {role} in the cluster in {self.workdir}")

    def __enter__(self) -> "StandaloneCluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- state file ----------------------------------------------------------------------

    def save(self) -> None:
        data = {k: v for k, v in asdict(self).items() if k != "daemons"}
        data.update(workdir=str(self.workdir), daemons=[asdict(d) for d in self.daemons])
        (self.workdir / STATE_FILE).write_text(json.dumps(data, indent=1))

    @classmethod
    def load(cls, workdir: str | os.PathLike) -> "StandaloneCluster":
        """The cluster :meth:`start` recorded in ``workdir``."""
        path = Path(workdir) / STATE_FILE
        if not path.is_file():
            raise InputError(f"no cluster was started in {workdir} (no {STATE_FILE})")
        data = json.loads(path.read_text())
        daemons = [_Daemon(**d) for d in data.pop("daemons")]
        return cls(**data, daemons=daemons)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reap it if it is our child and exited
        if waited == pid:
            return False
    except ChildProcessError:
        pass  # not our child (started by another process): ask the kernel
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the daemon leads its own group (start_new_session)
    except (ProcessLookupError, PermissionError):
        pass
