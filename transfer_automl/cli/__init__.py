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

from transfer_automl.cli import display
from transfer_automl.cli.kb import kb_app
from transfer_automl.cli.server import serve, token_app
from transfer_automl.cli.ablation import ablate
from transfer_automl.cli.benchmark import benchmark_app
from transfer_automl.cli.tracking import history, restore
from transfer_automl.errors import TransferAutoMLError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  pretty_exceptions_show_locals=False,
                  help="Automatic transfer learning for image folders.")
app.add_typer(kb_app, name="kb")
app.add_typer(token_app, name="token")
app.add_typer(benchmark_app, name="benchmark")
app.command()(serve)
app.command()(history)
app.command()(restore)
app.command()(ablate)
console = display.console
err = Console(stderr=True)

CACHE_ENV = "TRANSFER_AUTOML_CACHE"


def cache_dir_option(option: Optional[Path]) -> Optional[Path]:
    """--cache-dir, else $TRANSFER_AUTOML_CACHE, else the library default (None)."""
    if option is not None:
        return option
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else None


def _kb_arg(kb: Optional[str], no_kb: bool):
    return False if no_kb else kb


def _fit(directory, *, max_trials, time_budget, out, cache_dir, seed, n_parallel=1,
         executor="local", spark_master=None, kb=None, warm_start="auto",
         space=None, resume=None, mlflow_uri=None) -> float | None:
    from transfer_automl.api import fit_auto

    start = time.monotonic()
    what = f"run {resume}" if resume else str(directory)
    console.print(f"Searching {what}: up to {max_trials} trials in {time_budget:.0f} s "
                  f"({executor} executor)")
    progress = display.Progress(max_trials)
    try:
        result = fit_auto(directory, max_trials=max_trials, time_budget_s=time_budget, seed=seed,
                          n_parallel=n_parallel, executor=executor, spark_master=spark_master,
                          kb=kb, warm_start=warm_start, cache_dir=cache_dir_option(cache_dir),
                          on_event=progress, space=space, resume=resume,
                          mlflow_uri=mlflow_uri)
    finally:
        progress.close()
    console.print(display.leaderboard(result.leaderboard))
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
    "--cache-dir", help=f"Cache root (backbones, features, runs, default KB); default "
                        f"${CACHE_ENV} or ~/.cache/transfer-automl.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of split, search and training.")]
KB = Annotated[Optional[str], typer.Option(
    "--kb", help="Knowledge base: SQLite path or SQLAlchemy URL (default: CACHE/kb.sqlite).")]
NoKB = Annotated[bool, typer.Option("--no-kb", help="Search without a knowledge base.")]


@app.command()
def fit(directory: Annotated[Path, typer.Argument(help="Dataset folder or .zip.")],
        max_trials: MaxTrials = 20, time_budget: Budget = 900.0, out: Out = None,
        cache_dir: CacheDir = None, seed: Seed = 0,
        n_parallel: Annotated[int, typer.Option("--n-parallel", min=1,
                                                help="Concurrent trials (local executor).")] = 1,
        executor: Annotated[str, typer.Option("--executor", help="local or spark.")] = "local",
        spark_master: Annotated[Optional[str], typer.Option(
            "--spark-master", help="Spark master URL (default local[*]).")] = None,
        kb: KB = None, no_kb: NoKB = False,
        warm_start: Annotated[str, typer.Option(
            "--warm-start", help="auto, none, points or history.")] = "auto",
        mlflow_uri: Annotated[Optional[str], typer.Option(
            "--mlflow-uri", help="Also log the search to this MLflow tracking URI.")] = None
        ) -> None:
    """Search for the best fine-tuned model for an image folder."""
    if executor not in ("local", "spark"):
        raise typer.BadParameter(f"expected local or spark, got {executor!r}",
                                 param_hint="--executor")
    _fit(directory, max_trials=max_trials, time_budget=time_budget, out=out,
         cache_dir=cache_dir, seed=seed, n_parallel=n_parallel, executor=executor,
         spark_master=spark_master, kb=_kb_arg(kb, no_kb), warm_start=warm_start,
         mlflow_uri=mlflow_uri)


@app.command()
def resume(run_id: Annotated[str, typer.Argument(help="Id of the interrupted run.")],
           out: Out = None, cache_dir: CacheDir = None, kb: KB = None, no_kb: NoKB = False,
           executor: Annotated[str, typer.Option("--executor", help="local or spark.")] = "local",
           spark_master: Annotated[Optional[str], typer.Option(
               "--spark-master", help="Spark master URL (default local[*]).")] = None) -> None:
    """Continue an interrupted run: finished trials are kept, the rest of its budget is used."""
    from transfer_automl.api import default_cache_dir
    from transfer_automl.run import find_run

    root = cache_dir_option(cache_dir) or default_cache_dir()
    settings, _ = find_run(root / "runs", run_id).load_settings()
    _fit(None, max_trials=settings["max_trials"], time_budget=settings["time_budget_s"], out=out,
         cache_dir=cache_dir, seed=settings["seed"], executor=executor,
         spark_master=spark_master, kb=_kb_arg(kb, no_kb), resume=run_id)


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
         cache_dir: CacheDir = None, seed: Seed = 0, kb: KB = None,
         no_kb: NoKB = False) -> None:
    """Run the whole pipeline on scikit-learn's handwritten digits."""
    from transfer_automl.api import default_cache_dir
    from transfer_automl.demo import demo_space, write_digits

    root = cache_dir_option(cache_dir) or default_cache_dir()
    folder = write_digits(root / "demo" / "digits")
    _fit(folder, max_trials=max_trials, time_budget=time_budget, out=out, cache_dir=cache_dir,
         seed=seed, kb=_kb_arg(kb, no_kb), space=demo_space())


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
