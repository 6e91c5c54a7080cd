"""The ``transfer-automl`` command line."""

from __future__ import annotations

import enum
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from transfer_automl.cli import display
from transfer_automl.cli.common import (KB, LOG_FORMAT, CacheDir, ExecutorName,
                                        NoKB, SparkMaster, WarmStart, WarmStartChoice, cache_root,
                                        executor_arg, kb_arg, set_verbosity)
from transfer_automl.cli.cluster import cluster_app
from transfer_automl.cli.kb import kb_app
from transfer_automl.cli.runs import runs_app
from transfer_automl.cli.server import serve, token_app
from transfer_automl.cli.ablation import ablate
from transfer_automl.cli.benchmark import benchmark_app
from transfer_automl.cli.tracking import history, restore, tune
from transfer_automl.errors import TransferAutoMLError
from transfer_automl.export_tflite import QUANTIZATIONS

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  pretty_exceptions_show_locals=False,
                  help="Automatic transfer learning for image folders.")


def _version(value: bool) -> None:
    if value:
        from transfer_automl import __version__

        print(f"transfer-automl {__version__}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True,
        help="Print the version and exit.")] = False,
        quiet: Annotated[bool, typer.Option(
            "-q", "--quiet", help="Log warnings and errors only.")] = False,
        verbose: Annotated[bool, typer.Option(
            "-v", "--verbose", help="Log debug messages too.")] = False) -> None:
    """Automatic transfer learning for image folders."""
    set_verbosity(quiet, verbose)
app.add_typer(kb_app, name="kb")
app.add_typer(runs_app, name="runs")
app.add_typer(token_app, name="token")
app.add_typer(benchmark_app, name="benchmark")
app.add_typer(cluster_app, name="cluster")
app.command()(serve)
app.command()(history)
app.command()(restore)
app.command()(tune)
app.command()(ablate)
console = display.console
err = Console(stderr=True)

def _fit(directory, *, max_trials, time_budget, out, cache_dir, seed=0, executor="local",
         kb=None, search=None, resume=None, mlflow_uri=None, tflite=False,
         tflite_quantization="float16") -> float | None:
    from transfer_automl.api import fit_auto, resume as resume_run
    from transfer_automl.options import TrackingOptions
    from transfer_automl.tracking.mlflow_mirror import check_uri

    check_uri(mlflow_uri)  # a URI MLflow refuses fails before any output
    start = time.monotonic()
    what = f"run {resume}" if resume else str(directory)
    trials = f"up to {max_trials} trials" if max_trials else "trials"
    console.print(f"Searching {what}: {trials} in {time_budget:.0f} s ({executor} executor)")
    progress = display.Progress(max_trials, time_budget)
    tracking = TrackingOptions(mlflow_uri=mlflow_uri, trackers=(progress,))
    try:
        if resume:
            result = resume_run(resume, executor=executor, kb=kb, cache_dir=cache_root(cache_dir),
                                tracking=tracking)
        else:
            result = fit_auto(directory, max_trials=max_trials, time_budget_s=time_budget,
                              seed=seed, executor=executor, kb=kb,
                              cache_dir=cache_root(cache_dir), search=search, tracking=tracking)
    finally:
        progress.close()
    display.print_leaderboard(result.leaderboard)
    console.print(result.explanation)
    console.print(f"best validation accuracy: {result.best_score:.4f}")
    if result.test_report is not None:
        report = result.test_report
        console.print(f"test accuracy: {report.accuracy:.4f}")
        console.print(report.summary())
        console.print("per class: " + ", ".join(f"{name} {acc:.3f} ({n})" for name, (acc, n)
                                                in report.per_class.items()))
    if out is not None:
        formats = ("saved_model", "tflite") if tflite else ("saved_model",)
        result.export(out, formats=formats, tflite_quantization=tflite_quantization)
        console.print(f"model exported to {out}")
        if tflite:
            import json

            info = json.loads((Path(out) / "metadata.json").read_text())["tflite"]
            console.print(f"TFLite model ({tflite_quantization}): {Path(out) / info['file']}, "
                          f"{info['size_bytes'] / 1e6:.1f} MB, input {info['input_dtype']} "
                          f"{info['input_shape']}, {info['latency_ms_per_image']:.1f} ms per image")
    console.print(f"done in {time.monotonic() - start:.0f} s (run {result.run_id})")
    return result.test_score


MaxTrials = Annotated[Optional[int], typer.Option(
    "--max-trials", min=1, help="Trials to run at most (default: as many as the time budget "
                                "allows).")]
Budget = Annotated[float, typer.Option("--time-budget", min=1, help="Search budget in seconds.")]
Out = Annotated[Optional[Path], typer.Option("--out", help="Export the best model here.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of split, search and training.")]
TFLiteQuantization = enum.Enum("TFLiteQuantization", {q.upper(): q for q in QUANTIZATIONS},
                               type=str)


@app.command()
def fit(directory: Annotated[Path, typer.Argument(help="Dataset folder or .zip.")],
        max_trials: MaxTrials = None, time_budget: Budget = 900.0, out: Out = None,
        cache_dir: CacheDir = None, seed: Seed = 0,
        n_parallel: Annotated[int, typer.Option("--n-parallel", min=1,
                                                help="Concurrent trials (local executor).")] = 1,
        executor: ExecutorName = None, spark_master: SparkMaster = None,
        kb: KB = None, no_kb: NoKB = False, warm_start: WarmStart = WarmStartChoice.AUTO,
        cv_folds: Annotated[int, typer.Option(
            "--cv-folds", min=0, max=10, help="Cross-validation folds of trials on cached "
                                              "inputs (0 or 1: the validation split).")] = 5,
        trial_timeout: Annotated[Optional[float], typer.Option(
            "--trial-timeout", min=1, help="Kill a single trial after this many seconds.")]
        = None,
        mlflow_uri: Annotated[Optional[str], typer.Option(
            "--mlflow-uri", help="Also log the search to this MLflow tracking URI.")] = None,
        export_tflite: Annotated[bool, typer.Option(
            "--export-tflite", help="With --out, also write model.tflite (uint8 images at "
                                    "the model's resolution in, probabilities out).")] = False,
        tflite_quantization: Annotated[TFLiteQuantization, typer.Option(
            "--tflite-quantization", help="Weights of model.tflite: float16, int8 "
                                          "(calibrated on training images) or none (float32)."
        )] = "float16"
        ) -> None:
    """Search for the best fine-tuned model for an image folder."""
    from transfer_automl.options import SearchOptions

    if export_tflite and out is None:
        raise typer.BadParameter("--export-tflite needs --out DIR", param_hint="--export-tflite")
    tflite_quantization = getattr(tflite_quantization, "value", tflite_quantization)
    if tflite_quantization != "float16" and not export_tflite:
        raise typer.BadParameter("--tflite-quantization needs --export-tflite",
                                 param_hint="--tflite-quantization")
    _fit(directory, max_trials=max_trials, time_budget=time_budget, out=out,
         cache_dir=cache_dir, seed=seed, executor=executor_arg(executor, spark_master),
         kb=kb_arg(kb, no_kb), mlflow_uri=mlflow_uri, tflite=export_tflite,
         tflite_quantization=tflite_quantization,
         search=SearchOptions(warm_start=warm_start.value, n_parallel=n_parallel, cv_folds=cv_folds,
                              trial_timeout_s=trial_timeout))


@app.command()
def resume(run_id: Annotated[str, typer.Argument(help="Id of the interrupted run.")],
           out: Out = None, cache_dir: CacheDir = None, kb: KB = None, no_kb: NoKB = False,
           executor: ExecutorName = None, spark_master: SparkMaster = None) -> None:
    """Continue an interrupted run: finished trials are kept, the rest of its budget is used."""
    from transfer_automl.run import find_run

    settings, _ = find_run(cache_root(cache_dir) / "runs", run_id).load_settings()
    _fit(None, max_trials=settings["max_trials"], time_budget=settings["time_budget_s"], out=out,
         cache_dir=cache_dir, executor=executor_arg(executor, spark_master),
         kb=kb_arg(kb, no_kb), resume=run_id)


@app.command()
def predict(model_dir: Annotated[Path, typer.Argument(help="An exported model directory.")],
            images: Annotated[list[Path], typer.Argument(help="Image files.")],
            top_k: Annotated[int, typer.Option(
                "--top-k", min=1, help="Show the K most probable classes of each image.")] = 1,
            as_json: Annotated[bool, typer.Option(
                "--json", help="One JSON object per image: path, label, top classes with "
                               "probabilities.")] = False) -> None:
    """Print the predicted class of each image (with --top-k, the K most probable)."""
    import json

    from transfer_automl.export import load_model

    model = load_model(model_dir)
    probabilities = model.predict_proba([str(p) for p in images])
    k = min(top_k, len(model.class_names))
    for path, row in zip(images, probabilities):
        best = row.argsort()[::-1][:k]
        top = [{"label": model.class_names[i], "probability": round(float(row[i]), 6)}
               for i in best]
        if as_json:
            print(json.dumps({"path": str(path), "label": top[0]["label"], "top": top}))
        elif k == 1:
            console.print(f"{path}\t{top[0]['label']}", markup=False, highlight=False)
        else:
            ranked = "\t".join(f"{t['label']} {t['probability']:.4f}" for t in top)
            console.print(f"{path}\t{ranked}", markup=False, highlight=False)


@app.command()
def demo(max_trials: MaxTrials = 4, time_budget: Budget = 300.0, out: Out = None,
         cache_dir: CacheDir = None, seed: Seed = 0, kb: KB = None,
         no_kb: NoKB = False) -> None:
    """Run the whole pipeline on scikit-learn's handwritten digits."""
    from transfer_automl.demo import demo_space, write_digits
    from transfer_automl.options import SearchOptions

    folder = write_digits(cache_root(cache_dir) / "demo" / "digits")
    _fit(folder, max_trials=max_trials, time_budget=time_budget, out=out, cache_dir=cache_dir,
         seed=seed, kb=kb_arg(kb, no_kb), search=SearchOptions(space=demo_space()))


def main() -> None:
    """Console entry point: one clear line and a non-zero exit on bad input."""
    # the handler, on stderr; the project's own level is set by -q/-v (set_verbosity)
    logging.basicConfig(level=logging.WARNING, format=LOG_FORMAT)
    try:
        app()  # usage errors: typer prints them and exits with code 2
    except TransferAutoMLError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
