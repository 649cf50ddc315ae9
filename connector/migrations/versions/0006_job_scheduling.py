"""Jobs remember their last claim (fair share); the rate limiter keeps GCRA state and pauses

Revision ID: 0006_job_scheduling
Revises: 0005_draft_provider_status
Create Date: 2026-11-30 04:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_job_scheduling"
down_revision: str | None = "0005_draft_provider_status"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_jobs_claimed_at", ["claimed_at"], unique=False)
    op.create_table(
        "rate_limit_states",
        sa.Column("bucket", sa.String(length=200), nullable=False),
        sa.Column("tats", sa.JSON(), nullable=False),
        sa.Column("paused_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("bucket"),
    )
    # Fixed-window counts are meaningless to the new limiter: nothing to carry over.
    op.drop_table("rate_limit_counters")


def downgrade() -> None:
    op.create_table(
        "rate_limit_counters",
        sa.Column("bucket", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start"),
    )
    op.drop_table("rate_limit_states")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_claimed_at")
        batch_op.drop_column("claimed_at")
