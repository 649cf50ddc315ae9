"""Invoices as records of their own; mappings, customer settings and invoices bound to books

Every provider document becomes an ``invoices`` row (per_timesheet: one per draft that reached
the provider; per_period: the former ``period_invoices`` rows, same ids), and each Draft row
refers to its invoice. Mappings and customer settings get the key of the books they were made
in: the books the workspace bills to at migration time (its provider and connected account).

Revision ID: 0011_invoices_and_books
Revises: 0010_oauth_states
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011_invoices_and_books"
down_revision: str | None = "0010_oauth_states"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite keeps unique constraints unnamed: batch mode names the reflected ones this way.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_N_name)s"}
LIVE = {"drafted", "needs_attention"}
HANDS_OFF = {"sent", "partially_paid", "paid", "uncollectible"}

workspaces = sa.table("workspaces", sa.column("id", sa.Integer), sa.column("provider", sa.String))
connections = sa.table(
    "connections",
    sa.column("workspace_id", sa.Integer),
    sa.column("provider", sa.String),
    sa.column("account_id", sa.String),
    sa.column("environment", sa.String),
    sa.column("account_name", sa.String),
    sa.column("meta", sa.JSON),
    sa.column("connected_at", sa.DateTime(timezone=True)),
)
accounting_books = sa.table(
    "accounting_books",
    sa.column("workspace_id", sa.Integer),
    sa.column("key", sa.String),
    sa.column("provider", sa.String),
    sa.column("account_id", sa.String),
    sa.column("environment", sa.String),
    sa.column("name", sa.String),
    sa.column("last_connected_at", sa.DateTime(timezone=True)),
)
timesheets = sa.table(
    "timesheets",
    sa.column("id", sa.Integer),
    sa.column("date_from", sa.Date),
    sa.column("date_to", sa.Date),
)
period_invoices = sa.table(
    "period_invoices",
    sa.column("id", sa.Integer),
    sa.column("workspace_id", sa.Integer),
    sa.column("customer_id", sa.String),
    sa.column("currency", sa.String),
    sa.column("period_start", sa.Date),
    sa.column("period_end", sa.Date),
    sa.column("seq", sa.Integer),
    sa.column("key", sa.String),
    sa.column("provider", sa.String),
    sa.column("provider_id", sa.String),
    sa.column("status", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
TYPED = {
    "period_start": sa.Date,
    "period_end": sa.Date,
    "created_at": sa.DateTime(timezone=True),
    "updated_at": sa.DateTime(timezone=True),
    "provider_status_at": sa.DateTime(timezone=True),
    "needs_attention": sa.Boolean,
}
invoice_columns = (
    "id",
    "workspace_id",
    "mode",
    "books",
    "provider",
    "customer_id",
    "customer_name",
    "currency",
    "timesheet_pk",
    "period_start",
    "period_end",
    "seq",
    "key",
    "status",
    "total",
    "minutes",
    "provider_id",
    "link",
    "provider_status",
    "provider_status_at",
    "needs_attention",
    "attention_message",
    "created_at",
    "updated_at",
)
invoices_t = sa.table("invoices", *(sa.column(c, TYPED.get(c)) for c in invoice_columns))
drafts = sa.table(
    "drafts",
    *(
        sa.column(c, TYPED.get(c))
        for c in (
            "id",
            "workspace_id",
            "timesheet_pk",
            "key",
            "status",
            "customer_id",
            "customer_name",
            "currency",
            "total",
            "minutes",
            "provider",
            "provider_id",
            "link",
            "attempts",
            "hold_message",
            "provider_status",
            "provider_status_at",
            "created_at",
            "period_invoice_id",
            "invoice_id",
            "books",
        )
    ),
)


def books_key(provider: str, account_id: str | None, environment: str | None) -> str:
    # connector.books.books_key, frozen here as it was when this migration was written.
    if provider == "local":
        return "local"
    return f"{provider}:{environment or ''}:{account_id or ''}"


def _drop_unique(table: str, columns: list[str]) -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        with op.batch_alter_table(table, naming_convention=NAMING, recreate="always") as batch:
            batch.drop_constraint(f"uq_{table}_{'_'.join(columns)}", type_="unique")
        return
    for constraint in sa.inspect(bind).get_unique_constraints(table):
        if constraint["column_names"] == columns:
            op.drop_constraint(constraint["name"], table, type_="unique")


def upgrade() -> None:
    op.create_table(
        "accounting_books",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=True),
        sa.Column("environment", sa.String(length=20), nullable=True),
        sa.Column("name", sa.String(length=500), nullable=True),
        sa.Column("last_connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "key"),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(length=20), nullable=False),
        sa.Column("books", sa.String(length=300), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("customer_name", sa.String(length=500), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("timesheet_pk", sa.Integer(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=50), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("total", sa.String(length=40), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(length=255), nullable=True),
        sa.Column("link", sa.String(length=1000), nullable=True),
        sa.Column("provider_status", sa.String(length=30), nullable=True),
        sa.Column("provider_status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("needs_attention", sa.Boolean(), nullable=False),
        sa.Column("attention_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["timesheet_pk"], ["timesheets.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_invoices_provider_ref", "invoices", ["workspace_id", "provider", "provider_id"]
    )
    op.create_index(
        "ix_invoices_period", "invoices", ["workspace_id", "books", "customer_id", "period_start"]
    )
    for table in ("customer_mappings", "customer_settings"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("books", sa.String(length=300), nullable=True))
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("books", sa.String(length=300), nullable=True))
        batch.add_column(sa.Column("invoice_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_drafts_invoice_id", "invoices", ["invoice_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_drafts_invoice_id", ["invoice_id"])

    _convert(op.get_bind())

    _drop_unique("customer_mappings", ["workspace_id", "kind", "tracker_id"])
    _drop_unique("customer_settings", ["workspace_id", "customer_id"])
    with op.batch_alter_table("customer_mappings") as batch:
        batch.alter_column("books", existing_type=sa.String(length=300), nullable=False)
        batch.create_unique_constraint(
            "uq_customer_mappings_books", ["workspace_id", "books", "kind", "tracker_id"]
        )
    with op.batch_alter_table("customer_settings") as batch:
        batch.alter_column("books", existing_type=sa.String(length=300), nullable=False)
        batch.create_unique_constraint(
            "uq_customer_settings_books", ["workspace_id", "books", "customer_id"]
        )
    with op.batch_alter_table("drafts") as batch:
        batch.drop_constraint("fk_drafts_period_invoice_id", type_="foreignkey")
        batch.drop_column("period_invoice_id")
    op.drop_table("period_invoices")


# --- the data ----------------------------------------------------------------------------------
def _convert(bind: Any) -> None:
    now = datetime.now(UTC)
    keys = _record_books(bind, now)  # (workspace, provider) -> books key
    current = {
        ws_id: keys.get((ws_id, provider), books_key(provider, None, None))
        for ws_id, provider in bind.execute(sa.select(workspaces.c.id, workspaces.c.provider))
    }
    for table in ("customer_mappings", "customer_settings"):
        t = sa.table(table, sa.column("workspace_id"), sa.column("books"))
        for ws_id, key in current.items():
            bind.execute(t.update().where(t.c.workspace_id == ws_id).values(books=key))

    rows = [dict(r._mapping) for r in bind.execute(sa.select(drafts).order_by(drafts.c.id))]
    provider_of = dict(bind.execute(sa.select(workspaces.c.id, workspaces.c.provider)).all())
    days = {r.id: (r.date_from, r.date_to) for r in bind.execute(sa.select(timesheets))}

    def key_of(row: dict[str, Any]) -> str:
        provider = row["provider"] or provider_of.get(row["workspace_id"], "local")
        return keys.get((row["workspace_id"], provider), books_key(provider, None, None))

    for row in rows:
        if row["customer_id"]:
            bind.execute(drafts.update().where(drafts.c.id == row["id"]).values(books=key_of(row)))
    next_id = _period_invoices(bind, rows, key_of, now)
    _own_invoices(bind, rows, key_of, days, next_id, now)
    if bind.dialect.name == "postgresql":
        bind.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('invoices', 'id'), "
                "COALESCE((SELECT MAX(id) FROM invoices), 0) + 1, false)"
            )
        )


def _record_books(bind: Any, now: datetime) -> dict[tuple[int, str], str]:
    keys = {}
    for c in bind.execute(sa.select(connections).where(connections.c.provider != "webwork")):
        key = books_key(c.provider, c.account_id, c.environment)
        keys[(c.workspace_id, c.provider)] = key
        if not c.account_id:
            continue
        name = c.account_name or (c.meta or {}).get("company_name")
        bind.execute(
            accounting_books.insert().values(
                workspace_id=c.workspace_id,
                key=key,
                provider=c.provider,
                account_id=c.account_id,
                environment=c.environment,
                name=name,
                last_connected_at=c.connected_at or now,
            )
        )
    return keys


def _is_live(row: dict[str, Any]) -> bool:
    return row["status"] in LIVE or (
        row["status"] in ("pending", "reconnect_needed") and (row["attempts"] or 0) > 0
    )


def _sums(on_it: list[dict[str, Any]]) -> tuple[str, int]:
    live = [r for r in on_it if _is_live(r)]
    total = sum((Decimal(str(r["total"])) for r in live if r["total"] is not None), Decimal(0))
    return str(total), sum(r["minutes"] or 0 for r in live)


def _latest_status(on_it: list[dict[str, Any]]) -> tuple[str | None, Any]:
    read = [r for r in on_it if r["provider_status"] is not None]
    if not read:
        return None, None
    last = max(read, key=lambda r: (r["provider_status_at"] is not None, r["provider_status_at"]))
    return last["provider_status"], last["provider_status_at"]


def _attention(on_it: list[dict[str, Any]]) -> tuple[bool, str | None]:
    flagged = [r for r in on_it if r["status"] == "needs_attention"]
    return bool(flagged), (flagged[0]["hold_message"] if flagged else None)


def _period_invoices(bind: Any, rows: list[dict[str, Any]], key_of: Any, now: datetime) -> int:
    """The former period invoices, same ids; returns the next free id."""
    last = 0
    for p in [dict(r._mapping) for r in bind.execute(sa.select(period_invoices))]:
        last = max(last, p["id"])
        on_it = [r for r in rows if r["period_invoice_id"] == p["id"]]
        creator = next((r for r in on_it if r["key"] == p["key"]), on_it[0] if on_it else None)
        status = {"open": "drafted", "closed": "closed", "deleted": "voided"}.get(p["status"])
        if status == "drafted" and not p["provider_id"]:
            status = "pending"
        total, minutes = _sums(on_it)
        provider_status, read_at = _latest_status(on_it)
        flagged, message = _attention(on_it)
        provider = p["provider"] or (creator or {}).get("provider") or "local"
        books = key_of({"provider": provider, "workspace_id": p["workspace_id"]})
        bind.execute(
            invoices_t.insert().values(
                id=p["id"],
                workspace_id=p["workspace_id"],
                mode="per_period",
                books=books,
                provider=provider,
                customer_id=p["customer_id"],
                customer_name=(creator or {}).get("customer_name") or "",
                currency=p["currency"],
                timesheet_pk=None,
                period_start=p["period_start"],
                period_end=p["period_end"],
                seq=p["seq"],
                key=p["key"],
                status=status or "pending",
                total=total,
                minutes=minutes,
                provider_id=p["provider_id"],
                link=next((r["link"] for r in on_it if r["link"]), None),
                provider_status=provider_status,
                provider_status_at=read_at,
                needs_attention=flagged,
                attention_message=message,
                created_at=p["created_at"] or now,
                updated_at=now,
            )
        )
        for r in on_it:
            bind.execute(drafts.update().where(drafts.c.id == r["id"]).values(invoice_id=p["id"]))
    return last + 1


def _own_status(row: dict[str, Any]) -> str:
    if row["status"] in ("voided", "superseded") or row["provider_status"] in ("voided", "deleted"):
        return "voided"
    if row["status"] == "needs_attention" or row["provider_status"] in HANDS_OFF:
        return "closed"
    return "drafted" if row["provider_id"] else "pending"


def _own_invoices(
    bind: Any,
    rows: list[dict[str, Any]],
    key_of: Any,
    days: dict[int, tuple[Any, Any]],
    next_id: int,
    now: datetime,
) -> None:
    """A per_timesheet invoice for every draft that reached (or may have reached) the provider."""
    for row in rows:
        if row["period_invoice_id"] is not None or not row["customer_id"]:
            continue
        if not (row["provider_id"] or _is_live(row)):
            continue
        first, last = days.get(row["timesheet_pk"], (None, None))
        created = row["created_at"] or now
        total, minutes = _sums([row])
        flagged, message = _attention([row])
        bind.execute(
            invoices_t.insert().values(
                id=next_id,
                workspace_id=row["workspace_id"],
                mode="per_timesheet",
                books=key_of(row),
                provider=row["provider"] or "local",
                customer_id=row["customer_id"],
                customer_name=row["customer_name"] or "",
                currency=row["currency"] or "USD",
                timesheet_pk=row["timesheet_pk"],
                period_start=first or created.date(),
                period_end=last or created.date(),
                seq=1,
                key=row["key"],
                status=_own_status(row),
                total=total,
                minutes=minutes,
                provider_id=row["provider_id"],
                link=row["link"],
                provider_status=row["provider_status"],
                provider_status_at=row["provider_status_at"],
                needs_attention=flagged,
                attention_message=message,
                created_at=created,
                updated_at=now,
            )
        )
        bind.execute(drafts.update().where(drafts.c.id == row["id"]).values(invoice_id=next_id))
        next_id += 1


# --- back ------------------------------------------------------------------------------------
def downgrade() -> None:
    """Back to period_invoices. Mappings and customer settings of books other than each
    workspace's current ones are dropped (the old schema holds one set per workspace)."""
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
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("period_invoice_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            "fk_drafts_period_invoice_id",
            "period_invoices",
            ["period_invoice_id"],
            ["id"],
            ondelete="SET NULL",
        )
    bind = op.get_bind()
    _restore_period_invoices(bind)
    _keep_current_books(bind)
    with op.batch_alter_table("drafts") as batch:
        batch.drop_index("ix_drafts_invoice_id")
        batch.drop_constraint("fk_drafts_invoice_id", type_="foreignkey")
        batch.drop_column("invoice_id")
        batch.drop_column("books")
    with op.batch_alter_table("customer_mappings") as batch:
        batch.drop_constraint("uq_customer_mappings_books", type_="unique")
        batch.drop_column("books")
        batch.create_unique_constraint(
            "customer_mappings_workspace_id_kind_tracker_id_key",  # PostgreSQL's own name
            ["workspace_id", "kind", "tracker_id"],
        )
    with op.batch_alter_table("customer_settings") as batch:
        batch.drop_constraint("uq_customer_settings_books", type_="unique")
        batch.drop_column("books")
        batch.create_unique_constraint(
            "customer_settings_workspace_id_customer_id_key", ["workspace_id", "customer_id"]
        )
    op.drop_index("ix_invoices_period", table_name="invoices")
    op.drop_index("ix_invoices_provider_ref", table_name="invoices")
    op.drop_table("invoices")
    op.drop_table("accounting_books")


def _restore_period_invoices(bind: Any) -> None:
    status_of = {"pending": "open", "drafted": "open", "closed": "closed", "voided": "deleted"}
    for inv in bind.execute(sa.select(invoices_t).where(invoices_t.c.mode == "per_period")):
        bind.execute(
            period_invoices.insert().values(
                id=inv.id,
                workspace_id=inv.workspace_id,
                customer_id=inv.customer_id,
                currency=inv.currency,
                period_start=inv.period_start,
                period_end=inv.period_end,
                seq=inv.seq,
                key=inv.key,
                provider=inv.provider,
                provider_id=inv.provider_id,
                status=status_of.get(inv.status, "open"),
                created_at=inv.created_at,
            )
        )
        bind.execute(
            drafts.update().where(drafts.c.invoice_id == inv.id).values(period_invoice_id=inv.id)
        )


def _keep_current_books(bind: Any) -> None:
    keys = {
        (c.workspace_id, c.provider): books_key(c.provider, c.account_id, c.environment)
        for c in bind.execute(sa.select(connections))
    }
    for ws_id, provider in bind.execute(sa.select(workspaces.c.id, workspaces.c.provider)):
        key = keys.get((ws_id, provider), books_key(provider, None, None))
        for table in ("customer_mappings", "customer_settings"):
            t = sa.table(table, sa.column("workspace_id"), sa.column("books"))
            bind.execute(t.delete().where(t.c.workspace_id == ws_id, t.c.books != key))
