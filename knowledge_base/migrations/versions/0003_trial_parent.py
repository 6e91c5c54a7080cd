"""Trial lineage (the trial of the same run a trial descends from) and the figures a trial
reports besides its curve (resource use: CPU seconds, peak memory; cache hits; CV folds).

A fine-tuning trial keeps the head of a promoted trial; a retune continues from a trial's
checkpoint. ``prior`` already names a configuration taken from another dataset's run.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.add_column(sa.Column("parent", sa.String(64), nullable=True))
        batch.add_column(sa.Column("extra", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trials") as batch:
        batch.drop_column("extra")
        batch.drop_column("parent")
