"""``transfer-automl cluster ...``: a Spark standalone cluster on this machine, and the file
``spark-submit`` runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from transfer_automl.cli import display
from transfer_automl.cli.common import CacheDir, cache_root

console = display.console

cluster_app = typer.Typer(no_args_is_help=True, help=(
    "Start and stop a Spark standalone cluster on this machine (a master and workers from "
    "the installed pyspark), and print the spark-submit entry point."))

Folder = Annotated[Optional[Path], typer.Option(
    "--dir", help="Folder of the cluster's state, logs and worker scratch space "
                  "(default CACHE/cluster).")]


def _folder(folder: Optional[Path], cache_dir: Optional[Path]) -> Path:
    return folder if folder is not None else cache_root(cache_dir) / "cluster"


@cluster_app.command()
def start(workers: Annotated[int, typer.Option("--workers", min=1, help="Workers.")] = 2,
          cores: Annotated[int, typer.Option(
              "--cores", min=1, help="Cores per worker (trials per worker at once).")] = 1,
          memory: Annotated[str, typer.Option(
              "--memory", help="Memory per worker for its executors, e.g. 2g.")] = "2g",
          host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(
              "--port", min=0, max=65535, help="Master port (0: a free one).")] = 7077,
          webui_port: Annotated[int, typer.Option(
              "--webui-port", min=0, max=65535, help="Master web UI port (0: a free one).")]
          = 0,
          folder: Folder = None, cache_dir: CacheDir = None) -> None:
    """Start a master and workers in the background; print the master URL."""
    from transfer_automl.errors import InputError
    from transfer_automl.executors.standalone import STATE_FILE, StandaloneCluster

    where = _folder(folder, cache_dir)
    if (where / STATE_FILE).exists():
        raise InputError(f"a cluster is already started in {where}: "
                         f"'transfer-automl cluster stop --dir {where}' first")
    cluster = StandaloneCluster(where, workers=workers, cores=cores, memory=memory, host=host,
                                port=port, webui_port=webui_port)
    with console.status(f"starting a Spark master and {workers} workers"):
        url = cluster.start()
    console.print(f"Spark standalone cluster: {workers} workers x {cores} cores, {memory} "
                  f"each; web UI http://{host}:{cluster.webui_port}; logs in {where / 'logs'}",
                  highlight=False)
    print(url)


@cluster_app.command()
def status(folder: Folder = None, cache_dir: CacheDir = None) -> None:
    """The master URL and each worker's state, cores and memory."""
    from transfer_automl.executors.standalone import StandaloneCluster

    cluster = StandaloneCluster.load(_folder(folder, cache_dir))
    try:
        state = cluster.status()
    except OSError as exc:
        console.print(f"{cluster.master_url}: the master does not answer ({exc})",
                      highlight=False)
        raise typer.Exit(1) from None
    console.print(f"{cluster.master_url}: {state.get('status')}, "
                  f"{state.get('aliveworkers')} alive workers, "
                  f"{len(state.get('activeapps', []))} running applications", highlight=False)
    for worker in state.get("workers", []):
        console.print(f"  {worker['id']}: {worker['state']}, {worker['cores']} cores "
                      f"({worker['coresused']} used), {worker['memory']} MB", highlight=False)


@cluster_app.command()
def stop(folder: Folder = None, cache_dir: CacheDir = None) -> None:
    """Stop the workers and the master that 'cluster start' started."""
    from transfer_automl.executors.standalone import StandaloneCluster

    cluster = StandaloneCluster.load(_folder(folder, cache_dir))
    cluster.stop()
    console.print(f"stopped {cluster.master_url}", highlight=False)


@cluster_app.command("entry-point")
def entry_point() -> None:
    """Print the application file to give spark-submit, which runs this command line on the
    submitted cluster: spark-submit --master URL FILE fit DATASET ..."""
    from transfer_automl.submit import ENTRY_POINT

    print(ENTRY_POINT)
