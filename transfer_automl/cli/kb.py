"""``transfer-automl kb ...``: look into, match against, export and import the knowledge base."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from transfer_automl.cli.common import (SHORT_FINGERPRINT, CacheDir, WarmStart, WarmStartChoice,
                                        cache_root, dataset_labels)
from transfer_automl.cli.display import console

kb_app = typer.Typer(no_args_is_help=True, help="Inspect and move the knowledge base.")

KBOpt = Annotated[Optional[str], typer.Option(
    "--kb", help="SQLite path or SQLAlchemy URL (default: CACHE/kb.sqlite).")]
CacheOpt = CacheDir


def _open(kb: Optional[str], cache_dir: Optional[Path], create: bool = False):
    """The KB named by ``--kb`` (or the default one). Commands that only read never create
    a KB file that is not there (a typo would otherwise look like an empty KB)."""
    from transfer_automl.planning import open_kb

    return open_kb(kb, cache_root(cache_dir), create=create)


@kb_app.command()
def show(kb: KBOpt = None, cache_dir: CacheOpt = None) -> None:
    """Datasets in the knowledge base with their runs, trials and best scores."""
    with _open(kb, cache_dir) as store:
        table = Table(title=f"Knowledge base {store!r}")
        for col in ("id", "dataset", "classes", "images", "runs", "trials", "best val acc",
                    "best backbone"):
            table.add_column(col)
        datasets = store.datasets()
        labels = dataset_labels(datasets)
        for d in datasets:
            trials = [t for t in store.trials(dataset_id=d.id) if t.score is not None]
            best = max(trials, key=lambda t: t.score, default=None)
            report = d.report or {}
            table.add_row(str(d.id), labels[d.id], str(report.get("n_classes", "-")),
                          str(report.get("n_images", "-")), str(len(store.runs(dataset_id=d.id))),
                          str(len(trials)), f"{best.score:.4f}" if best else "-",
                          best.config.get("backbone", "-") if best else "-")
        console.print(table)


@kb_app.command()
def groups(kb: KBOpt = None, cache_dir: CacheOpt = None,
           recluster: Annotated[bool, typer.Option(
               "--recluster", help="Cluster the datasets again now and store the result as a "
                                   "new groups version (otherwise nothing is written).")] = False
           ) -> None:
    """The virtual dataset groups and their members, as stored.

    A search (fit) or kb match regroups first when datasets were added since.
    """
    with _open(kb, cache_dir) as store:
        datasets = store.datasets()
        labels = dataset_labels(datasets)
        if recluster and datasets:
            console.print(f"reclustered into groups version {store.regroup()}")
        stored = store.groups()
        table = Table(title="Virtual dataset groups")
        for col in ("group", "version", "members"):
            table.add_column(col)
        for g in stored:
            table.add_row(str(g.label), str(g.version),
                          ", ".join(labels.get(m, str(m)) for m in g.members))
        console.print(table)
        covered = {m for g in stored for m in g.members}
        outside = [labels[d.id] for d in datasets if d.id not in covered]
        if outside:
            console.print(f"in no group yet: {', '.join(outside)}. The groups are recomputed "
                          "when a dataset is next matched (fit, kb match), or now with "
                          "--recluster.", markup=False, highlight=False)


@kb_app.command()
def match(directory: Annotated[Path, typer.Argument(help="Dataset folder or .zip.")],
          kb: KBOpt = None, cache_dir: CacheOpt = None,
          seed: Annotated[int, typer.Option(
              "--seed", help="Seed of the split and the embedding sample, as in fit.")] = 0,
          warm_start: WarmStart = WarmStartChoice.AUTO) -> None:
    """Show what a fit of a dataset would take from the knowledge base.

    The matched group, the backbone, the warm-start mode, the prior points and prior trials
    it would apply, and the nearest datasets with their distances.
    """
    from transfer_automl.api import installed_backbones
    from transfer_automl.data import load_dataset
    from transfer_automl.embedding import BackboneStatsEmbedder
    from transfer_automl.planning import plan
    from transfer_automl.seeding import seed_study
    from transfer_automl.space import default_space
    from transfer_automl.study import Study

    cache = cache_root(cache_dir)
    data = load_dataset(directory, seed=seed, workdir=cache / "datasets")
    with _open(kb, cache_dir) as store:  # as in fit: after the data, before the backbone
        vector = BackboneStatsEmbedder(cache_dir=cache / "backbones", seed=seed).embed(data)
        # what fit_auto does: plan, then seed the run's study (which counts what it applies)
        space, priors, warm = plan(store, vector, default_space(installed_backbones()),
                                   warm_start.value)
        seed_study(Study(space, seed=seed), priors, warm)
        m = store.match(vector)  # the match plan made, with dataset ids and group labels
        datasets = store.datasets()
    labels = dataset_labels(datasets)
    known = next((labels[d.id] for d in datasets if d.fingerprint == data.fingerprint), None)
    _report_match(data, warm, m, labels, known)


def _report_match(data, warm, m, labels: dict[int, str], known: Optional[str]) -> None:
    name = Path(data.report.source).name or "dataset"
    lines = [f"dataset: {name} ({data.fingerprint[:SHORT_FINGERPRINT]}), "
             f"{data.num_classes} classes, {data.report.n_images} images"
             + (f"; in the knowledge base already as {known}" if known else "")]
    best = m.best_group
    if best is None:
        lines.append("matched group: none (the knowledge base holds no dataset)")
    else:
        lines.append(f"matched group: {best.label} at distance {best.distance:.3f}"
                     + (" (far from every known dataset: unseen domain)" if m.novel else ""))
    lines += [f"backbone: {warm.backbone.get('name')} ({warm.backbone.get('why')})",
              f"warm start: {warm.mode.value}: {warm.points} prior points, "
              f"{warm.history} prior trials"]
    for line in lines:
        console.print(line, markup=False, highlight=False)
    table = Table(title=f"Nearest datasets{' (unseen domain)' if m.novel else ''}")
    for col in ("dataset", "distance", "similarity"):
        table.add_column(col)
    for n in m.neighbours:
        table.add_row(labels.get(n.dataset_id, n.name), f"{n.distance:.4f}",
                      f"{n.similarity:.3f}")
    console.print(table)


@kb_app.command("export")
def export_kb(file: Annotated[Path, typer.Argument(help="JSON file to write.")],
              kb: KBOpt = None, cache_dir: CacheOpt = None) -> None:
    """Write the whole knowledge base to a JSON file."""
    with _open(kb, cache_dir) as store:
        counts = store.export_json(file)
    console.print(f"exported {counts} to {file}")


@kb_app.command("import")
def import_kb(file: Annotated[Path, typer.Argument(help="JSON file from kb export.")],
              kb: KBOpt = None, cache_dir: CacheOpt = None) -> None:
    """Merge a JSON export into the knowledge base (idempotent)."""
    from transfer_automl.errors import InputError

    if not file.is_file():
        raise InputError(f"{file} does not exist; give a file written by 'kb export'")
    with _open(kb, cache_dir, create=True) as store:
        counts = store.import_json(file)
    console.print(f"imported {counts} from {file}")
