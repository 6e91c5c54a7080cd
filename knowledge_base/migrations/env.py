"""Alembic environment of the knowledge base.

At run time :meth:`knowledge_base.KnowledgeBase.upgrade` hands over an open connection in
``config.attributes["connection"]`` (inside its write transaction), so no ``alembic.ini`` is
needed. For writing new revisions, run Alembic with ``-x url=sqlite:///kb.sqlite``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from knowledge_base.models import Base

config = context.config
connection = config.attributes.get("connection")

if connection is not None:
    context.configure(connection=connection, target_metadata=Base.metadata,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if url is None:
        raise SystemExit("give the database with: alembic -x url=SQLALCHEMY_URL ...")
    with create_engine(url).begin() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
