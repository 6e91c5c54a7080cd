"""The upload server: ``transfer-automl serve``.

An HTTP API (FastAPI, OpenAPI spec at ``/api/openapi.json``) and a plain web page to upload
image datasets, start searches that run in worker processes through the same ``fit_auto`` as
the CLI, follow them live (server-sent events), and download the exported models. Job state
lives in the knowledge base, so queued and interrupted jobs continue after a restart.
"""

from __future__ import annotations

from transfer_automl.server.config import JobDefaults, Limits, ServerConfig

__all__ = ["JobDefaults", "Limits", "ServerConfig", "create_app"]


def create_app(config: ServerConfig, store=None):
    """The FastAPI app of one server (see :func:`transfer_automl.server.app.create_app`)."""
    from transfer_automl.server.app import create_app as _create

    return _create(config, store)
