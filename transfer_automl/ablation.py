"""Ablation studies: which parts of a model matter, measured by taking them out one at a time.

For a base configuration, each component is removed on its own (leave-one-component-out),
every variant is trained with the same seeds on the same split through the same executors a
search uses (local processes or Spark), and each trained model is scored on the held-out test
split. A component's effect is the paired difference ``base - without`` over seeds, with a
95% t-interval. The knowledge-base warm start is ablated at the level of a whole search:
small searches with ``warm_start="auto"`` against ``"none"``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transfer_automl.errors import InputError
from transfer_automl.options import SearchOptions, TrackingOptions
from transfer_automl.space import Config, SearchSpace

log = logging.getLogger(__name__)

BASELINE = "baseline"


def _without_dense(index: int) -> Callable[[Config], Config]:
    def remove(config: Config) -> Config:
        n = config["n_dense"]
        if n < index:
            raise InputError(f"dense_{index}: the base configuration has {n} dense layer(s)")
        out = dict(config, n_dense=n - 1)
        if index == 1 and n == 2:  # the second layer moves up to take the first's place
            for p in ("units", "activation", "dropout", "batchnorm"):
                out[f"{p}_1"] = config[f"{p}_2"]
        return out
    return remove


def _zero(*names: str, value: Any = 0.0) -> Callable[[Config], Config]:
    def remove(config: Config) -> Config:
        if all(config[n] in (0, 0.0, False) for n in names):
            raise InputError(f"{'/'.join(names)}: already off in the base configuration")
        return {**config, **{n: value for n in names}}
    return remove


#: Components a configuration can be ablated of, and how each is taken out.
CONFIG_COMPONENTS: dict[str, Callable[[Config], Config]] = {
    "dense_1": _without_dense(1),
    "dense_2": _without_dense(2),
    "dropout": _zero("dropout_1", "dropout_2", "head_dropout"),
    "batchnorm": _zero("batchnorm_1", "batchnorm_2", value=False),
    "unfreezing": _zero("unfrozen_blocks", value=0),
    "augmentation": _zero("augment"),
    "label_smoothing": _zero("label_smoothing"),
}
WARM_START = "warm_start"
COMPONENTS = (*CONFIG_COMPONENTS, WARM_START)


@dataclass
class AblationRow:
    """One component: test accuracies without it, per seed, and its effect on the baseline."""

    component: str
    scores: list[float]
    baseline: list[float]
    config: Config | None = None

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores) if self.scores else math.nan

    @property
    def effect(self) -> float:
        """Mean over seeds of baseline minus without (> 0: the component helps)."""
        diffs = self.diffs
        return statistics.fmean(diffs) if diffs else math.nan

    @property
    def diffs(self) -> list[float]:
        return [b - s for b, s in zip(self.baseline, self.scores)]

    @property
    def interval(self) -> float | None:
        """Half-width of the 95% t-interval of the effect (None with one seed)."""
        from scipy.stats import t

        diffs = self.diffs
        if len(diffs) < 2:
            return None
        return float(t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs)))


@dataclass
class AblationResult:
    run_id: str
    seeds: list[int]
    rows: list[AblationRow]
    paths: list[Path] = field(default_factory=list)

    def table(self) -> str:
        """The result as a Markdown table."""
        lines = ["| component | test acc without it (mean) | effect (baseline - without) | "
                 "95% CI | per seed |", "|---|---|---|---|---|"]
        for row in self.rows:
            ci = f"±{row.interval:.4f}" if row.interval is not None else "n/a (1 seed)"
            effect = "-" if row.component == BASELINE else f"{row.effect:+.4f}"
            per_seed = ", ".join(f"{s:.4f}" for s in row.scores)
            lines.append(f"| {row.component} | {row.mean:.4f} | {effect} | "
                         f"{'-' if row.component == BASELINE else ci} | {per_seed} |")
        return "\n".join(lines)


def variants(base: Config, components: Sequence[str]) -> dict[str, Config]:
    """The base configuration and one configuration per component taken out."""
    unknown = [c for c in components if c not in COMPONENTS]
    if unknown:
        raise InputError(f"components: unknown {unknown}; known: {list(COMPONENTS)}")
    out = {BASELINE: dict(base)}
    for name in components:
        if name in CONFIG_COMPONENTS:
            out[name] = CONFIG_COMPONENTS[name](dict(base))
    return out


def _space_for(space: SearchSpace, config: Mapping[str, Any]) -> SearchSpace:
    """The search space with any parameter the base configuration sets outside it (a
    resolution or epoch count a search would not try) held at the configuration's value."""
    outside = {}
    for name, value in config.items():
        if name not in space.names:
            continue  # complete() names the unknown parameter
        try:
            space.param(name).validate(value)
        except InputError:
            outside[name] = value
    return space.fix(**outside) if outside else space


def ablate(dataset: Any, base_config: Mapping[str, Any], components: Sequence[str], *,
           seeds: Sequence[int] = (0, 1), executor: Any = "local", n_parallel: int = 1,
           kb: Any = None, search_trials: int = 4, time_budget_s: float = 3600,
           cache_dir: str | os.PathLike | None = None, tracking: TrackingOptions | None = None,
           out_dir: str | os.PathLike | None = None) -> AblationResult:
    """Leave-one-component-out over ``components`` of ``base_config`` on ``dataset``.

    Args:
        dataset: as for :func:`~transfer_automl.fit_auto`; split once with seed 0.
        base_config: the configuration to ablate (completed from the default space).
        components: names from :data:`COMPONENTS`.
        seeds: training seeds; every variant trains once per seed.
        executor: where the trials run, as in :func:`~transfer_automl.fit_auto`.
        n_parallel: concurrent trials of the local executor.
        kb: knowledge base of the ``warm_start`` component's searches.
        search_trials: trials of each search of the ``warm_start`` component.
        time_budget_s: wall-clock budget of the configuration trials together.
        cache_dir: as in :func:`~transfer_automl.fit_auto`.
        tracking: where runs go and who follows them (``runs_dir`` and ``trackers`` of
            :class:`~transfer_automl.options.TrackingOptions`; the searches of the
            ``warm_start`` component use all of it).
        out_dir: where the table (``ablation.md``) and chart (``ablation.png``) go
            (default: the study's run directory).
    """
    from transfer_automl.api import installed_backbones
    from transfer_automl.data import load_dataset
    from transfer_automl.executors import make_executor
    from transfer_automl.paths import cache_dir as resolve_cache
    from transfer_automl.search import Budget, run_search
    from transfer_automl.session import create_run, open_session
    from transfer_automl.space import default_space
    from transfer_automl.tracking import Trackers
    from transfer_automl.tracking.recorder import RunRecorder

    seeds = list(seeds)
    if not seeds:
        raise InputError("seeds: expected at least one seed")
    tracking = tracking or TrackingOptions()
    cache = resolve_cache(cache_dir)
    runs_root = Path(tracking.runs_dir) if tracking.runs_dir is not None else cache / "runs"
    space = _space_for(default_space(installed_backbones()), base_config)
    base = space.complete(base_config)
    configs = variants(base, components)
    data = load_dataset(dataset, seed=0, workdir=cache / "datasets")
    if not len(data.test):
        raise InputError("ablation needs a test split to score the variants on")
    files = create_run(runs_root, data, space, {"ablation": {
        "components": list(components), "seeds": seeds, "base_config": base}})
    session = open_session(files, data, space, cache, cv_folds=0)
    study = session.study
    for name, config in configs.items():
        for seed in seeds:
            study.enqueue(config, origin=f"ablation/{name}", seed=seed)
    # the variants are journalled (restorable), not recorded in the knowledge base
    trackers = Trackers([RunRecorder(None, data, None, files, study), *tracking.trackers])
    log.info("ablation %s: %d variants x %d seeds", files.run_id, len(configs), len(seeds))
    run_search(study, make_executor(executor, n_parallel), session.context,
               Budget(len(configs) * len(seeds), time_budget_s), trackers, pruner=None)
    trackers.close("complete")
    scores = _test_scores(study, data, cache)
    baseline = [scores.get((BASELINE, s), math.nan) for s in seeds]
    rows = [AblationRow(BASELINE, baseline, baseline, configs[BASELINE])]
    for name in components:
        if name == WARM_START:
            rows.append(_warm_start_row(dataset, seeds, kb, search_trials, executor,
                                        n_parallel, cache, tracking))
        else:
            rows.append(AblationRow(name, [scores.get((name, s), math.nan) for s in seeds],
                                    baseline, configs[name]))
    result = AblationResult(files.run_id, seeds, rows)
    out = Path(out_dir) if out_dir is not None else files.run_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.md").write_text(f"# Ablation {files.run_id}\n\nBase configuration: "
                                     f"`{json.dumps(space.active(base))}`\n\n"
                                     + result.table() + "\n")
    result.paths = [out / "ablation.md", *_chart(result, out)]
    return result


def _test_scores(study, data, cache: Path) -> dict[tuple[str, int], float]:
    """Test accuracy of every finished variant trial's model, keyed by (component, seed)."""
    from transfer_automl.trial_model import split_accuracy, trial_model

    out, backbones = {}, {}
    for record in study.finished:
        result, spec = record.result, record.spec
        if result is None or not result.artifact:
            log.warning("ablation trial %s (%s) produced no model: %s", spec.trial_id,
                        spec.origin, result.reason if result else "no result")
            continue
        config = dict(spec.config)
        model = trial_model(config, result.artifact, len(data.class_names),
                            backbone_cache=cache / "backbones", backbones=backbones)
        out[(spec.origin.split("/", 1)[1], spec.seed)] = split_accuracy(
            model, data.test, config["resolution"])
    return out


def _warm_start_row(dataset, seeds, kb, search_trials, executor, n_parallel, cache,
                    tracking) -> AblationRow:
    """Searches with the KB warm start (the baseline here) against searches without it."""
    from transfer_automl.api import fit_auto

    def search(mode: str, seed: int) -> float:
        result = fit_auto(dataset, max_trials=search_trials, kb=kb, seed=seed,
                          executor=executor, cache_dir=cache, tracking=tracking,
                          search=SearchOptions(warm_start=mode, n_parallel=n_parallel))
        return result.test_score if result.test_score is not None else math.nan

    with_warm = [search("auto", s) for s in seeds]
    without = [search("none", s) for s in seeds]
    return AblationRow(f"{WARM_START} ({search_trials}-trial searches)", without, with_warm)


def _chart(result: AblationResult, out: Path) -> list[Path]:
    """Each component's effect with its 95% interval, as a bar chart (``ablation.png``)."""
    from transfer_automl.history import pyplot, save_figure

    rows = [r for r in result.rows if r.component != BASELINE]
    if not rows:
        return []
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(rows) + 1.5))
    names = [r.component for r in rows][::-1]
    effects = [r.effect for r in rows][::-1]
    errors = [r.interval or 0.0 for r in rows][::-1]
    colours = ["#2e7d32" if e >= 0 else "#c62828" for e in effects]
    ax.barh(names, effects, xerr=errors, color=colours, capsize=4)
    ax.axvline(0.0, color="#424242", linewidth=0.8)
    ax.set_xlabel("effect on test accuracy: baseline - without (95% CI over "
                  f"{len(result.seeds)} seed(s))")
    ax.set_title("Ablation: what each component adds", fontsize=9)
    return save_figure(fig, out / "ablation", ("png",))
