"""The ``transfer-automl`` command line."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from transfer_automl.errors import TransferAutoMLError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_show_locals=False,
                  help="Automatic transfer learning for image folders.")
console = Console(stderr=False)
err = Console(stderr=True)

CACHE_ENV = "TRANSFER_AUTOML_CACHE"


def _cache_dir(option: Optional[Path]) -> Optional[Path]:
    """--cache-dir, else $TRANSFER_AUTOML_CACHE, else the library default."""
    if option is not None:
        return option
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else None


class _Progress:
    """Prints trial n/N, best so far and elapsed time as the search runs."""

    def __init__(self, max_trials: int) -> None:
        self.max_trials = max_trials

    def __call__(self, event) -> None:
        record, study = event.trial, event.study
        best = study.best()
        best_text = f"{best.result.score:.4f}" if best else "-"
        head = f"[{event.elapsed:6.0f}s] trial {record.spec.number + 1}/{self.max_trials}"
        if event.kind == "started":
            console.print(f"{head} {record.spec.trial_id} started "
                          f"({record.spec.origin}, {_short(record.spec.config)})")
        elif event.kind == "epoch":
            e = record.epochs[-1]
            console.print(f"{head} {record.spec.trial_id} epoch {e.epoch}: "
                          f"val_acc {e.val_accuracy:.4f} | best so far {best_text}",
                          style="dim")
        else:
            res = record.result
            score = f"{res.score:.4f}" if res.score is not None else "-"
            why = f" ({res.reason})" if res.reason else ""
            console.print(f"{head} {record.spec.trial_id} {res.state.value}{why}: val_acc {score} "
                          f"in {res.seconds:.1f}s | best so far {best_text}")


def _short(config: dict) -> str:
    keys = ("backbone", "resolution", "n_dense", "unfrozen_blocks", "augment", "learning_rate")
    return ", ".join(f"{k}={config[k]:.2g}" if isinstance(config[k], float) else f"{k}={config[k]}"
                     for k in keys)


def _leaderboard(rows: list[dict]) -> Table:
    table = Table(title="Leaderboard")
    for col in ("trial", "status", "val acc", "epochs", "cost s", "fidelity", "origin", "config / reason"):
        table.add_column(col)
    for row in rows:
        cfg = row["config"]
        detail = row["reason"] or _short(cfg)
        score = f"{row['score']:.4f}" if row["score"] is not None else "-"
        table.add_row(row["trial"], row["status"], score, str(row["epochs_run"]),
                      f"{row['cost_s']}", row["fidelity"], row["origin"], detail)
    return table


def _fit(directory, max_trials, time_budget, out, cache_dir, seed, n_parallel) -> float | None:
    from transfer_automl.api import fit_auto

    start = time.monotonic()
    console.print(f"Searching {directory}: up to {max_trials} trials in {time_budget:.0f} s")
    result = fit_auto(directory, max_trials=max_trials, time_budget_s=time_budget, seed=seed,
                      n_parallel=n_parallel, cache_dir=_cache_dir(cache_dir),
                      on_event=_Progress(max_trials))
    console.print(_leaderboard(result.leaderboard))
    console.print(result.explanation)
    console.print(f"best validation accuracy: {result.best_score:.4f}")
    if result.test_score is not None:
        console.print(f"test accuracy: {result.test_score:.4f}")
    if out is not None:
        result.export(out)
        console.print(f"model exported to {out}")
    console.print(f"done in {time.monotonic() - start:.0f} s (run {result.run_id})")
    return result.test_score


MaxTrials = Annotated[int, typer.Option("--max-trials", min=1, help="Trials to run at most.")]
Budget = Annotated[float, typer.Option("--time-budget", min=1, help="Search budget in seconds.")]
Out = Annotated[Optional[Path], typer.Option("--out", help="Export the best model here.")]
CacheDir = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help=f"Cache root (backbones, features, runs); default ${CACHE_ENV} or "
                        "~/.cache/transfer-automl.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of split, search and training.")]
Parallel = Annotated[int, typer.Option("--n-parallel", min=1, help="Concurrent trials.")]


@app.command()
def fit(directory: Annotated[Path, typer.Argument(help="Dataset folder or .zip.")],
        max_trials: MaxTrials = 20, time_budget: Budget = 900.0, out: Out = None,
        cache_dir: CacheDir = None, seed: Seed = 0, n_parallel: Parallel = 1,
        executor: Annotated[str, typer.Option("--executor", help="Where trials run.")] = "local",
        ) -> None:
    """Search for the best fine-tuned model for an image folder."""
    if executor != "local":
        raise typer.BadParameter(f"expected 'local', got {executor!r}", param_hint="--executor")
    _fit(directory, max_trials, time_budget, out, cache_dir, seed, n_parallel)


@app.command()
def predict(model_dir: Annotated[Path, typer.Argument(help="An exported model directory.")],
            images: Annotated[list[Path], typer.Argument(help="Image files.")]) -> None:
    """Print the predicted class of each image."""
    from transfer_automl.export import load_model

    model = load_model(model_dir)
    for path, label in zip(images, model.predict([str(p) for p in images])):
        console.print(f"{path}\t{label}")


@app.command()
def demo(max_trials: MaxTrials = 4, time_budget: Budget = 300.0, out: Out = None,
         cache_dir: CacheDir = None, seed: Seed = 0) -> None:
    """Run the whole pipeline on scikit-learn's handwritten digits."""
    from transfer_automl.api import default_cache_dir
    from transfer_automl.demo import write_digits

    root = _cache_dir(cache_dir) or default_cache_dir()
    folder = write_digits(root / "demo" / "digits")
    _fit(folder, max_trials, time_budget, out, cache_dir, seed, 1)


def main() -> None:
    """Console entry point: one clear line and a non-zero exit on bad input."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()  # usage errors: typer prints them and exits with code 2
    except TransferAutoMLError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
