"""``transfer-automl runs ...``: the runs written so far."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from transfer_automl.cli import display
from transfer_automl.cli.common import SHORT_FINGERPRINT, CacheDir, cache_root

console = display.console

runs_app = typer.Typer(no_args_is_help=True, help="Look at the runs written so far.")

COLUMNS = ("run", "dataset", "fingerprint", "started", "state", "trials", "best_val_acc",
           "test_acc")


def _score(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.4f}"


def _cells(run) -> tuple[str, ...]:
    return (run.run_id, run.dataset, run.fingerprint[:SHORT_FINGERPRINT] or "-",
            run.started.replace("T", " "), run.state or "-", str(run.trials),
            _score(run.best_score), _score(run.test_accuracy))


@runs_app.command("list")
def list_runs(runs_dir: Annotated[Optional[Path], typer.Option(
                  "--runs-dir", help="Folder of the runs (default CACHE/runs).")] = None,
              cache_dir: CacheDir = None,
              as_json: Annotated[bool, typer.Option(
                  "--json", help="One JSON object per run, with the full fingerprints.")]
              = False) -> None:
    """List the runs, newest first: dataset, state, trials, best and test accuracy.

    State '-': still running, killed (resume it) or older than the state record.
    """
    from transfer_automl.run import list_runs as summaries

    runs = summaries(runs_dir.expanduser() if runs_dir else cache_root(cache_dir) / "runs")
    if as_json:
        for run in runs:
            print(json.dumps(run.to_dict()))
        return
    if not runs:
        console.print("no runs yet", markup=False, highlight=False)
        return
    if console.is_terminal:
        table = Table(title="Runs, newest first")
        for col in COLUMNS:
            table.add_column(col.replace("_", " "), no_wrap=True)
        for run in runs:
            table.add_row(*_cells(run))
        console.print(table)
        return
    print("\t".join(COLUMNS))  # a pipe or a file: one plain line per run
    for run in runs:
        print("\t".join(c.replace("\t", " ") for c in _cells(run)))
