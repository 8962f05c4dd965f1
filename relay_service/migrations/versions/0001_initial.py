"""Initial schema: calls, keypad digits, diagnostic files, tool calls, transcript segments.

The same tables ``Base.metadata.create_all`` made before migrations existed, so a database created
that way is stamped with this revision and migrated on from here.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHILD_TABLES = ("diagnostics", "dtmf_digits", "tool_calls", "transcript_segments")


def _call_id() -> sa.Column[int]:
    return sa.Column("call_id", sa.Integer(), sa.ForeignKey("calls.id"), nullable=False)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("wa_call_id", sa.String(length=128), nullable=False),
        sa.Column("from_number", sa.String(length=64), nullable=False),
        sa.Column("to_number", sa.String(length=64), nullable=False),
        sa.Column("caller_name", sa.String(length=256), nullable=True),
        sa.Column("direction", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("agent", sa.String(length=128), nullable=True),
        sa.Column("end_reason", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("answered_at", sa.DateTime(), nullable=True),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.Column("timeline", sa.JSON(), nullable=False),
    )
    op.create_index("ix_calls_wa_call_id", "calls", ["wa_call_id"], unique=True)
    op.create_table(
        "diagnostics",
        sa.Column("id", sa.Integer(), primary_key=True),
        _call_id(),
        sa.Column("leg", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=256), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "dtmf_digits",
        sa.Column("id", sa.Integer(), primary_key=True),
        _call_id(),
        sa.Column("digit", sa.String(length=1), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "tool_calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        _call_id(),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("arguments", sa.JSON(), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "transcript_segments",
        sa.Column("id", sa.Integer(), primary_key=True),
        _call_id(),
        sa.Column("speaker", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    for table in CHILD_TABLES:
        op.create_index(f"ix_{table}_call_id", table, ["call_id"])


def downgrade() -> None:
    """Revert this revision."""
    for table in CHILD_TABLES:
        op.drop_index(f"ix_{table}_call_id", table_name=table)
        op.drop_table(table)
    op.drop_index("ix_calls_wa_call_id", table_name="calls")
    op.drop_table("calls")
