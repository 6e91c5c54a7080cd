"""The meta-dataset: every configuration of a fixed, versioned portfolio evaluated on a dataset.

``portfolio_datasets`` holds the datasets portfolio rows ran on, keyed by their content
fingerprint (a folder's files and labels, whatever its split), with their name and embedding:
the meta-dataset covers datasets no search of this KB has seen. ``portfolio_evaluations``
holds one row per (portfolio version, configuration id, dataset): its configuration, outcome,
per-epoch curve and cost; ``dataset_id`` names the KB's dataset record of the very split the
row ran on, when the KB has one.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "portfolio_datasets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False, unique=True),
        sa.Column("dim", sa.Integer(), nullable=True),
        sa.Column("embedding", sa.LargeBinary(), nullable=True),
        sa.Column("created", _TS, nullable=False),
    )
    op.create_table(
        "portfolio_evaluations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("portfolio_version", sa.Integer(), nullable=False),
        sa.Column("config_id", sa.String(64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("portfolio_dataset_id", sa.Integer(), sa.ForeignKey("portfolio_datasets.id"),
                  nullable=False),
        sa.Column("dataset_id", sa.Integer(), sa.ForeignKey("datasets.id"), nullable=True),
        sa.Column("fidelity", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("best_epoch", sa.Integer(), nullable=True),
        sa.Column("cv_folds", sa.Integer(), nullable=False),
        sa.Column("n_images", sa.Integer(), nullable=False),
        sa.Column("curve", sa.JSON(), nullable=False),
        sa.Column("wall_s", sa.Float(), nullable=False),
        sa.Column("cpu_s", sa.Float(), nullable=True),
        sa.Column("features_s", sa.Float(), nullable=True),
        sa.Column("commit", sa.String(64), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("finished", _TS, nullable=True),
        sa.Column("updated", _TS, nullable=False),
        sa.UniqueConstraint("portfolio_version", "config_id", "portfolio_dataset_id",
                            name="uq_portfolio_version_config_dataset"),
    )
    op.create_index("ix_portfolio_evaluations_portfolio_dataset_id", "portfolio_evaluations",
                    ["portfolio_dataset_id"])
    op.create_index("ix_portfolio_evaluations_dataset_id", "portfolio_evaluations",
                    ["dataset_id"])


def downgrade() -> None:
    op.drop_index("ix_portfolio_evaluations_dataset_id", table_name="portfolio_evaluations")
    op.drop_index("ix_portfolio_evaluations_portfolio_dataset_id",
                  table_name="portfolio_evaluations")
    op.drop_table("portfolio_evaluations")
    op.drop_table("portfolio_datasets")
