"""``transfer-automl ablate``: which parts of a configuration matter."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from transfer_automl.cli import display
from transfer_automl.cli.common import (CacheDir, ExecutorName, SparkMaster,
                                        cache_root as _cache, executor_arg)
from transfer_automl.errors import InputError

console = display.console


def ablate(directory: Annotated[Path, typer.Argument(help="Dataset folder or .zip.")],
           components: Annotated[str, typer.Option(
               "--components", help="Comma-separated: dense_1, dense_2, dropout, batchnorm, "
                                    "unfreezing, augmentation, label_smoothing, warm_start.")],
           config: Annotated[Optional[str], typer.Option(
               "--config", help="Base configuration as JSON (missing keys from the default).")]
           = None,
           from_run: Annotated[Optional[str], typer.Option(
               "--from-run", help="Take the base configuration from this run's trial.")] = None,
           trial: Annotated[Optional[str], typer.Option(
               "--trial", help="With --from-run: the trial (default: the run's best).")] = None,
           seeds: Annotated[str, typer.Option("--seeds", help="Comma-separated seeds.")] = "0,1",
           executor: ExecutorName = None, spark_master: SparkMaster = None,
           search_trials: Annotated[int, typer.Option(
               "--search-trials", min=1, help="Trials per search of the warm_start component.")]
           = 4,
           out: Annotated[Optional[Path], typer.Option(
               "--out", help="Folder for ablation.md and ablation.png (default: its run).")]
           = None,
           cache_dir: CacheDir = None,
           kb: Annotated[Optional[str], typer.Option("--kb", help="KB for warm_start.")] = None
           ) -> None:
    """Leave-one-component-out ablation of a configuration, over seeds.

    Every variant trains on the same split with each seed and is scored on the test split;
    prints each component's effect with a 95% interval and writes a table and a bar chart.
    """
    from transfer_automl.ablation import ablate as run_ablation
    from transfer_automl.options import TrackingOptions

    cache = _cache(cache_dir)
    base = _base_config(config, from_run, trial, cache)
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--seeds: expected comma-separated integers, got {seeds!r}") from None
    names = [c.strip() for c in components.split(",") if c.strip()]
    status = console.status("ablation: training the variants")
    status.start()

    def progress(event) -> None:
        if event.kind == "finished":
            res = event.trial.result
            console.print(f"{event.trial.spec.trial_id} {event.trial.spec.origin} seed "
                          f"{event.trial.spec.seed}: {res.state.value}"
                          + (f" ({res.reason})" if res.reason else ""))

    try:
        result = run_ablation(directory, base, names, seeds=seed_list,
                              executor=executor_arg(executor, spark_master), kb=kb,
                              search_trials=search_trials, cache_dir=cache, out_dir=out,
                              tracking=TrackingOptions(trackers=(progress,)))
    finally:
        status.stop()
    console.print(result.table())
    for path in result.paths:
        console.print(f"wrote {path}")


def _base_config(config: Optional[str], from_run: Optional[str], trial: Optional[str],
                 cache: Path) -> dict:
    if (config is None) == (from_run is None):
        raise InputError("give the base configuration with exactly one of --config or --from-run")
    if config is not None:
        try:
            parsed = json.loads(config)
        except json.JSONDecodeError as exc:
            raise InputError(f"--config: not valid JSON ({exc.msg})") from None
        if not isinstance(parsed, dict):
            raise InputError("--config: expected a JSON object of parameters")
        return parsed
    from transfer_automl.restore import restore
    from transfer_automl.run import find_run

    if trial is None:
        entries, _ = find_run(cache / "runs", from_run, "ablate").journal()
        scored = [(r.score, s.trial_id) for s, r in entries if r.score is not None]
        if not scored:
            raise InputError(f"run {from_run} has no scored trial to take a configuration from")
        trial = max(scored)[1]
    return dict(restore(from_run, trial, cache_dir=cache).spec.config)
