"""Console held values: one-time secrets shown after a redirect, forms kept across a sign-in

Revision ID: 0014_console_held_values
Revises: 0013_draft_hold_subjects
Create Date: 2026-12-07 09:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_console_held_values"
down_revision: str | None = "0013_draft_hold_subjects"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_held_values",
        sa.Column("handle_hash", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("admin_id", sa.Integer(), nullable=False),
        sa.Column("value_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["admin_id"], ["admin_users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("handle_hash"),
    )
    op.create_index("ix_console_held_values_expires_at", "console_held_values", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_console_held_values_expires_at", table_name="console_held_values")
    op.drop_table("console_held_values")
