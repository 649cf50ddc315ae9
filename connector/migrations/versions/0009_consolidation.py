"""Consolidation per period: one customer's invoice per period, appended to by every approval

Revision ID: 0009_consolidation
Revises: 0008_webwork_connection
Create Date: 2026-11-30 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_consolidation"
down_revision: str | None = "0008_webwork_connection"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "period_invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=True),
        sa.Column("provider_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "customer_id", "currency", "period_start", "seq"),
    )
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("period_invoice_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_drafts_period_invoice_id",
            "period_invoices",
            ["period_invoice_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("customer_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consolidation", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("period", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("week_start", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("customer_settings", schema=None) as batch_op:
        batch_op.drop_column("week_start")
        batch_op.drop_column("period")
        batch_op.drop_column("consolidation")
    with op.batch_alter_table("drafts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_drafts_period_invoice_id", type_="foreignkey")
        batch_op.drop_column("period_invoice_id")
    op.drop_table("period_invoices")
