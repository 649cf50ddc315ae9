"""A held draft keeps the tracker projects and clients its hold is about

The approval page draws each hold's fix buttons (map this project, add a rate on that one) from
them instead of running billing again on every view. Rows held before this migration have none
(NULL): the page falls back to the rows the draft covers.

Revision ID: 0013_draft_hold_subjects
Revises: 0012_rates_bound_to_books
Create Date: 2026-12-07 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_draft_hold_subjects"
down_revision: str | None = "0012_rates_bound_to_books"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("hold_subjects", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("drafts") as batch:
        batch.drop_column("hold_subjects")
