"""Customer-scoped rates bound to the books their customer id belongs to

A rate for accounting customer "6" of the built-in ledger must not price QuickBooks customer "6"
after a switch. Like mappings and customer settings (0011), every rate that names a customer gets
the key of its books: the books the workspace bills to at migration time. Rates that name no
customer (workspace default, project, member x project, contract) stay unbound (NULL).

Revision ID: 0012_rates_bound_to_books
Revises: 0011_invoices_and_books
Create Date: 2026-12-02 09:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0012_rates_bound_to_books"
down_revision: str | None = "0011_invoices_and_books"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "(customer_id IS NULL) = (books IS NULL)"

workspaces = sa.table("workspaces", sa.column("id", sa.Integer), sa.column("provider", sa.String))
connections = sa.table(
    "connections",
    sa.column("workspace_id", sa.Integer),
    sa.column("provider", sa.String),
    sa.column("account_id", sa.String),
    sa.column("environment", sa.String),
    sa.column("meta", sa.JSON),
)
rates = sa.table(
    "rates",
    sa.column("workspace_id", sa.Integer),
    sa.column("customer_id", sa.String),
    sa.column("books", sa.String),
)


def books_key(provider: str, account_id: str | None, environment: str | None) -> str:
    # connector.books.books_key, frozen here as it was when this migration was written.
    if provider == "local":
        return "local"
    return f"{provider}:{environment or ''}:{account_id or ''}"


def _current_books(bind: Any) -> dict[int, str]:
    """workspace id -> the key of the books it bills to now (connector.books.of_connection, frozen:
    a Stripe key that may not read its account stands for it by its fingerprint)."""
    keys = {}
    for c in bind.execute(sa.select(connections)):
        meta = c.meta or {}
        fingerprint = meta.get("key_fingerprint")
        account = c.account_id or (f"key-{fingerprint}" if fingerprint else None)
        keys[(c.workspace_id, c.provider)] = books_key(c.provider, account, c.environment)
    return {
        ws_id: keys.get((ws_id, provider), books_key(provider, None, None))
        for ws_id, provider in bind.execute(sa.select(workspaces.c.id, workspaces.c.provider))
    }


def upgrade() -> None:
    with op.batch_alter_table("rates") as batch:
        batch.add_column(sa.Column("books", sa.String(length=300), nullable=True))
    bind = op.get_bind()
    for ws_id, key in _current_books(bind).items():
        bind.execute(
            rates.update()
            .where(rates.c.workspace_id == ws_id, rates.c.customer_id.is_not(None))
            .values(books=key)
        )
    with op.batch_alter_table("rates") as batch:
        batch.create_check_constraint("ck_rates_customer_books", CHECK)


def downgrade() -> None:
    """Customer rates of books other than each workspace's current ones are dropped: unbound
    again, they would price another business's invoices."""
    bind = op.get_bind()
    for ws_id, key in _current_books(bind).items():
        bind.execute(
            rates.delete().where(
                rates.c.workspace_id == ws_id,
                rates.c.customer_id.is_not(None),
                rates.c.books != key,
            )
        )
    with op.batch_alter_table("rates") as batch:
        batch.drop_constraint("ck_rates_customer_books", type_="check")
        batch.drop_column("books")
