"""``transfer-automl kb ...``: look into, match against, export and import the knowledge base."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from transfer_automl.cli.common import CacheDir, cache_root
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
        for d in store.datasets():
            trials = [t for t in store.trials(dataset_id=d.id) if t.score is not None]
            best = max(trials, key=lambda t: t.score, default=None)
            report = d.report or {}
            table.add_row(str(d.id), d.name, str(report.get("n_classes", "-")),
                          str(report.get("n_images", "-")), str(len(store.runs(dataset_id=d.id))),
                          str(len(trials)), f"{best.score:.4f}" if best else "-",
                          best.config.get("backbone", "-") if best else "-")
        console.print(table)


@kb_app.command()
def groups(kb: KBOpt = None, cache_dir: CacheOpt = None) -> None:
    """The virtual dataset groups and their members."""
    with _open(kb, cache_dir) as store:
        names = {d.id: d.name for d in store.datasets()}
        if names:
            store.regroup()
        table = Table(title="Virtual dataset groups")
        for col in ("group", "version", "members"):
            table.add_column(col)
        for g in store.groups():
            table.add_row(str(g.label), str(g.version),
                          ", ".join(names.get(m, str(m)) for m in g.members))
        console.print(table)


@kb_app.command()
def match(directory: Annotated[Path, typer.Argument(help="Dataset folder or .zip.")],
          kb: KBOpt = None, cache_dir: CacheOpt = None, seed: int = 0) -> None:
    """Embed a dataset and show the groups and datasets it is nearest to."""
    from transfer_automl.data import load_dataset
    from transfer_automl.embedding import BackboneStatsEmbedder
    from transfer_automl.planning import plan
    from transfer_automl.space import default_space

    cache = cache_root(cache_dir)
    data = load_dataset(directory, seed=seed, workdir=cache / "datasets")
    vector = BackboneStatsEmbedder(cache_dir=cache / "backbones", seed=seed).embed(data)
    with _open(kb, cache_dir) as store:
        m = store.match(vector)
        table = Table(title=f"Nearest datasets{' (unseen domain)' if m.novel else ''}")
        for col in ("dataset", "distance", "similarity"):
            table.add_column(col)
        for n in m.neighbours:
            table.add_row(n.name, f"{n.distance:.4f}", f"{n.similarity:.3f}")
        console.print(table)
        _, _, warm = plan(store, vector, default_space(), "auto")
        console.print(warm.describe())


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
