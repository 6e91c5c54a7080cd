"""The machine stamp every report carries: commit, time, host, cores, load, versions."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def commit() -> str:
    """The repository's short HEAD commit ('' outside a git checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=REPO, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, e.g. ``"1.97, 1.03, 0.43"``."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def version(distribution: str) -> str:
    """An installed distribution's version without importing it ('-' when absent)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "-"


@dataclass(frozen=True)
class Stamp:
    """Where and when results were measured: enough to judge them later."""

    commit: str
    time_utc: str
    host: str
    cpus: int
    load: str
    python: str
    tensorflow: str

    @classmethod
    def now(cls) -> "Stamp":
        return cls(commit(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                   platform.node(), os.cpu_count() or 0, load_average(),
                   sys.version.split()[0], version("tensorflow"))

    def line(self) -> str:
        """One Markdown-ready sentence, e.g. for the top of a report."""
        return (f"commit {self.commit or '?'}, {self.time_utc}, {self.host} ({self.cpus} cores), "
                f"load average {self.load}; Python {self.python}, TensorFlow {self.tensorflow}")


def command_line(suite: str, argv: list[str], drop: tuple[str, ...] = ()) -> str:
    """The command that reproduces a run, ``transfer-automl benchmark SUITE ARGS``, without
    the options in ``drop`` (and their values), e.g. a shard that names only a share."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in drop:
            skip = "=" not in arg
            continue
        kept.append(arg)
    return " ".join(["transfer-automl", "benchmark", suite, shlex.join(kept)]).strip()
