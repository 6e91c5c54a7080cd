"""Settings of one server process: where it keeps its data, its limits and job defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from transfer_automl.errors import InputError

SPACES = ("default", "demo", "quick")
EXECUTORS = ("local", "spark")
MB = 2**20


@dataclass(frozen=True)
class Limits:
    """What one upload may contain.

    Attributes:
        max_upload_bytes: size of the whole request body (larger: HTTP 413).
        max_files: files in a folder upload, or entries in a zip (more: HTTP 400).
        max_unzipped_bytes: total uncompressed size of a zip (more: HTTP 400, zip bomb).
        max_image_pixels: width x height of one image, read from its header before anything
            decodes it (more: HTTP 400); it also bounds the memory an upload check needs.
    """

    max_upload_bytes: int = 2048 * MB
    max_files: int = 100_000
    max_unzipped_bytes: int = 4096 * MB
    max_image_pixels: int = 50_000_000

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_files", "max_unzipped_bytes", "max_image_pixels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name}: expected an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class JobDefaults:
    """Fit parameters a job gets when its request leaves them out."""

    max_trials: int = 20
    time_budget_s: float = 900.0
    executor: str = "local"
    spark_master: str | None = None
    space: str = "default"
    seed: int = 0
    cv_folds: int = 5
    n_parallel: int = 1

    def __post_init__(self) -> None:
        if self.executor not in EXECUTORS:
            raise InputError(f"executor: expected one of {list(EXECUTORS)}, got {self.executor!r}")
        if self.space not in SPACES:
            raise InputError(f"space: expected one of {list(SPACES)}, got {self.space!r}")
        if self.max_trials < 1 or self.time_budget_s <= 0:
            raise InputError("max_trials must be >= 1 and time_budget_s > 0; got "
                             f"{self.max_trials!r} and {self.time_budget_s!r}")


@dataclass(frozen=True)
class JobCaps:
    """The most one job may ask for, whatever the request says (more: HTTP 400).

    Attributes:
        max_trials: trials of one search.
        max_time_budget_s: search budget of one job, in seconds.
        max_parallel: concurrent trials of one job (``n_parallel``).
        executors: executors a job may choose besides the default one.
    """

    max_trials: int = 200
    max_time_budget_s: float = 86400.0
    max_parallel: int = 1
    executors: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [e for e in self.executors if e not in EXECUTORS]
        if unknown:
            raise InputError(f"executors: expected some of {list(EXECUTORS)}, got {unknown}")
        if self.max_trials < 1 or self.max_parallel < 1 or self.max_time_budget_s <= 0:
            raise InputError("job caps: max_trials and max_parallel must be >= 1 and "
                             f"max_time_budget_s > 0; got {self.max_trials!r}, "
                             f"{self.max_parallel!r} and {self.max_time_budget_s!r}")


@dataclass(frozen=True)
class Quotas:
    """What one user may hold at once (more: HTTP 429).

    Attributes:
        max_datasets: datasets kept on the server.
        max_stored_bytes: bytes on disk of all their datasets (upload, extraction and
            converted copies).
        max_active_jobs: jobs queued or running.
    """

    max_datasets: int = 50
    max_stored_bytes: int = 20 * 1024 * MB
    max_active_jobs: int = 4

    def __post_init__(self) -> None:
        for name in ("max_datasets", "max_stored_bytes", "max_active_jobs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name}: expected an integer >= 1, got {value!r}")


@dataclass(frozen=True)
class ServerConfig:
    """Everything the app, the job manager and the workers need to know.

    Attributes:
        data_dir: uploads, job folders (runs, logs, exported models) and, by default, the
            knowledge base holding tokens and job state.
        kb_url: the knowledge base (SQLite path or SQLAlchemy URL) for tokens, datasets and
            jobs; None means ``data_dir/kb.sqlite``.
        cache_dir: cache root of backbones and features shared by all jobs (None: the
            library default).
        search_kb: whether searches read and feed the knowledge base (warm start).
        max_jobs: searches running at the same time; further jobs wait in the queue.
        max_checks: uploads checked at the same time, each in its own process (further
            uploads wait for a free slot); the web process never decodes an image.
        limits: upload limits.
        defaults: fit parameters of jobs that do not give them.
        caps: the most a job may ask for; the defaults must be within them.
        quotas: what one user may hold at once.
    """

    data_dir: Path
    kb_url: str | None = None
    cache_dir: Path | None = None
    search_kb: bool = True
    max_jobs: int = 1
    max_checks: int = 1
    limits: Limits = field(default_factory=Limits)
    defaults: JobDefaults = field(default_factory=JobDefaults)
    caps: JobCaps = field(default_factory=JobCaps)
    quotas: Quotas = field(default_factory=Quotas)

    def __post_init__(self) -> None:
        for name in ("max_jobs", "max_checks"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"{name}: expected an integer >= 1, got {value!r}")
        d, c = self.defaults, self.caps
        over = [f"{name} {value:g} is over its cap {cap:g}" for name, value, cap in (
            ("max_trials", d.max_trials, c.max_trials),
            ("time_budget_s", d.time_budget_s, c.max_time_budget_s),
            ("n_parallel", d.n_parallel, c.max_parallel)) if value > cap]
        if over:
            raise InputError(f"job defaults must be within the job caps: {'; '.join(over)}")

    @property
    def executors(self) -> tuple[str, ...]:
        """The executors a job may choose: the default one and those the caps add."""
        return tuple(dict.fromkeys((self.defaults.executor, *self.caps.executors)))

    @property
    def kb(self) -> str:
        """The knowledge base URL or path actually used."""
        return self.kb_url or str(self.data_dir / "kb.sqlite")

    @property
    def uses_default_kb(self) -> bool:
        """True when the KB is the data directory's own file (seeded on creation)."""
        return self.kb_url is None

    def datasets_dir(self) -> Path:
        return self.data_dir / "datasets"

    def job_dir(self, job_id: str) -> Path:
        return self.data_dir / "jobs" / job_id
