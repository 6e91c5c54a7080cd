"""Upload server: API tokens, uploaded datasets and search jobs.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "server_tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("user", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created", _TS, nullable=False),
    )
    op.create_index("ix_server_tokens_user", "server_tokens", ["user"])
    op.create_table(
        "server_datasets",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.Column("created", _TS, nullable=False),
    )
    op.create_index("ix_server_datasets_owner", "server_datasets", ["owner"])
    op.create_table(
        "server_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("dataset_id", sa.String(32), sa.ForeignKey("server_datasets.id"),
                  nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created", _TS, nullable=False),
        sa.Column("started", _TS, nullable=True),
        sa.Column("finished", _TS, nullable=True),
    )
    op.create_index("ix_server_jobs_owner", "server_jobs", ["owner"])
    op.create_index("ix_server_jobs_dataset_id", "server_jobs", ["dataset_id"])
    op.create_index("ix_server_jobs_status", "server_jobs", ["status"])


def downgrade() -> None:
    op.drop_index("ix_server_jobs_status", table_name="server_jobs")
    op.drop_index("ix_server_jobs_dataset_id", table_name="server_jobs")
    op.drop_index("ix_server_jobs_owner", table_name="server_jobs")
    op.drop_table("server_jobs")
    op.drop_index("ix_server_datasets_owner", table_name="server_datasets")
    op.drop_table("server_datasets")
    op.drop_index("ix_server_tokens_user", table_name="server_tokens")
    op.drop_table("server_tokens")
