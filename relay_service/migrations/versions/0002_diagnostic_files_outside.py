"""Diagnostic files larger than a threshold live outside the row: a path and a size.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("diagnostics") as batch:
        batch.add_column(sa.Column("path", sa.String(length=512), nullable=True))
        batch.add_column(sa.Column("size", sa.Integer(), nullable=True))
        batch.alter_column("content", existing_type=sa.LargeBinary(), nullable=True)
    op.execute("UPDATE diagnostics SET size = length(content) WHERE size IS NULL")


def downgrade() -> None:
    """Revert this revision (files kept outside the rows are left where they are)."""
    op.execute("DELETE FROM diagnostics WHERE content IS NULL")
    with op.batch_alter_table("diagnostics") as batch:
        batch.alter_column("content", existing_type=sa.LargeBinary(), nullable=False)
        batch.drop_column("size")
        batch.drop_column("path")
