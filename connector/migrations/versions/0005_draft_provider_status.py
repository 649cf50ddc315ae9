"""Drafts remember what finance did with them at the provider (status sync)

Revision ID: 0005_draft_provider_status
Revises: 0004_admin_session_version
Create Date: 2026-11-30 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_draft_provider_status"
down_revision: str | None = "0004_admin_session_version"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_status", sa.String(length=30), nullable=True))
        batch_op.add_column(
            sa.Column("provider_status_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_drafts_provider_ref", ["provider", "provider_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        batch_op.drop_index("ix_drafts_provider_ref")
        batch_op.drop_column("provider_status_at")
        batch_op.drop_column("provider_status")
