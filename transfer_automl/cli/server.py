"""``transfer-automl serve`` and ``transfer-automl token ...``: the upload server and its
API tokens."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from transfer_automl.cli.display import console

DATA_ENV = "TRANSFER_AUTOML_DATA"
token_app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API tokens.")

DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", help=f"Server data: uploads, jobs, models and the default KB; default "
                       f"${DATA_ENV} or ~/.local/share/transfer-automl.")]
KBOpt = Annotated[Optional[str], typer.Option(
    "--kb", help="Knowledge base holding tokens and jobs (SQLite path or SQLAlchemy URL); "
                 "default DATA_DIR/kb.sqlite.")]


def data_dir_option(option: Optional[Path]) -> Path:
    """--data-dir, else $TRANSFER_AUTOML_DATA, else ``$XDG_DATA_HOME/transfer-automl``."""
    if option is not None:
        return option.expanduser().resolve()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser().resolve()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "transfer-automl"


def _store(data_dir: Optional[Path], kb: Optional[str]):
    from transfer_automl.server.config import ServerConfig
    from transfer_automl.server.store import ServerStore

    from transfer_automl.server.files import DIR_MODE, private_umask, tighten

    private_umask()  # the KB holding the tokens' hashes is the server user's only
    config = ServerConfig(data_dir_option(data_dir), kb_url=kb)
    config.data_dir.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    tighten(config.data_dir)
    return ServerStore(config.kb)


@token_app.command("create")
def create_token(user: Annotated[str, typer.Argument(help="User the token acts for.")],
                 data_dir: DataDir = None, kb: KBOpt = None) -> None:
    """Create a token for USER and print it (it is stored hashed: note it now)."""
    from transfer_automl.errors import InputError
    from transfer_automl.server.auth import check_user_name

    try:
        check_user_name(user)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    store = _store(data_dir, kb)
    try:
        print(store.create_token(user))  # plain stdout, so scripts can capture it
    finally:
        store.close()


@token_app.command("list")
def list_tokens(data_dir: DataDir = None, kb: KBOpt = None) -> None:
    """List token ids, users and creation times (never the tokens)."""
    store = _store(data_dir, kb)
    try:
        for t in store.tokens():
            console.print(f"{t['id']}\t{t['user']}\t{t['created']}")
    finally:
        store.close()


@token_app.command("revoke")
def revoke_tokens(user: Annotated[str, typer.Argument(help="User whose tokens to delete.")],
                  data_dir: DataDir = None, kb: KBOpt = None) -> None:
    """Delete every token of USER."""
    store = _store(data_dir, kb)
    try:
        console.print(f"revoked {store.revoke_tokens(user)} token(s) of {user}")
    finally:
        store.close()


def _seed_if_empty(kb: str) -> None:
    """Fill a knowledge base without datasets from the seed shipped in the package, as the
    library does for its default KB (here the file may exist already: tokens live in it)."""
    from knowledge_base import KnowledgeBase
    from transfer_automl.planning import seed_if_empty

    with KnowledgeBase(kb) as store:
        counts = seed_if_empty(store)
    if counts:
        console.print(f"new knowledge base {kb} seeded with {counts}")


def serve(host: Annotated[str, typer.Option("--host",
                                             help="Interface to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option("--port", min=1, max=65535,
                                            help="TCP port to listen on.")] = 8000,
          data_dir: DataDir = None, kb: KBOpt = None,
          no_search_kb: Annotated[bool, typer.Option(
              "--no-search-kb", help="Searches neither warm-start from nor feed the KB.")] = False,
          cache_dir: Annotated[Optional[Path], typer.Option(
              "--cache-dir", help="Backbone and feature cache shared by all jobs; default "
                                  "$TRANSFER_AUTOML_CACHE or ~/.cache/transfer-automl.")] = None,
          max_jobs: Annotated[int, typer.Option("--max-jobs", min=1,
                                                help="Searches running at once.")] = 1,
          max_upload_mb: Annotated[float, typer.Option(
              "--max-upload-mb", min=0.001, help="Largest upload request (else 413).")] = 2048,
          max_files: Annotated[int, typer.Option(
              "--max-files", min=1, help="Files per folder upload / entries per zip.")] = 100_000,
          max_unzipped_mb: Annotated[float, typer.Option(
              "--max-unzipped-mb", min=0.001, help="Uncompressed size of a zip.")] = 4096,
          max_image_pixels: Annotated[int, typer.Option(
              "--max-image-pixels", min=1,
              help="Width x height of one uploaded image, read from its header.")] = 50_000_000,
          max_checks: Annotated[int, typer.Option(
              "--max-checks", min=1,
              help="Uploads checked at once, each in its own process.")] = 1,
          max_trials: Annotated[int, typer.Option(
              "--max-trials", min=1, help="Default trials per job.")] = 20,
          time_budget: Annotated[float, typer.Option(
              "--time-budget", min=1, help="Default search budget per job (s).")] = 900,
          executor: Annotated[str, typer.Option(
              "--executor", help="Default executor: local or spark.")] = "local",
          spark_master: Annotated[Optional[str], typer.Option(
              "--spark-master", help="Spark master URL of jobs on the spark executor "
                                     "(default local[*]).")] = None,
          space: Annotated[str, typer.Option(
              "--space", help="Default search space: default, demo or quick.")] = "default",
          cv_folds: Annotated[int, typer.Option("--cv-folds", min=0, max=10,
                                                help="Default CV folds of head trials.")] = 5,
          seed: Annotated[int, typer.Option("--seed", min=0, help="Default seed.")] = 0,
          cap_trials: Annotated[int, typer.Option(
              "--cap-trials", min=1, help="Most trials a job may ask for.")] = 200,
          cap_time_budget: Annotated[float, typer.Option(
              "--cap-time-budget", min=1, help="Longest search budget a job may ask for "
                                               "(s).")] = 86400,
          cap_parallel: Annotated[int, typer.Option(
              "--cap-parallel", min=1, help="Most concurrent trials (n_parallel) of a "
                                            "job.")] = 1,
          allow_executor: Annotated[Optional[list[str]], typer.Option(
              "--allow-executor", help="An executor jobs may choose besides --executor "
                                       "(local or spark; repeat for both).")] = None,
          quota_datasets: Annotated[int, typer.Option(
              "--quota-datasets", min=1, help="Datasets one user may keep.")] = 50,
          quota_mb: Annotated[float, typer.Option(
              "--quota-mb", min=0.001, help="Disk space of one user's datasets.")] = 20480,
          quota_jobs: Annotated[int, typer.Option(
              "--quota-jobs", min=1, help="Jobs one user may have queued or "
                                          "running.")] = 4) -> None:
    """Run the upload server: HTTP API, web page and job workers."""
    import uvicorn

    from transfer_automl.cli.common import cache_root
    from transfer_automl.server import JobDefaults, Limits, ServerConfig, create_app
    from transfer_automl.server.config import MB, JobCaps, Quotas
    from transfer_automl.server.files import private_umask

    private_umask()  # everything under the data dir is owner-only (see docs/server.md)
    config = ServerConfig(
        data_dir_option(data_dir), kb_url=kb, cache_dir=cache_root(cache_dir),
        search_kb=not no_search_kb, max_jobs=max_jobs, max_checks=max_checks,
        limits=Limits(int(max_upload_mb * MB), max_files, int(max_unzipped_mb * MB),
                      max_image_pixels),
        defaults=JobDefaults(max_trials, time_budget, executor, spark_master, space, seed,
                             cv_folds),
        caps=JobCaps(cap_trials, cap_time_budget, cap_parallel, tuple(allow_executor or ())),
        quotas=Quotas(quota_datasets, int(quota_mb * MB), quota_jobs))
    config.data_dir.mkdir(parents=True, exist_ok=True)
    if config.uses_default_kb and config.search_kb:
        _seed_if_empty(config.kb)
    logging.getLogger("transfer_automl").setLevel(logging.INFO)
    app = create_app(config)
    console.print(f"transfer-automl server on http://{host}:{port}/ (data in {config.data_dir})")
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_graceful_shutdown=3)
